"""Messy series: each problem detected with its reason; resample or refuse per policy (SYNTHETIC series)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from imaging_helpers import make_datasets, ramp
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from daemon.demo.dicom import write_datasets
from daemon.demo.phantom import Grid
from daemon.imaging.messy import MessyPolicy, SeriesRefused
from daemon.imaging.series import LoadedSeries, load_folder

GRID = Grid((6, 8, 10), (2.0, 1.0, 1.0))
SERIES = generate_uid(entropy_srcs=["messy"])


def _base() -> list[Dataset]:
    return make_datasets(GRID, series_uid=SERIES)


def _shift(ds: Dataset, delta: tuple[float, float, float]) -> None:
    ds.ImagePositionPatient = [f"{float(v) + d:.6f}" for v, d in zip(ds.ImagePositionPatient, delta, strict=True)]


def _renumber(ds: Dataset, n: int) -> Dataset:
    ds = copy.deepcopy(ds)
    uid = generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), str(n)])
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.InstanceNumber = n
    return ds


def missing() -> list[Dataset]:
    d = _base()
    return d[:2] + d[3:]


def duplicate() -> list[Dataset]:
    d = _base()
    return [*d, _renumber(d[2], 50)]


def uneven() -> list[Dataset]:
    d = _base()
    _shift(d[3], (0.0, 0.0, 0.7))
    return d


def tilt() -> list[Dataset]:
    d = _base()
    for k, ds in enumerate(d):
        _shift(ds, (0.0, 0.35 * k, 0.0))  # about 10 degrees over 2 mm slices
    return d


def other_orientation(n: int, localizer: bool) -> list[Dataset]:
    g = Grid((n, 8, 10), (2.0, 1.0, 1.0), row_direction=(0, 1, 0), column_direction=(0, 0, -1))
    extra = make_datasets(g, series_uid=SERIES, description="other")
    out = []
    for m, ds in enumerate(extra):
        ds = _renumber(ds, 100 + m)
        if localizer:
            ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        out.append(ds)
    return out


def mixed_orientation() -> list[Dataset]:
    return _base() + other_orientation(5, localizer=False)


def mixed_size() -> list[Dataset]:
    g = Grid((3, 12, 10), (2.0, 1.0, 1.0), centre=(0.0, 0.0, 40.0))
    extra = [_renumber(ds, 200 + m) for m, ds in enumerate(make_datasets(g, series_uid=SERIES))]
    return _base() + extra


def localizers() -> list[Dataset]:
    return _base() + other_orientation(1, localizer=True) + other_orientation(2, localizer=False)[1:]


CASES: dict[str, tuple[Callable[[], list[Dataset]], str, str]] = {
    # name: (datasets, problem code, action under "resample")
    "missing": (missing, "missing-slices", "resampled"),
    "duplicate": (duplicate, "duplicate-slices", "kept first"),
    "uneven": (uneven, "uneven-spacing", "resampled"),
    "tilt": (tilt, "gantry-tilt", "resampled"),
    "mixed-orientation": (mixed_orientation, "mixed-orientation", "kept largest stack"),
    "mixed-size": (mixed_size, "mixed-size", "kept largest stack"),
}


def _write(tmp: Path, dsets: list[Dataset]) -> Path:
    folder = tmp / "s"
    for n, ds in enumerate(dsets):  # unique file names, shuffled instance order
        ds.InstanceNumber = int(ds.InstanceNumber) if int(ds.InstanceNumber) >= 50 else n + 1
    write_datasets(dsets, folder)
    return folder


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_reason(name: str, tmp_path: Path) -> None:
    make, code, _ = CASES[name]
    folder = _write(tmp_path, make())
    with pytest.raises(SeriesRefused) as err:
        load_folder(folder, policy=MessyPolicy.REFUSE)
    refused = [p for p in err.value.problems if p.action == "refused"]
    assert [p.code for p in refused] == [code], err.value.problems
    assert code in str(err.value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_resampled_or_kept(name: str, tmp_path: Path) -> None:
    make, code, action = CASES[name]
    loaded = load_folder(_write(tmp_path, make()), policy=MessyPolicy.RESAMPLE)
    found = {p.code: p for p in loaded.problems}
    assert code in found and found[code].action == action, loaded.problems
    assert found[code].message
    vol = loaded.volume
    assert vol.shape == GRID.shape
    normal = np.cross(vol.direction[:, 2], vol.direction[:, 1])
    np.testing.assert_allclose(vol.affine[:3, 0], normal * 2.0, atol=1e-6)  # regular and orthogonal
    if action == "resampled":
        assert loaded.resampled and "resampled" in vol.metadata
    _check_values(name, loaded)


def _check_values(name: str, loaded: LoadedSeries) -> None:
    vol = loaded.volume
    expected = ramp(GRID.shape)  # linear in k and j: interpolation along the stack is exact
    if name == "missing":
        np.testing.assert_allclose(vol.array, expected, atol=1e-3)
        assert vol.slices[2].sop_instance_uid == ""  # filled in, no source instance
        assert all(s.sop_instance_uid for k, s in enumerate(vol.slices) if k != 2)
    elif name == "tilt":
        # slice k was shifted 0.35 k mm along +y (rows): de-sheared, it reads 0.35 k rows back
        k = np.arange(GRID.shape[0], dtype=np.float32)[:, None, None]
        sheared = expected - 30.0 * 0.35 * k
        np.testing.assert_allclose(vol.array[:, 2:, :], sheared[:, 2:, :], atol=1e-2)
        assert vol.slices[0].sop_instance_uid and not vol.slices[3].sop_instance_uid
    elif name != "uneven":
        np.testing.assert_allclose(vol.array, expected, atol=1e-3)


def test_localizers_dropped(tmp_path: Path) -> None:
    loaded = load_folder(_write(tmp_path, localizers()), policy=MessyPolicy.REFUSE)
    assert [p.code for p in loaded.problems] == ["localizers", "localizers"]
    assert all(p.action == "dropped" for p in loaded.problems)
    assert "LOCALIZER" in loaded.problems[0].message
    assert loaded.volume.shape == GRID.shape and not loaded.resampled


def test_clean_series_has_no_problems(tmp_path: Path) -> None:
    loaded = load_folder(_write(tmp_path, _base()), policy=MessyPolicy.REFUSE)
    assert loaded.problems == () and "problems" not in loaded.volume.metadata


def test_policy_from_settings() -> None:
    from daemon.config import ImagingSettings
    from daemon.imaging.series import options_from_settings

    policy, tol = options_from_settings(ImagingSettings(messy_series="refuse", spacing_tolerance=0.05))
    assert policy is MessyPolicy.REFUSE and tol.relative == 0.05


def test_choose_falls_through_a_refused_series(tmp_path: Path) -> None:
    from daemon.imaging.choose import choose_volume
    from daemon.imaging.loader import scan
    from daemon.imaging.selection import SeriesSpec

    write_datasets(missing(), tmp_path / "messy")  # 5 slices, one missing: refused
    clean = make_datasets(Grid((4, 8, 10), (2.0, 1.0, 1.0)), description="T1 3D post-Gd", number=7)
    write_datasets(clean, tmp_path / "clean")
    found = scan(tmp_path).series
    spec = SeriesSpec(modality=["MR"])
    choice = choose_volume(found, spec, MessyPolicy.REFUSE)
    assert choice.loaded is not None and choice.loaded.volume.shape == (4, 8, 10)
    assert "missing-slices" in choice.reason and choice.reason.startswith("loaded series")
    only_messy = {k: v for k, v in found.items() if k == SERIES}
    none = choose_volume(only_messy, spec, MessyPolicy.REFUSE)
    assert none.loaded is None and none.reason.startswith("no suitable series")


def test_repeated_positions_named_as_4d(tmp_path: Path) -> None:
    base = _base()
    dsets = base + [_renumber(ds, 60 + n) for n, ds in enumerate(base)]
    loaded = load_folder(_write(tmp_path, dsets), policy=MessyPolicy.RESAMPLE)
    (problem,) = loaded.problems
    assert problem.code == "duplicate-slices" and "appears 2 times" in problem.message
    np.testing.assert_allclose(loaded.volume.array, ramp(GRID.shape))


def test_header_rounding_is_not_messy(tmp_path: Path) -> None:
    grid = Grid.oblique((12, 8, 10), (1.0, 0.7, 0.7), (13.0, -7.0, 21.0))
    dsets = make_datasets(grid, series_uid=SERIES)
    for ds in dsets:  # positions written to 0.01 mm, as many scanners do
        ds.ImagePositionPatient = [f"{float(v):.2f}" for v in ds.ImagePositionPatient]
    loaded = load_folder(_write(tmp_path, dsets), policy=MessyPolicy.REFUSE)
    assert loaded.problems == ()
