"""SYNTHETIC phantom studies with known ground truth, for the demo and the tests.

- `phantom`: pure numpy phantoms (brain MR on MNI152 2009a, liver CT, torso FDG PET),
  random lesions and poses, analytic truth in patient coordinates; `phantom_volume`.
- `dicom`: writes phantom images as single-frame CT/MR/PET DICOM with realistic
  headers and deterministic UIDs.
- `patient`: the demo patient over three timepoints (`nadir demo-data`).
"""
