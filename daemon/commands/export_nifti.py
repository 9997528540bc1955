"""`nadir export-nifti SERIES_DIR OUT.nii.gz`: a DICOM series as NIfTI for researchers.

The default engine writes our Volume through nibabel: NIfTI voxel (i, j, k) is
DICOM slice k (sorted along the normal), row j, column i, and the sform/qform
place it where the DICOM header says (LPS -> RAS), oblique and flipped series
included. `--engine dicom2nifti` runs dicom2nifti instead and then checks its
output voxel by voxel against our Volume's geometry; a disagreement is an error.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from daemon.commands.errors import CommandError
from daemon.imaging.loader import scan
from daemon.imaging.messy import MessyPolicy, SeriesRefused
from daemon.imaging.nifti import volume_to_nifti
from daemon.imaging.series import load_volume
from daemon.volume import Volume

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("series_dir", type=Path, help="folder holding the series (or a study: then --series)")
    parser.add_argument("out", type=Path, help="output .nii or .nii.gz")
    parser.add_argument("--series", default=None, help="SeriesInstanceUID when the folder holds several")
    parser.add_argument("--engine", choices=["nadir", "dicom2nifti"], default="nadir")
    parser.add_argument("--messy", choices=[p.value for p in MessyPolicy], default=MessyPolicy.REFUSE.value,
                        help="what to do with missing/uneven/tilted slices (default: refuse)")


def agrees(volume: Volume, img: Any, samples: int = 64, atol: float = 1e-3) -> str | None:
    """None when `img` holds our volume's voxels at our positions; otherwise what differs."""
    data = np.asarray(img.dataobj, dtype=np.float64)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.size != volume.array.size:
        return f"{data.shape} voxels, ours {volume.shape}"
    rng = np.random.default_rng(0)
    idx = np.stack([rng.integers(0, n, samples) for n in volume.shape], axis=1)
    lps = volume.index_to_patient(idx.astype(np.float64))
    ras = lps * np.array([-1.0, -1.0, 1.0])
    ijk = (ras - img.affine[:3, 3]) @ np.linalg.inv(img.affine[:3, :3]).T
    if np.abs(ijk - np.round(ijk)).max() > 0.01:
        return f"voxel centres off by {np.abs(ijk - np.round(ijk)).max():.3f} voxel"
    r = np.round(ijk).astype(int)
    if (r < 0).any() or (r >= np.array(data.shape[:3])).any():
        return "voxels fall outside the image"
    theirs = data[r[:, 0], r[:, 1], r[:, 2]]
    ours = volume.array[idx[:, 0], idx[:, 1], idx[:, 2]].astype(np.float64)
    if not np.allclose(theirs, ours, atol=atol, rtol=1e-4):
        return f"values differ (max {np.abs(theirs - ours).max():.3g})"
    return None


def _dicom2nifti(series_dir: Path, files: list[Path], out: Path, volume: Volume) -> int:
    import dicom2nifti
    import dicom2nifti.settings as d2n_settings

    d2n_settings.disable_validate_slice_increment()
    with tempfile.TemporaryDirectory() as tmp:
        for n, f in enumerate(files):
            (Path(tmp) / f"{n:05d}.dcm").symlink_to(f.resolve())
        result = dicom2nifti.dicom_series_to_nifti(tmp, str(out), reorient_nifti=False)
    img = nib.load(str(result.get("NII_FILE", out)))
    why = agrees(volume, img)
    if why is not None:
        print(f"dicom2nifti's output does not match the DICOM geometry ({why}); use --engine nadir")
        out.unlink(missing_ok=True)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    folder = Path(args.series_dir)
    if not folder.is_dir():
        raise CommandError(f"{folder}: no such folder; give the folder that holds the series' DICOM files")
    found = scan(folder).series
    if not found:
        raise CommandError(f"{folder}: no DICOM image series in this folder")
    uid = args.series or (next(iter(found)) if len(found) == 1 else None)
    if uid is None or uid not in found:
        print(f"{len(found)} series in {args.series_dir}; name one with --series:")
        for key, s in sorted(found.items(), key=lambda kv: kv[1].description):
            print(f"  {key}  {s.modality}  {s.description!r}  {s.number_of_frames} images")
        return 2
    try:
        loaded = load_volume(found[uid], MessyPolicy(args.messy))
    except SeriesRefused as exc:
        print(f"series refused: {exc}")
        return 1
    for p in loaded.problems:
        print(f"note: {p}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.engine == "dicom2nifti":
        files = [i.path for i in found[uid].instances]
        rc = _dicom2nifti(Path(args.series_dir), files, out, loaded.volume)
        if rc:
            return rc
    else:
        nib.save(volume_to_nifti(loaded.volume), str(out))
    print(f"wrote {out}: {loaded.volume.shape[::-1]} voxels (i, j, k), spacing {loaded.volume.spacing[::-1]} mm")
    return 0
