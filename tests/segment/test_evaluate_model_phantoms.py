"""`nadir evaluate-model` with the committed DEMO model on three SYNTHETIC brain phantoms forming
one patient's follow-up (baseline; lesions shrunk to 0.6; back to baseline size), the phantom's
true lesion masks standing for the reader's SEG.

The phantoms are small (a 96 x 128 x 128 mm field of view around the lesions at 2 mm, about
3 s per case for the model on 2 CPU cores), each visit in its own pose, as a patient lies
differently at each study. Measured when written (model 0.2.0): Dice 0.91 / 0.85 / 0.94, HD95
2.0 mm (one voxel) on each, 9 of 9 lesions, no false positive, long-axis error 0.41 +/- 0.58 mm,
RANO-BM PR then PD on both sides.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from eval_case_files import write_seg, write_series

from daemon.cli import main
from daemon.demo.phantom import Ellipsoid, Grid, Pose, brain_mr_phantom, mni_template

LESIONS = (  # in white matter of the MNI152 template (checked below), 12-18 mm
    Ellipsoid("B1", (-28.0, -12.0, 22.0), (7.0, 6.0, 6.0), (10.0, 0.0, 20.0)),
    Ellipsoid("B2", (26.0, 8.0, 14.0), (9.0, 7.0, 7.5)),
    Ellipsoid("B3", (6.0, 30.0, 30.0), (6.0, 5.5, 5.0)),
)
GRID = Grid(shape=(48, 64, 64), spacing=(2.0, 2.0, 2.0), centre=(0.0, 8.0, 22.0))
VISITS = (  # case, lesion scale, pose, date
    ("p1-t0", 1.0, Pose(), datetime(2025, 1, 10, 9)),
    ("p1-t1", 0.6, Pose((2.0, -1.0, 3.0), (3.0, -2.0, 1.0)), datetime(2025, 4, 10, 9)),
    ("p1-t2", 1.0, Pose((-2.0, 1.0, -2.0), (-2.0, 3.0, 0.0)), datetime(2025, 7, 10, 9)),
)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tpl = mni_template()
    to_index = np.linalg.inv(tpl.affine_lps)
    for les in LESIONS:
        q = np.round(to_index @ np.append(les.centre, 1.0))[:3].astype(int)
        assert tpl.brain[tuple(q)] > 0.9, les.lesion_id
    root = tmp_path_factory.mktemp("phantom_cases")
    for n, (name, scale, pose, when) in enumerate(VISITS):
        ph = brain_mr_phantom(GRID, [les.scaled(scale) for les in LESIONS], pose=pose, seed=40010 + n)
        sources = write_series(root / name, ph.image, ph.truth.affine, name, when=when, frame=f"2.25.{4000 + n}")
        write_seg(root / name / "reference.dcm", sources, ph.labels)
    visits = "".join(f"      - {{case: {name}, date: {when.date().isoformat()}}}\n" for name, _, _, when in VISITS)
    (root / "cases.yaml").write_text(f"followups:\n  - patient: P1\n    visits:\n{visits}")
    return root


@pytest.mark.slow  # about 15 s on 2 cores
def test_demo_model_against_the_phantoms_truth(cases: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = Path(__file__).resolve().parents[2] / "models" / "demo-brain-mets"
    assert main(["evaluate-model", str(model), str(cases), "--json", "--providers", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    for case in result["cases"]:
        assert case["dice"] > 0.8, case  # measured 0.85-0.94
        assert case["hd95_mm"] <= 2.5, case  # one 2 mm voxel
        assert (case["detected_lesions"], case["reference_lesions"], case["false_positives"]) == (3, 3, 0), case
        assert all(abs(row["long_axis_error_mm"]) <= 2.0 for row in case["lesions"]), case
    s = result["summary"]
    assert s["long_axis_abs_error_mm"]["n"] == 9 and s["long_axis_abs_error_mm"]["mean"] < 1.0  # measured 0.41
    assert s["dice"]["sd"] is not None and s["dice"]["n"] == 3
    (followup,) = result["followups"]
    assert [(v["reference"], v["model"], v["agree"]) for v in followup["visits"]] == [("PR", "PR", True),
                                                                                      ("PD", "PD", True)]
    assert s["rano_bm"] == {"compared": 2, "agree": 2}
    assert s["model"]["name"] == "demo-brain-mets"
