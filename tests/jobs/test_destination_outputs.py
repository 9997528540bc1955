"""`destinations.<name>.outputs`: which kinds of output (sr, seg, sc, kos, rtstruct) a
destination takes. The default is what every destination received before (no RTSTRUCT);
an unknown kind is refused with file and line; the outbox queues an output only for the
destinations that take its kind."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydicom.dataset import Dataset
from pydicom.uid import (
    ComprehensiveSRStorage,
    KeyObjectSelectionDocumentStorage,
    RTStructureSetStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)
from sqlalchemy import Engine, select

from daemon.config import DEFAULT_OUTPUTS, ConfigError, ReportSettings, Settings, load_settings
from daemon.report.kinds import kind_of, kind_of_dataset, taken_by
from daemon.runtime.execution import wanted_outputs
from daemon.store import outbox as ob
from daemon.store.db import make_sessionmaker

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SETTINGS = """\
destinations:
  pacs: {ae_title: PACS, host: 127.0.0.1, port: 4242}
  viewer:
    ae_title: VIEWER
    host: 127.0.0.1
    port: 4243
    outputs: [sr]
  tps:
    ae_title: TPS
    host: 127.0.0.1
    port: 4244
    outputs: [rtstruct]
"""
CLASSES = {
    "sr": ComprehensiveSRStorage, "seg": SegmentationStorage, "sc": SecondaryCaptureImageStorage,
    "kos": KeyObjectSelectionDocumentStorage, "rtstruct": RTStructureSetStorage,
}


def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "nadir.yaml"
    path.write_text(SETTINGS)
    return load_settings(path)


def test_the_default_is_what_was_sent_before_and_rtstruct_only_when_asked(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.outputs_of("pacs") == frozenset(DEFAULT_OUTPUTS) == {"sr", "seg", "sc", "kos"}
    assert s.outputs_of("viewer") == {"sr"}
    assert s.outputs_of("tps") == {"rtstruct"}
    assert s.outputs_of("STORESCP@127.0.0.1:4000") == frozenset(DEFAULT_OUTPUTS)  # inline in the routing file
    assert wanted_outputs(s, ["viewer"]) == {"sr"}
    assert wanted_outputs(s, ["pacs", "tps"]) == {"sr", "seg", "sc", "kos", "rtstruct"}
    assert wanted_outputs(s, []) == frozenset(DEFAULT_OUTPUTS)
    assert {kind: kind_of(uid) for kind, uid in CLASSES.items()} == {k: k for k in CLASSES}


def test_an_unknown_kind_is_refused_with_file_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "nadir.yaml"
    path.write_text(SETTINGS.replace("outputs: [rtstruct]", "outputs: [rtstruct, rtdose]"))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert f"{path}:12: destinations.tps.outputs.1:" in str(info.value)
    assert "'rtstruct'" in str(info.value)  # says what is allowed
    path.write_text(SETTINGS.replace("outputs: [rtstruct]", "outputs: []"))
    with pytest.raises(ConfigError, match="destinations.tps.outputs"):
        load_settings(path)


def test_the_environment_sets_a_destinations_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NADIR_DESTINATIONS__PACS__OUTPUTS", "sr, rtstruct")
    assert settings(tmp_path).outputs_of("pacs") == {"sr", "rtstruct"}


def test_each_destination_is_queued_only_the_kinds_it_takes(tmp_path: Path, engine: Engine) -> None:
    s = settings(tmp_path)
    outputs = [ob.Output(f"2.25.{n}", uid, "2.25.1", f"2.25.1/{n}.dcm", kind=kind_of(uid))
               for n, uid in enumerate(CLASSES.values(), 10)]
    outputs.append(ob.Output("2.25.99", "1.2.840.10008.5.1.4.1.1.30", "2.25.1", "2.25.1/99.dcm"))  # no kind: to all
    with make_sessionmaker(engine)() as session:
        added = ob.add(session, outputs, ["pacs", "viewer", "tps"], None, T0, s.outputs_of)
        session.commit()
        rows = session.execute(select(ob.OutboxRow.destination, ob.OutboxRow.sop_class_uid)).all()
    by_dest: dict[str, set[str | None]] = {}
    for dest, uid in rows:
        by_dest.setdefault(dest, set()).add(kind_of(uid))
    assert by_dest == {"pacs": {"sr", "seg", "sc", "kos", None}, "viewer": {"sr", None}, "tps": {"rtstruct", None}}
    assert added == len(rows) == 5 + 2 + 2


def test_the_research_sr_is_its_own_kind_told_by_its_series(tmp_path: Path) -> None:
    s = settings(tmp_path)
    sr = Dataset()
    sr.SOPClassUID, sr.SeriesNumber = CLASSES["sr"], s.report.sr.number
    assert kind_of_dataset(sr, s.report) == "sr"
    sr.SeriesNumber = s.report.research_sr.number
    assert kind_of_dataset(sr, s.report) == "research_sr"
    assert not taken_by("research_sr", s.outputs_of("pacs"))  # the default takes no research
    with pytest.raises(ValidationError, match="series numbers"):
        ReportSettings(research_sr_series_number=s.report.sr.number)
