"""The routing file: the shipped one loads; errors name file and line; reload keeps
the old rules when the new file is invalid; destinations from settings and env."""

from __future__ import annotations

import logging
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_settings
from daemon.routing import SeriesSummary, StudySummary, decide
from daemon.routing_rules import RulesHolder, load_rules

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def study_of(modality: str) -> StudySummary:
    return StudySummary("1.2.3", {}, (SeriesSummary("1.2.3.1", {"Modality": (modality,)}, 10),))

GOOD = """\
version: 1
routes:
  - name: ct
    pipeline: qa_report
    destinations: [pacs, {ae_title: VIEWER, host: 127.0.0.1, port: 4242}]
    match: {attribute: Modality, equals: CT}
"""


def write(tmp_path: Path, text: str, name: str = "routing.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_shipped_rules_send_the_qa_report_to_pacs(repo_root: Path) -> None:
    rules = load_rules(repo_root / "rules" / "routing.yaml", {"pacs"})
    qa = [r for r in rules.routes if r.pipeline == "qa_report"]
    assert [(r.name, r.destinations, r.fallback) for r in qa] == [("qa-report", ("pacs",), False)]
    ct = study_of("CT")
    assert "qa-report" in [r.route.name for r in decide(ct, rules, NOW).matching]
    assert "qa-report" not in [r.route.name for r in decide(study_of("SR"), rules, NOW).matching]


def test_inline_destination_key(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, GOOD), {"pacs"})
    assert rules.routes[0].destinations == ("pacs", "VIEWER@127.0.0.1:4242")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("    pipeline: qa_report\n", "    pipeline: qa_report\n    colour: red\n"), 5, "unknown key"),
        (GOOD.replace("equals: CT", "regex: '(unclosed'"), 6, "bad regex"),
        (GOOD.replace("pipeline: qa_report", "pipeline: no_such_pipeline"), 4, "unknown pipeline 'no_such_pipeline'"),
        (GOOD.replace("[pacs,", "[archive,"), 5, "unknown destination 'archive'"),
        (GOOD.replace("{attribute: Modality, equals: CT}", "{attribute: Modality, equals: CT, one_of: [MR]}"), 6, "exactly one of"),
        (GOOD + "  - name: ct\n    pipeline: qa_report\n", None, "two routes are named 'ct'"),
        (GOOD.replace("attribute: Modality", "attribute: Modalty"), 6, "'Modalty' is not a DICOM keyword"),
    ],
)
def test_errors_name_file_line_and_problem(tmp_path: Path, text: str, line: int | None, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_rules(path, {"pacs"})
    msg = str(err.value)
    assert words in msg
    assert str(path) in msg
    if line is not None:
        assert f"{path}:{line}:" in msg


def test_reload_keeps_old_rules_when_invalid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, GOOD)
    holder = RulesHolder(path, {"pacs"})
    before = holder.rules
    path.write_text(GOOD.replace("equals: CT", "regex: '[bad'"))
    with caplog.at_level(logging.ERROR):
        assert holder.reload_if_changed() is False
    assert holder.rules is before
    assert holder.last_error is not None and "bad regex" in holder.last_error
    assert "previous rules stay in force" in caplog.text
    path.write_text(GOOD.replace("name: ct", "name: ct-v2"))
    assert holder.reload() is True
    assert holder.rules.routes[0].name == "ct-v2"
    assert holder.reload_if_changed() is False  # unchanged file: nothing to do


def test_destinations_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path, """\
        destinations:
          pacs: {ae_title: ORTHANC, host: pacs.local, port: 104}
        routing: {rules_file: /etc/nadir/routing.yaml}
        """, "nadir.yaml")
    monkeypatch.setenv("NADIR_DESTINATIONS__PACS__AE_TITLE", "PACS2")
    monkeypatch.setenv("NADIR_DESTINATIONS__PACS__PORT", "11113")
    monkeypatch.setenv("NADIR_ROUTING__RULES_FILE", str(tmp_path / "r.yaml"))
    monkeypatch.setenv("NADIR_OUTBOX__FIRST_RETRY_SECONDS", "0.5")
    s = load_settings(cfg)
    assert s.destinations["pacs"].ae_title == "PACS2"
    assert s.destinations["pacs"].host == "pacs.local"  # from the file, merged
    assert s.destinations["pacs"].port == 11113
    assert s.routing.rules_file == tmp_path / "r.yaml"
    assert s.outbox.first_retry_seconds == 0.5
    monkeypatch.setenv("NADIR_DESTINATIONS__VIEWER__AE_TITLE", "V")
    monkeypatch.setenv("NADIR_DESTINATIONS__VIEWER__HOST", "127.0.0.1")
    monkeypatch.setenv("NADIR_DESTINATIONS__VIEWER__PORT", "4242")
    assert load_settings(cfg).destinations["viewer"].port == 4242


def test_bad_destination_in_settings_names_line(tmp_path: Path) -> None:
    cfg = write(tmp_path, """\
        destinations:
          pacs:
            ae_title: ORTHANC
            host: pacs.local
            port: 99999
        """, "nadir.yaml")
    with pytest.raises(ConfigError, match=r"nadir.yaml:5: destinations.pacs.port"):
        load_settings(cfg)


def test_default_pacs_is_a_local_orthanc_overridable_key_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AE_TITLE", "HOST", "PORT"):
        monkeypatch.delenv(f"NADIR_DESTINATIONS__PACS__{key}", raising=False)
    monkeypatch.setenv("NADIR_DESTINATIONS__PACS__PORT", "11114")
    pacs = load_settings(None).destinations["pacs"]
    assert (pacs.ae_title, pacs.host, pacs.port) == ("ORTHANC", "127.0.0.1", 11114)
