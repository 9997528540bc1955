"""The brain-metastases route's own parts, without the network: lesion history in the
database, target selection and RANO-BM inputs, the no-suitable-series report. SYNTHETIC data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sqlalchemy.orm import Session

from daemon.criteria.inputs import NonTarget, Role
from daemon.demo.sr_table import summarize
from daemon.findings import Calliper, Lesion, LesionKind, Measurements, Timepoint
from daemon.pipelines import brain_mets, brain_mets_response
from daemon.pipelines.base import BUILTIN, PipelineError, PipelineInput, resolve
from daemon.report.readback import read_report
from daemon.store import lesions as store
from daemon.store.db import create_schema, make_engine
from daemon.volume import ImagePoint, SliceRef, Volume

REPO = Path(__file__).resolve().parents[2]


def _lesion(tid: str, kind: LesionKind, long_mm: float, centre: tuple[float, float, float]) -> Lesion:
    s = SliceRef("1.2.3.4", "1.2.840.10008.5.1.4.1.1.4")
    a = (centre[0] - long_mm / 2, centre[1], centre[2])
    b = (centre[0] + long_mm / 2, centre[1], centre[2])
    cal = Calliper(long_mm, a, b, ImagePoint(s, 10.5, 20.5), ImagePoint(s, 10.5 + long_mm, 20.5))
    short = Calliper(long_mm * 0.8, a, b, ImagePoint(s, 12.5, 18.5), ImagePoint(s, 12.5, 30.5))
    m = Measurements(long_axis=cal, short_axis=short, volume_ml=long_mm**3 / 2000, centroid=centre,
                     max_3d_diameter_mm=long_mm * 1.1, intensity={"signal_mean": 1234.5})
    return Lesion(tid, f"2.25.{abs(hash(tid)) % 10**12}", kind, m, segment_number=1, site="brain")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'n.db'}"
    url: str = request.getfixturevalue("postgres_url")  # on the session's private cluster
    return url


def test_lesion_history_round_trip_and_order(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    base = Timepoint("1.1", date(2025, 1, 1), (_lesion("L1", LesionKind.TARGET, 20.0, (1.0, 2.0, 3.0)),))
    fu = Timepoint("1.2", date(2025, 4, 1), (_lesion("L1", LesionKind.TARGET, 12.0, (1.0, 2.0, 3.0)),))
    with Session(engine) as session:
        store.save_timepoint(session, "P1", "route", fu, "9.9", ("8.1", "8.2"))
        store.save_timepoint(session, "P1", "route", base, "9.8", ("7.1", "7.2"))
        store.save_timepoint(session, "P1", "route", base, "9.8", ("7.1", "7.3"))  # a re-run replaces
        store.save_timepoint(session, "P2", "route", Timepoint("2.1", date(2025, 1, 1), ()))
        session.commit()
        rows = store.history(session, "P1", "route", date(2025, 7, 1))
        assert [tp.study_instance_uid for tp, _ in rows] == ["1.1", "1.2"]
        assert rows[0][1].sr_sop_instance_uid == "7.3"
        assert rows[0][0].lesions == base.lesions  # every field survives
        assert [tp.study_instance_uid for tp, _ in store.history(session, "P1", "route", date(2025, 4, 1))] == ["1.1"]
        assert store.history(session, "P1", "other-route", None) == []
        assert [t.study_instance_uid for t, _ in store.history(session, "P1", "route", None, exclude_study="1.2")] == ["1.1"]
    engine.dispose()


def _volume(slice_mm: float) -> Volume:
    affine = np.diag([slice_mm, 1.0, 1.0, 1.0])
    return Volume(np.zeros((4, 4, 4), np.float32), affine, tuple(SliceRef(f"1.{k}", "1.2") for k in range(4)), "1.9")


def test_response_targets_rules_and_disappeared_targets() -> None:
    params = brain_mets_response.load_params(REPO / "rules")
    vol = _volume(1.0)
    base = Timepoint("1.1", date(2025, 1, 1), (
        _lesion("L1", LesionKind.TARGET, 20.0, (0.0, 0.0, 0.0)),
        _lesion("L2", LesionKind.TARGET, 16.0, (40.0, 0.0, 0.0)),
        _lesion("L3", LesionKind.NON_TARGET, 6.0, (0.0, 40.0, 0.0)),
    ))
    pr = Timepoint("1.2", date(2025, 4, 1), (
        _lesion("L1", LesionKind.TARGET, 11.0, (0.0, 0.0, 0.0)),
        _lesion("L2", LesionKind.TARGET, 9.0, (40.0, 0.0, 0.0)),
        _lesion("L3", LesionKind.NON_TARGET, 5.0, (0.0, 40.0, 0.0)),
    ))
    pd = Timepoint("1.3", date(2025, 7, 1), (
        _lesion("L1", LesionKind.TARGET, 19.0, (0.0, 0.0, 0.0)),
        _lesion("L2", LesionKind.TARGET, 10.0, (40.0, 0.0, 0.0)),
    ))
    cr = Timepoint("1.3", date(2025, 7, 1), (_lesion("L1", LesionKind.TARGET, 19.0, (0.0, 0.0, 0.0)),))
    a, why = brain_mets_response.assess(params, [], base, vol)
    assert a is not None and a.category == "BASELINE" and not why
    a, _ = brain_mets_response.assess(params, [base], pr, vol)
    assert a is not None and a.category == "PR"
    inp = brain_mets_response.timepoint_input(base, cr, 1.0)
    gone = inp.lesion("L2")
    assert gone is not None and gone.role is Role.TARGET and gone.long_axis_mm == 0.0
    assert inp.nontarget is NonTarget.CR
    a, _ = brain_mets_response.assess(params, [base, pr], pd, vol)
    assert a is not None and a.category == "PD"  # L1 +8 mm and the sum +45 % vs the nadir
    gone, _ = brain_mets_response.assess(params, [base, pr], Timepoint("1.5", date(2025, 10, 1), ()), vol)
    assert gone is not None and gone.category == "CR"  # every lesion gone: the model found nothing
    none, why = brain_mets_response.assess(params, [], Timepoint("1.4", None, (pr.lesions[2],)), vol)
    assert none is None and "no measurable target" in why
    assert brain_mets_response.thresholds(params) == {"pr_pct_vs_baseline": -30.0, "pd_pct_vs_nadir": 20.0}


def test_pipeline_is_registered_and_checks_its_parameters() -> None:
    assert BUILTIN["brain_mets"] == "daemon.pipelines.brain_mets:run"
    assert resolve("brain_mets") is brain_mets.run
    with pytest.raises(PipelineError, match="parameters"):
        brain_mets.parameters({"modle": "x"})
    assert brain_mets.model_dir("demo-brain-mets") == REPO / "models" / "demo-brain-mets"
    assert brain_mets.model_dir("/opt/models/unetr") == Path("/opt/models/unetr")


def test_no_suitable_series_gives_a_valid_sr_saying_so(tmp_path: Path) -> None:
    from daemon.demo.response_patient import write_negative_cases

    thick = next(s for s in write_negative_cases(tmp_path) if s.name == "thick-slices")
    spec = {"modality": ["MR"], "contrast": True, "acquisition_3d": True, "slice_thickness_mm": [0.4, 2.0]}
    inp = PipelineInput(thick.study_instance_uid, "brain-mets-rano-bm", tuple(sorted(thick.folder.glob("*.dcm"))),
                        {"series": spec, "priors_from": ""})
    out = brain_mets.run(inp)
    assert [ds.Modality for ds in out if ds.Modality in ("SR", "SEG")] == ["SR"]
    sr = out[[ds.Modality for ds in out].index("SR")]
    assert sr.StudyInstanceUID == thick.study_instance_uid and sr.SeriesNumber == 9001
    back = read_report(pydicom.dcmread(_write(sr, tmp_path)))
    assert back.lesions == () and back.category is None
    summary = summarize(sr)
    assert "No suitable series" in summary.statements
    assert any("slice thickness" in t and "5 mm" in t for t in summary.texts)
    assert [str(ds.SOPInstanceUID) for ds in brain_mets.run(inp)] == [str(ds.SOPInstanceUID) for ds in out]


def _write(ds: pydicom.Dataset, folder: Path) -> Path:
    path = folder / "out.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path
