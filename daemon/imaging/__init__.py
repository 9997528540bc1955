"""DICOM series -> volumes with exact geometry; series selection; PET header values.

- `loader.scan(folder_or_files)`: header-only pass, instances grouped by series.
- `selection.select_series(spec, series)`: declarative choice with an explanation.
- `series.load_volume(series, policy)`: pixels -> `daemon.volume.Volume` (single- and
  multi-frame, CT/MR/PET, compressed syntaxes); `messy` says what was wrong and done.
- `nifti`: our geometry as NIfTI (used by `nadir export-nifti`).
"""
