"""Where a demo study's ground truth lies: beside the study's folder, never inside it.

A study folder holds its DICOM files only, so that `storescu +sd +r STUDY_DIR/` sends it
as written (dcmtk stops at the first file that is not DICOM). The truth of `OUT/NAME/`
(`truth.json` and the label masks and organ masks as NIfTI, named in truth.json relative
to its own folder) is in `OUT/NAME.truth/`.
"""

from __future__ import annotations

from pathlib import Path

SUFFIX = ".truth"


def truth_dir(study_folder: Path) -> Path:
    """The folder beside `study_folder` that holds its truth.json and masks."""
    return study_folder.with_name(study_folder.name + SUFFIX)


def truth_file(study_folder: Path) -> Path:
    return truth_dir(study_folder) / "truth.json"
