"""Each compressed transfer syntax decodes into the same volume (SYNTHETIC series).

RLE, JPEG-LS and JPEG 2000 are encoded with pydicom's encoders (pylibjpeg,
pyjpegls, openjpeg); JPEG baseline and JPEG lossless with dcmtk's dcmcjpeg.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from imaging_helpers import Written, check_round_trip
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from daemon.demo.phantom import Grid
from daemon.imaging.series import load_folder

GRID = Grid.oblique((3, 64, 64), (2.0, 1.0, 1.0), (10.0, 5.0, -20.0))  # J2K wants >= 32 px


def _ramp8() -> np.ndarray:
    k, j, i = np.indices(GRID.shape)
    return ((k * 40 + j * 7 + i * 3) % 250).astype(np.float32)


def _pydicom_compress(folder: Path, syntax: str) -> None:
    for p in folder.iterdir():
        ds = pydicom.dcmread(p)
        ds.compress(syntax)
        ds.save_as(p, enforce_file_format=True)


def _dcmcjpeg(folder: Path, *options: str) -> None:
    for p in list(folder.iterdir()):
        out = p.with_suffix(".jpeg")
        subprocess.run(["dcmcjpeg", *options, str(p), str(out)], check=True, capture_output=True, timeout=30)
        out.replace(p)


def _to_8bit(folder: Path) -> None:
    for p in folder.iterdir():
        ds = pydicom.dcmread(p)
        arr = ds.pixel_array.astype(np.uint8)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = arr.tobytes()
        ds.save_as(p, enforce_file_format=True)


CASES = {
    "rle": (RLELossless, lambda f: _pydicom_compress(f, RLELossless), 0.0),
    "jpeg-ls": (JPEGLSLossless, lambda f: _pydicom_compress(f, JPEGLSLossless), 0.0),
    "jpeg2000": (JPEG2000Lossless, lambda f: _pydicom_compress(f, JPEG2000Lossless), 0.0),
    "jpeg-lossless-sv1": (JPEGLosslessSV1, lambda f: _dcmcjpeg(f, "+e1"), 0.0),
    "jpeg-lossless-p14": (JPEGLossless, lambda f: _dcmcjpeg(f, "+el"), 0.0),
    "jpeg-baseline": (JPEGBaseline8Bit, lambda f: _dcmcjpeg(f, "+eb", "+sr"), 12.0),  # +sr: keep the pixel range,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compressed_round_trip(name: str, write_series: Callable[..., Written]) -> None:
    syntax, compress, tol = CASES[name]
    if name.startswith("jpeg-") and shutil.which("dcmcjpeg") is None:
        pytest.skip("dcmtk's dcmcjpeg is not installed")
    w = write_series(GRID, image=_ramp8())
    folder: Path = w.folder
    _to_8bit(folder)
    compress(folder)
    headers = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    assert {str(h.file_meta.TransferSyntaxUID) for h in headers} == {str(syntax)}
    vol = load_folder(folder).volume
    by_uid = {str(h.SOPInstanceUID): h for h in headers}
    check_round_trip(vol, w.grid_affine, w.values, by_uid, atol_value=tol)
    if tol:
        assert np.abs(vol.array - w.values).mean() < tol / 3


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_pydicom_bundled_files_decode_like_the_original(name: str) -> None:
    """pydicom's bundled MR_small (a real, non-synthetic test image) in three compressed syntaxes."""
    from pydicom.data import get_testdata_file

    reference = load_folder([Path(str(get_testdata_file("MR_small.dcm")))]).volume
    compressed = load_folder([Path(str(get_testdata_file(name)))]).volume
    np.testing.assert_array_equal(compressed.array, reference.array)
    np.testing.assert_allclose(compressed.affine, reference.affine)
    assert compressed.slices[0].sop_instance_uid
