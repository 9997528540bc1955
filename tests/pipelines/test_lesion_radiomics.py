"""Radiomics per lesion, for research: delta-radiomics against the prior timepoint (and every
reason it is not computable), the CSV rows, the research SR written, read back and checked by
dciodvfy and PixelMed, and the route's preflight. SYNTHETIC lesions and features."""

from __future__ import annotations

import csv
import importlib.util
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from report.validators import dciodvfy, pixelmed

from daemon.config import ReportSettings
from daemon.demo.dicom import SeriesInfo, StudyInfo, series_datasets
from daemon.findings import Lesion, LesionKind, Measurements, Timepoint
from daemon.measure.delta_radiomics import COMPUTED, NOTE_KEY, Provenance, deltas
from daemon.measure.radiomics_io import csv_name, write_radiomics_csv
from daemon.pipelines import lesion_radiomics
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.preflight import route_problems
from daemon.pipelines.research import ResearchTable, collect_research, record_research
from daemon.report.codes import as_coded
from daemon.report.research_sr import PYRADIOMICS_SCHEME, ResearchSrRequest, build_research_sr
from daemon.runtime.research import write_tables
from daemon.volume import Code

PROV = Provenance("ibsi_mri_default", "abcdef0123456789", "v3.0.1")
FINDING = as_coded(Code("14799000", "SCT", "Neoplasm, Metastatic"))


def _lesion(tid: str, features: dict[str, float], prov: Provenance | None = PROV, segment: int = 1) -> Lesion:
    notes = {NOTE_KEY: prov.note()} if prov is not None else {}
    return Lesion(tid, f"2.25.{100 + int(tid[1:])}", LesionKind.TARGET,
                  Measurements(volume_ml=1.0, radiomics=features, notes=notes), segment_number=segment)


PRIOR = Timepoint("1.2.3.1", date(2025, 1, 10), (
    _lesion("L1", {"original_shape_VoxelVolume": 900.0, "original_firstorder_Mean": 10.0}),
    _lesion("L2", {}, prov=None, segment=2),  # radiomics off for that study
))
NOW = (
    _lesion("L1", {"original_shape_VoxelVolume": 1200.0, "original_firstorder_Mean": 12.5}),
    _lesion("L2", {"original_shape_VoxelVolume": 50.0}, segment=2),
    _lesion("L3", {"original_shape_VoxelVolume": 30.0}, segment=3),  # new since the prior
)


def test_delta_is_current_minus_the_latest_prior_and_says_why_when_not_computable() -> None:
    older = Timepoint("1.2.3.0", date(2024, 6, 1), (_lesion("L1", {"original_shape_VoxelVolume": 1.0}),))
    d = deltas(NOW, [older, PRIOR])  # consecutive timepoints: the latest prior, not the first
    assert d["2.25.101"].status == COMPUTED
    assert d["2.25.101"].values == {"original_shape_VoxelVolume": 300.0, "original_firstorder_Mean": 2.5}
    assert (d["2.25.101"].prior_study_instance_uid, d["2.25.101"].prior_study_date) == ("1.2.3.1", date(2025, 1, 10))
    assert d["2.25.102"].status.startswith("not computable: the prior timepoint has no radiomics")
    assert d["2.25.103"].status == "not computable: lesion L3 not present at the prior timepoint"
    assert all(not d[u].values for u in ("2.25.102", "2.25.103"))  # no zeros in place of a delta
    baseline = deltas(NOW, [])
    assert {x.status for x in baseline.values()} == {"not computable: no prior timepoint (baseline)"}
    other = Provenance("seed_like", "fedcba9876543210", "v3.0.1")
    changed = deltas((_lesion("L1", {"original_shape_VoxelVolume": 5.0}, prov=other),), [PRIOR])
    assert "profile ibsi_mri_default" in changed["2.25.101"].status and not changed["2.25.101"].values
    none_now = deltas((_lesion("L1", {}, prov=None),), [PRIOR])
    assert none_now["2.25.101"].status == "not computable: no features at this timepoint"


def test_priors_not_looked_up_make_every_delta_not_computable() -> None:
    result = lesion_radiomics.LesionRadiomics(NOW, PROV, "spec", {les.tracking_uid: COMPUTED for les in NOW})
    d = lesion_radiomics.lesion_deltas(result, [PRIOR], "The assessment could not be compared: PACS refused.")
    assert all(x.status.startswith("not computable: earlier timepoints could not be looked up") for x in d.values())
    assert all(not x.values for x in d.values())


def _rows() -> tuple[lesion_radiomics.RadiomicsRow, ...]:
    result = lesion_radiomics.LesionRadiomics(NOW, PROV, "spec", {les.tracking_uid: COMPUTED for les in NOW})
    current = Timepoint("1.2.3.2", date(2025, 4, 2), NOW)
    seg = Dataset()
    seg.SOPInstanceUID = "2.25.999"
    return lesion_radiomics.rows(result, deltas(NOW, [PRIOR]), current, "1.2.3.2.1", seg)


