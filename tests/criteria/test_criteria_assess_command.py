"""`nadir assess`: one case, a list, a {cases: [...]} document; JSON mirrors `expected`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers_criteria import CASES_DIR, mismatches

from daemon.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["assess", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_for_a_shared_file(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, str(CASES_DIR / "cases_b.yaml"), "--json")
    assert rc == 0
    got = json.loads(out)
    cases = yaml.safe_load((CASES_DIR / "cases_b.yaml").read_text(encoding="utf-8"))["cases"]
    assert [g["id"] for g in got] == [c["id"] for c in cases]
    assert all(not mismatches(c["expected"], g) for c, g in zip(cases, got, strict=True))
    assert got[0]["citation"]["text"] and got[0]["reasons"]


def test_single_case_list_and_invalid_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = {"id": "G1", "criterion": "fet_puranik_twm",
            "inputs": {"tracer": "FET", "setting": "GLIOMA", "tumour_suv": 3.3, "white_matter_suv": 1.2}}
    bad = {"id": "B1", "criterion": "fet_puranik_twm", "inputs": {"tracer": "FET", "tumour_suv": "x"}}
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump(good), encoding="utf-8")
    rc, out, _ = run(capsys, str(one), "--json")
    assert rc == 0 and json.loads(out)[0]["category"] == "recurrence_favoured"
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([bad, good]), encoding="utf-8")
    rc, out, _ = run(capsys, str(listed), "--json")
    got = json.loads(out)
    assert rc == 1
    assert got[0] == {"id": "B1", "criterion": "fet_puranik_twm", "error": "inputs.tumour_suv: must be a number, got 'x'"}
    assert got[1]["ratio"] == 2.75


def test_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, str(CASES_DIR / "cases.yaml"))
    assert rc == 0
    assert "RECIST-01 [RECIST1.1]: PR" in out and "sum 70 mm is -30% vs baseline 100 mm" in out
    assert "SUV-01 [SUV]: no category (values only)" in out and "suv_bw=5.922" in out
    doc = tmp_path / "doc.yaml"
    doc.write_text(yaml.safe_dump({"cases": [{"id": "X", "criterion": "nope", "inputs": {}},
                                             {"criterion": "chun", "inputs": {"baseline_group": 2,
                                                                              "followup_group": 1, "why": 1}}]}),
                   encoding="utf-8")
    rc, out, _ = run(capsys, str(doc))
    assert rc == 1
    assert "X [nope]: ERROR criterion: unknown criterion 'nope'" in out
    assert "(no id) [chun]: optimal" in out and "! inputs.why: unknown key ignored" in out


def test_unreadable_inputs_and_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, str(tmp_path / "missing.yaml"))
    assert rc == 2 and "missing.yaml" in err
    (tmp_path / "recist.yaml").write_text("max_targets: 0\n", encoding="utf-8")
    rc, _, err = run(capsys, str(CASES_DIR / "cases.yaml"), "--site", str(tmp_path))
    assert rc == 2 and "max_targets" in err


def test_site_rules_change_the_printed_category(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "perfusion.yaml").write_text("bf_ratio_cutoff: 0.5\n", encoding="utf-8")
    case = tmp_path / "c.yaml"
    case.write_text(yaml.safe_dump({"id": "P", "criterion": "ct_perfusion_bf_ratio",
                                    "inputs": {"parameter": "BF", "lesion": 40, "healthy": 60}}), encoding="utf-8")
    assert json.loads(run(capsys, str(case), "--json")[1])[0]["category"] == "major_response_predicted"
    got = json.loads(run(capsys, str(case), "--json", "--site", str(tmp_path))[1])[0]
    assert got["category"] == "not_major" and got["cutoff"] == 0.5
