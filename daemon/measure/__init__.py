"""Lesion measurement and tracking: pure code, volumes and masks in, dataclasses out.

- geometry.py: axial long/short axis on the mask boundary (marching squares), 3D diameter,
  volume, centroid
- intensity.py: HU / SUV statistics, SUV peak in the PERCIST sphere
- reference.py: reference regions (model label or rules-file sphere) and ratios to them
- lesions.py: a label mask -> per-lesion Measurements
- wholebody.py: TMTV, TLG, lesion count, Dmax at an SUV threshold from the rules
- radiomics.py: PyRadiomics per lesion from rules/radiomics.yaml (radiomics_io.py: file edge)
- registration.py, tracking.py: rigid alignment with priors; identities across timepoints
- seg_mapping.py: DICOM SEG frames -> masks on a source volume's grid
- phantoms.py, phantom_patient.py: synthetic ground truth for tests and bench/measure.py
"""