def test_csv_rows_carry_profile_version_lesion_timepoint_and_delta(tmp_path: Path) -> None:
    path = write_radiomics_csv(tmp_path / csv_name("brain mets/rano", "1.2.3.2"), _rows())
    assert path.name == "radiomics_brain_mets_rano_1.2.3.2.csv"
    with path.open(encoding="utf-8") as fh:
        read = list(csv.DictReader(fh))
    assert [r["TrackingID"] for r in read] == ["L1", "L2", "L3"]
    first = read[0]
    assert (first["Profile"], first["ProfileHash"], first["PyRadiomicsVersion"]) == \
        ("ibsi_mri_default", "abcdef0123456789", "v3.0.1")
    assert (first["StudyDate"], first["PriorStudyDate"], first["PriorStudyInstanceUID"]) == ("20250402", "20250110", "1.2.3.1")
    assert first["MaskReference"] == "2.25.999" and first["SegmentNumber"] == "1"
    assert float(first["delta_original_shape_VoxelVolume"]) == 300.0 and first["DeltaStatus"] == "computed"
    assert read[2]["DeltaStatus"].startswith("not computable: lesion L3") and read[2]["delta_original_shape_VoxelVolume"] == ""
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, renamed


def test_the_shell_writes_the_recorded_tables_with_the_issued_seg_uid(tmp_path: Path) -> None:
    assert not record_research(ResearchTable("x.csv", _rows()))  # no collection open: dropped
    with collect_research() as tables:
        assert record_research(ResearchTable("t.csv", _rows()))
    written = write_tables(tmp_path / "research", tables, {"2.25.999": "2.25.1000"})
    with written[0].open(encoding="utf-8") as fh:
        assert {r["MaskReference"] for r in csv.DictReader(fh)} == {"2.25.1000"}
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert write_tables(blocked / "research", tables, {}) == []  # logged, never raised


def _sources() -> tuple[Dataset, ...]:
    study = StudyInfo("1.2.826.0.1.3680043.10.1442.77.1", datetime(2025, 4, 2, 9))
    series = SeriesInfo("1.2.826.0.1.3680043.10.1442.77.2", "MR", 5, "T1 post-Gd", "1.2.826.0.1.3680043.10.1442.77.3",
                        datetime(2025, 4, 2, 9))
    return tuple(series_datasets(np.zeros((2, 8, 8), np.float32), np.eye(4), study, series))


def test_research_sr_is_valid_titled_research_and_holds_features_and_deltas(tmp_path: Path) -> None:
    sources = _sources()
    d = deltas(NOW, [PRIOR])
    req = ResearchSrRequest(str(sources[0].StudyInstanceUID), sources, NOW, PROV, "radiomics.md section 2", d,
                            {les.tracking_uid: COMPUTED for les in NOW}, FINDING)
    inp = PipelineInput(str(sources[0].StudyInstanceUID), "brain", (), report=ReportSettings())
    sr = build_research_sr(req, lesion_radiomics._identity(inp))
    path = tmp_path / "research.dcm"
    sr.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert back.SeriesNumber == 9006 and "not for clinical use" in back.SeriesDescription
    groups = [g for item in back.ContentSequence if item.ConceptNameCodeSequence[0].CodeValue == "126010"
              for g in item.ContentSequence]
    assert [g.ContentSequence[0].TextValue for g in groups] == ["L1", "L2", "L3"]
    nums = [i for i in groups[0].ContentSequence if i.ValueType == "NUM"]
    deltas_l1 = [i for i in nums if "ContentSequence" in i]  # the delta NUMs: derivation DELTAPRIOR
    assert len(nums) == 4 and len(deltas_l1) == 2
    assert {i.ConceptNameCodeSequence[0].CodingSchemeDesignator for i in nums} == {PYRADIOMICS_SCHEME}
    assert deltas_l1[0].ContentSequence[0].ConceptCodeSequence[0].CodeValue == "DELTAPRIOR"
    volume = next(i for i in nums if "ContentSequence" not in i and
                  i.ConceptNameCodeSequence[0].LongCodeValue == "original_shape_VoxelVolume")
    assert float(volume.MeasuredValueSequence[0].NumericValue) == 1200.0
    assert volume.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "mm3"
    texts = [t.TextValue for item in back.ContentSequence if item.ValueType == "CONTAINER"
             for t in item.get("ContentSequence", []) if t.ValueType == "TEXT"]
    assert texts[0].startswith("RESEARCH USE ONLY") and "PyRadiomics v3.0.1" in texts[1]
    assert any(t.startswith("L3: features computed; delta not computable: lesion L3 not present") for t in texts)
    algo = [i.TextValue for i in groups[0].ContentSequence if i.ValueType == "TEXT"]
    assert "PyRadiomics" in algo and "v3.0.1" in algo and "profile=ibsi_mri_default" in algo
    assert dciodvfy(path).errors == []
    assert pixelmed(path).errors == []


def test_preflight_refuses_a_route_asking_radiomics_without_pyradiomics_or_with_an_unknown_profile(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert route_problems("brain_mets", {"radiomics": {"profile": "seed_like"}, "priors_from": ""}) == []
    unknown = route_problems("brain_mets", {"radiomics": {"profile": "nope"}})
    assert [p.loc for p in unknown] == [("parameters", "radiomics", "profile")]
    assert "seed_like" in unknown[0].message and "ibsi_mri_default" in unknown[0].message
    assert route_problems("brain_mets", {"radiomics": {"profle": "x"}})[0].loc == ("parameters", "radiomics", "profle")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "radiomics" else real(name, *a))
    missing = route_problems("brain_mets", {"radiomics": {}})
    assert [p.loc for p in missing] == [("parameters", "radiomics")]
    assert "PyRadiomics is not installed" in missing[0].message and "nadir[radiomics]" in missing[0].message
