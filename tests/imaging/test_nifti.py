"""`nadir export-nifti`: every NIfTI voxel lies where the DICOM says (oblique and flipped included)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from imaging_helpers import Written

from daemon.cli import main
from daemon.demo.phantom import Grid
from daemon.imaging.nifti import array_to_nifti, nifti_to_array
from daemon.imaging.series import load_folder

GRIDS = {
    "axial": Grid((5, 12, 14), (2.0, 0.8, 0.8)),
    "oblique": Grid.oblique((5, 12, 14), (2.5, 0.9, 1.2), (20.0, -12.0, 31.0), centre=(4.0, -7.0, 60.0)),
    "flipped": Grid((5, 12, 14), (3.0, 1.1, 0.7), row_direction=(-1, 0, 0), column_direction=(0, 0, -1),
                    slice_direction=(0, 1, 0)),
}


def _check_nifti(img: nib.Nifti1Image, grid: Grid, values: np.ndarray) -> None:
    data = np.asarray(img.dataobj)
    assert data.size == values.size
    ijk = np.argwhere(np.ones(data.shape[:3], dtype=bool))[::7].astype(float)
    ras = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    lps = ras * np.array([-1.0, -1.0, 1.0])
    g = grid.affine()
    kji = (lps - g[:3, 3]) @ np.linalg.inv(g[:3, :3]).T
    assert np.abs(kji - np.round(kji)).max() < 1e-3  # on a voxel centre of the DICOM grid
    src = np.round(kji).astype(int)
    got = data[tuple(ijk.astype(int).T)]
    np.testing.assert_allclose(got, values[tuple(src.T)], atol=1e-3)


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_export_nifti_places_voxels(name: str, write_series: Callable[..., Written], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    grid = GRIDS[name]
    w = write_series(grid)
    out = tmp_path / f"{name}.nii.gz"
    assert main(["export-nifti", str(w.folder), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    img = nib.load(str(out))
    _check_nifti(img, grid, w.values)
    assert img.header.get_sform(coded=True)[1] == 1 and img.header.get_qform(coded=True)[1] == 1
    np.testing.assert_allclose(img.header.get_qform(), img.header.get_sform(), atol=1e-4)
    vol = load_folder(w.folder).volume
    back, aff = nifti_to_array(img)
    np.testing.assert_allclose(aff, vol.affine, atol=1e-4)
    np.testing.assert_array_equal(back, vol.array)


@pytest.mark.parametrize("name", ["axial", "oblique"])
def test_dicom2nifti_engine_checked(name: str, write_series: Callable[..., Written], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    grid = GRIDS[name]
    w = write_series(grid)
    out = tmp_path / "d2n.nii.gz"
    rc = main(["export-nifti", str(w.folder), str(out), "--engine", "dicom2nifti"])
    text = capsys.readouterr().out
    assert rc == 0, text
    _check_nifti(nib.load(str(out)), grid, w.values)


def test_refuses_messy_series_by_default(write_series: Callable[..., Written], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    w = write_series(GRIDS["axial"])
    sorted(w.folder.iterdir())[2].unlink()
    assert main(["export-nifti", str(w.folder), str(tmp_path / "x.nii")]) == 1
    assert "missing-slices" in capsys.readouterr().out
    assert main(["export-nifti", str(w.folder), str(tmp_path / "x.nii"), "--messy", "resample"]) == 0
    assert "resampled" in capsys.readouterr().out


def test_array_to_nifti_round_trip() -> None:
    aff = Grid.oblique((3, 4, 5), (2.0, 1.0, 0.5), (5.0, 10.0, -30.0)).affine()
    arr = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    back, aff2 = nifti_to_array(array_to_nifti(arr, aff))
    np.testing.assert_array_equal(back, arr)
    np.testing.assert_allclose(aff2, aff, atol=1e-6)
