"""The brain-metastases route with `radiomics:` on, run by the node's own job execution (router,
burst worker, outbox) on the small SYNTHETIC brain phantom, baseline then follow-up: the CSV
lands in the research folder (the shell writes it), the research SR is among the outputs on
its own series and passes dciodvfy, the clinical SR holds no radiomics, and the follow-up's
delta-radiomics are computed from the features the baseline recorded."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from report.validators import dciodvfy
from sqlalchemy import select

from daemon.config import Settings
from daemon.demo.response_patient import write_timepoints
from daemon.measure.radiomics_io import csv_name
from daemon.report.research_sr import PYRADIOMICS_SCHEME
from daemon.routing_rules import RulesHolder
from daemon.runtime.context import build_context
from daemon.runtime.execution import work_loop
from daemon.runtime.router import route_study
from daemon.store import outbox as ob
from jobs.test_pipeline_flow import store_ready_study

ROUTE = "brain-mets-research"
RULES = f"""\
version: 1
routes:
  - name: {ROUTE}
    pipeline: brain_mets
    destinations: [pacs]
    match: {{attribute: Modality, equals: MR}}
    parameters:
      priors_from: ""
      series: {{modality: [MR], contrast: true, acquisition_3d: true, slice_thickness_mm: [0.4, 2.0]}}
      radiomics: {{profile: ibsi_mri_default}}
"""


def _schemes(ds: pydicom.Dataset) -> set[str]:
    return {str(e.value) for e in ds.iterall() if e.keyword == "CodingSchemeDesignator"}


def _run(ctx: object, settings: Settings, holder: RulesHolder, folder: Path, now: datetime) -> list[pydicom.Dataset]:
    files = sorted(folder.glob("*.dcm"))
    study_id = store_ready_study(ctx, settings.store.spool_dir, files, now)
    assert route_study(ctx, holder, study_id, now) is not None
    assert work_loop(settings, "test-worker", lambda: False, burst=True, engine=ctx.engine) == 1  # type: ignore[attr-defined]
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    with ctx.sessions() as s:  # type: ignore[attr-defined]
        paths = [r.path for r in s.scalars(select(ob.OutboxRow).where(ob.OutboxRow.study_instance_uid == uid))]
    return [pydicom.dcmread(ob.outputs_root(settings.store.data_dir) / p) for p in paths]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_route_writes_the_csv_and_a_research_sr_and_deltas_at_follow_up(tmp_path: Path) -> None:
    baseline, followup, _ = write_timepoints(tmp_path / "demo", "small")
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES)
    research = tmp_path / "research"
    settings = Settings(
        store={"data_dir": tmp_path / "data", "database_url": f"sqlite:///{tmp_path / 'nadir.db'}"},
        routing={"rules_file": rules}, research={"folder": research},
        destinations={"pacs": {"ae_title": "PACS", "host": "127.0.0.1", "port": 4242,
                               "outputs": ["sr", "seg", "sc", "kos", "research_sr"]},  # research: when asked
                      "clinic": {"ae_title": "CLINIC", "host": "127.0.0.1", "port": 4243}},
    )
    ctx = build_context(settings)
    holder = RulesHolder(rules, settings.destinations.keys())
    now = datetime.now(UTC)

    first = _run(ctx, settings, holder, baseline.folder, now)
    srs = {int(ds.SeriesNumber): ds for ds in first if ds.Modality == "SR"}
    assert set(srs) == {9001, 9006}  # the clinical SR and the research SR, each on its own series
    clinical, research_sr = srs[9001], srs[9006]
    assert PYRADIOMICS_SCHEME not in _schemes(clinical) and "radiomics" not in str(clinical.ContentSequence).lower()
    assert PYRADIOMICS_SCHEME in _schemes(research_sr) and "not for clinical use" in research_sr.SeriesDescription
    seg = next(ds for ds in first if ds.Modality == "SEG")
    research_sr.save_as(tmp_path / "research-sr.dcm", enforce_file_format=True)
    assert dciodvfy(tmp_path / "research-sr.dcm").errors == []
    rows = _csv(research / csv_name(ROUTE, baseline.study_instance_uid))
    assert [r["TrackingID"] for r in rows] == ["L1", "L2"]
    assert {r["MaskReference"] for r in rows} == {str(seg.SOPInstanceUID)}
    assert all(r["FeatureStatus"] == "computed" and float(r["original_shape_VoxelVolume"]) > 0 for r in rows)
    assert {r["DeltaStatus"] for r in rows} == {"not computable: no prior timepoint (baseline)"}
    assert {r["StudyDate"] for r in rows} == {baseline.study_date}

    second = _run(ctx, settings, holder, followup.folder, now)
    rows = _csv(research / csv_name(ROUTE, followup.study_instance_uid))
    assert {r["DeltaStatus"] for r in rows} == {"computed"}
    assert {r["PriorStudyInstanceUID"] for r in rows} == {baseline.study_instance_uid}
    for r in rows:  # the follow-up's lesions shrink: the voxel volume's delta is negative and consistent
        delta = float(r["delta_original_shape_VoxelVolume"])
        assert delta < 0 and float(r["original_shape_VoxelVolume"]) - delta > 0
    research_sr = next(ds for ds in second if ds.Modality == "SR" and int(ds.SeriesNumber) == 9006)
    assert "DELTAPRIOR" in {str(e.value) for e in research_sr.iterall() if e.keyword == "CodeValue"}
    ctx.engine.dispose()  # type: ignore[attr-defined]
