"""`nadir explain DIR`: words an admin reads, for a study that matches, one that
matches partly, and one that matches nothing; an invalid routing file is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jobs.studies import make_series, write_study
from pydicom.uid import generate_uid

from daemon.cli import main

RULES = """\
version: 1
routes:
  - name: brain-mets
    pipeline: qa_report
    destinations: [pacs]
    match:
      all:
        - {attribute: Modality, equals: MR}
        - series: {attribute: SeriesDescription, regex: "(?i).*t1.*gd.*"}
          name: post-contrast T1
  - name: ct-chest
    pipeline: qa_report
    destinations: [pacs]
    match: {attribute: Modality, equals: CT}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES)
    monkeypatch.setenv("NADIR_ROUTING__RULES_FILE", str(rules))
    monkeypatch.setenv("NADIR_STORE__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NADIR_DESTINATIONS__PACS__AE_TITLE", "PACS")
    monkeypatch.setenv("NADIR_DESTINATIONS__PACS__HOST", "127.0.0.1")
    monkeypatch.setenv("NADIR_DESTINATIONS__PACS__PORT", "4242")
    return tmp_path


def explain(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["explain", str(folder)])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_match(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = generate_uid()
    write_study(env / "mr", [make_series(st, modality="MR", description="T1 MPRAGE GD", positions=[0, 1, 2])])
    rc, text = explain(env / "mr", capsys)
    assert rc == 0
    assert "runs 1 route(s): brain-mets" in text
    assert "route 'brain-mets' -> run" in text
    assert "[yes] SeriesDescription matches /(?i).*t1.*gd.*/ (read 'T1 MPRAGE GD' in series" in text
    assert "route 'ct-chest' -> no match" in text


def test_partial_match(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = generate_uid()
    write_study(env / "flair", [make_series(st, modality="MR", description="FLAIR", positions=[0, 1])])
    rc, text = explain(env / "flair", capsys)
    assert rc == 0
    assert "no route matches" in text
    assert "[yes] Modality is 'MR'" in text
    assert "[no ] at least 1 series (post-contrast T1) such that (0 of 1 series)" in text


def test_no_match(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = generate_uid()
    write_study(env / "mr2", [make_series(st, modality="MR", description="DWI", positions=[0])])
    (env / "rules2.yaml").write_text("version: 1\nroutes: []\n")
    rc = main(["explain", str(env / "mr2"), "--rules", str(env / "rules2.yaml")])
    assert rc == 0
    assert "no route matches: nothing will run" in capsys.readouterr().out


def test_invalid_rules_file(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "routing.yaml").write_text(RULES.replace("equals: CT", "equal: CT"))
    rc, text = explain(env, capsys)
    assert rc == 2
    assert "routing.yaml:14:" in text and "unknown key" in text


def test_json(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = generate_uid()
    write_study(env / "mr3", [make_series(st, modality="MR", description="T1 MPRAGE GD", positions=[0, 1])])
    assert main(["explain", str(env / "mr3"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (study,) = out["studies"]
    assert out["routes"] == 2 and study["study_instance_uid"] == st and study["runs"] == ["brain-mets"]
    brain, ct = study["results"]
    assert (brain["route"], brain["outcome"], ct["outcome"]) == ("brain-mets", "run", "no match")
    modality, series = brain["match"]["children"]
    assert (modality["keyword"], modality["values"], modality["matched"]) == ("Modality", ["MR"], True)
    assert series["children"][0]["values"] == ["T1 MPRAGE GD"]


def test_a_missing_folder_is_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, text = explain(env / "nowhere", capsys)
    assert rc == 2 and text == f"nadir explain: {env / 'nowhere'}: no such folder (and not a Study Instance UID)\n"
