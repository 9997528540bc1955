"""`nadir evaluate-model` on a SYNTHETIC case set whose figures are known exactly, and its errors.

The model is a one-weight ONNX network (y = 0.01 x, no activation, threshold 0.5, on the
series' own grid): it marks exactly the voxels whose value is 100, so each case's image
says what the model finds and its reference.dcm what the reader drew:

- a-shifted: a 10-voxel cube; the reader's cube 2 pixels (2 mm) along the row: Dice 0.8,
  HD95 2.0 mm, 1 of 1 lesion, same long axis. Reference as a SEG.
- b-missed-fp: the model finds the reader's 10-voxel cube and a 3-voxel one the reader did not
  draw, and misses the reader's 4-voxel one: Dice 2000/2091, 1 of 2, 1 false positive.
  Reference as an RTSTRUCT (its contours rasterised exactly onto the pixels).
- c-empty: the model finds nothing, the reader drew a 5-voxel cube: Dice 0, HD95 not
  computable (said in the notes), 0 of 1.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from eval_case_files import write_rtstruct, write_seg, write_series
from tiny_models import conv_model, write_model

from daemon.cli import main
from daemon.demo.phantom import Grid

SHAPE = (24, 32, 32)
GRID = Grid(shape=SHAPE, spacing=(2.0, 1.0, 1.0))  # LPS: i left, j posterior, k superior


def _box(corner: tuple[int, int, int], size: tuple[int, int, int]) -> np.ndarray:  # type: ignore[type-arg]
    m = np.zeros(SHAPE, dtype=bool)
    k, j, i = corner
    m[k:k + size[0], j:j + size[1], i:i + size[2]] = True
    return m


def _labels(*masks: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    out = np.zeros(SHAPE, dtype=np.uint8)
    for n, m in enumerate(masks, start=1):
        out[m] = n
    return out


def _case(root: Path, name: str, model_sees: np.ndarray, reader: np.ndarray, kind: str = "SEG") -> Path:  # type: ignore[type-arg]
    folder = root / name
    sources = write_series(folder, np.where(model_sees, 100.0, 0.0), GRID.affine(), name)
    if kind == "SEG":
        write_seg(folder / "reference.dcm", sources, reader)
    else:
        write_rtstruct(folder / "reference.dcm", sources, reader, GRID.affine())
    return folder


CUBE = (10, 10, 10)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("model") / "tiny", conv_model(scale=0.01), **{
        "output.activation": "none", "input.spacing_mm": [1.0, 1.0, 2.0]})


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cases")
    _case(root, "a-shifted", _box((4, 8, 8), CUBE), _labels(_box((4, 8, 10), CUBE)))
    _case(root, "b-missed-fp", _box((4, 4, 4), CUBE) | _box((18, 26, 26), (3, 3, 3)),
          _labels(_box((4, 4, 4), CUBE), _box((16, 4, 24), (4, 4, 4))), kind="RTSTRUCT")
    _case(root, "c-empty", np.zeros(SHAPE, dtype=bool), _labels(_box((8, 10, 10), (5, 5, 5))))
    return root


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["evaluate-model", *args, "--providers", "cpu"])
    out, err = capsys.readouterr()
    return status, out, err


def test_known_figures_per_case_and_in_the_summary(model_dir: Path, cases: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, str(model_dir), str(cases), "--json")
    assert status == 0
    result = json.loads(out)
    by = {c["case"]: c for c in result["cases"]}
    a, b, c = by["a-shifted"], by["b-missed-fp"], by["c-empty"]
    assert (a["reference"], b["reference"], c["reference"]) == ("SEG", "RTSTRUCT", "SEG")
    assert a["dice"] == pytest.approx(0.8) and a["hd95_mm"] == pytest.approx(2.0)
    assert (a["detected_lesions"], a["reference_lesions"], a["false_positives"]) == (1, 1, 0)
    assert a["lesions"][0]["long_axis_error_mm"] == pytest.approx(0.0, abs=1e-6)
    assert a["lesions"][0]["reference_long_axis_mm"] == pytest.approx(np.hypot(9.0, 9.0), abs=1.5)
    assert b["dice"] == pytest.approx(2000 / 2091)
    assert (b["detected_lesions"], b["reference_lesions"], b["sensitivity"]) == (1, 2, 0.5)
    assert (b["predicted_lesions"], b["false_positives"]) == (2, 1)
    missed = [row for row in b["lesions"] if not row["detected"]]
    assert len(missed) == 1 and missed[0]["predicted"] is None and missed[0]["long_axis_error_mm"] is None
    assert b["hd95_mm"] > 2.0
    assert c["dice"] == 0.0 and c["hd95_mm"] is None and c["sensitivity"] == 0.0
    assert any("HD95 not computable: the model's mask is empty" in n for n in c["notes"])
    s = result["summary"]
    dices = [0.8, 2000 / 2091, 0.0]
    assert s["dice"]["mean"] == pytest.approx(np.mean(dices)) and s["dice"]["sd"] == pytest.approx(np.std(dices, ddof=1))
    assert (s["hd95_mm"]["n"], s["hd95_mm"]["not_computable"]) == (2, 1)
    assert s["sensitivity"]["mean"] == pytest.approx(0.5) and s["sensitivity"]["sd"] == pytest.approx(0.5)
    assert s["false_positives"]["mean"] == pytest.approx(1 / 3)
    assert s["lesions"] == {"reference": 4, "detected": 2, "false_positive": 1}
    assert s["long_axis_abs_error_mm"]["n"] == 2 and s["long_axis_abs_error_mm"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert s["rano_bm"] == {"compared": 0, "agree": 0} and result["followups"] == []
    assert s["model"]["name"] == "tiny"


def test_min_overlap_and_the_table(model_dir: Path, cases: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, str(model_dir), str(cases))
    assert status == 0
    assert "a-shifted" in out and "0.800" in out and "2.00" in out and "1/1" in out
    assert "lesions: 2 of 4 detected, 1 false positive(s)" in out
    status, out, _ = _run(capsys, str(model_dir), str(cases), "--json", "--min-overlap", "0.9")
    by = {c["case"]: c for c in json.loads(out)["cases"]}
    assert by["a-shifted"]["detected_lesions"] == 0  # 80 % of the reader's cube is covered, not 90 %


def _copy(cases: Path, tmp_path: Path) -> Path:
    root = tmp_path / "cases"
    shutil.copytree(cases, root)
    return root


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    status, out, err = _run(capsys, *args)
    assert status == 2 and out == "", err
    return err


def test_clear_errors(model_dir: Path, cases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(cases, tmp_path)
    (root / "c-empty" / "reference.dcm").unlink()
    assert "case c-empty: no reference" in _refused(capsys, str(model_dir), str(root))

    other = tmp_path / "other"  # a SEG drawn on another series of the same geometry
    sources = write_series(other, np.zeros(SHAPE), GRID.affine(), "another")
    write_seg(root / "c-empty" / "reference.dcm", sources, _labels(_box((8, 10, 10), (5, 5, 5))))
    err = _refused(capsys, str(model_dir), str(root))
    assert "case c-empty: the reference SEG is drawn on series" in err and "not on the case's series" in err

    bad_model = write_model(tmp_path / "bad", conv_model(), **{"output.threshold": 2.0})
    err = _refused(capsys, str(bad_model), str(cases))
    assert "the model does not load" in err and "model.yaml:" in err and "output.threshold" in err
    assert "no such folder" in _refused(capsys, str(tmp_path / "none"), str(cases))
    assert "a fraction in [0, 1]" in _refused(capsys, str(model_dir), str(cases), "--min-overlap", "1.5")


def test_rtstruct_slips_are_said_or_refused(model_dir: Path, cases: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import pydicom

    root = _copy(cases, tmp_path)
    path = root / "b-missed-fp" / "reference.dcm"
    ds = pydicom.dcmread(path)
    one_point = pydicom.Dataset()
    one_point.ContourGeometricType, one_point.ContourData = "CLOSED_PLANAR", ["0", "0", "0"]
    ds.ROIContourSequence[0].ContourSequence.append(one_point)
    ds.save_as(path)
    status, out, _ = _run(capsys, str(model_dir), str(root), "--json")
    b = next(c for c in json.loads(out)["cases"] if c["case"] == "b-missed-fp")
    assert status == 0 and b["dice"] == pytest.approx(2000 / 2091)  # the one-point contour left out, and said
    assert any(n.startswith("reference: ROI 'lesion 1': 1 contour(s) with fewer than 3 points") for n in b["notes"])
    ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID = "2.25.1234"
    ds.save_as(path)
    err = _refused(capsys, str(model_dir), str(root))
    assert "case b-missed-fp: the reference RTSTRUCT does not fit the series" in err and "2.25.1234" in err


def test_cases_yaml_is_checked_with_file_and_line(model_dir: Path, cases: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(cases, tmp_path)
    (root / "cases.yaml").write_text(
        "followups:\n  - patient: P1\n    visits:\n      - {case: a-shifted, date: 2025-01-10}\n"
        "      - {case: a-shiftd, date: 2025-04-10}\n")
    err = _refused(capsys, str(model_dir), str(root))
    assert f"{root / 'cases.yaml'}:5: followups.0.visits.1.case: no case folder 'a-shiftd'" in err
    (root / "cases.yaml").write_text(
        "followups:\n  - patient: P1\n    visits:\n      - {case: a-shifted, date: 2025-04-10}\n"
        "      - {case: b-missed-fp, date: 2025-01-10}\n")
    assert "cases.yaml:2: followups.0: visits are in date order" in _refused(capsys, str(model_dir), str(root))
    (root / "cases.yaml").write_text("followups:\n  - patient: P1\n    colour: red\n    visits: []\n")
    err = _refused(capsys, str(model_dir), str(root))
    assert "cases.yaml:3: followups.0.colour: unknown key" in err and "cases.yaml:4: followups.0.visits" in err
