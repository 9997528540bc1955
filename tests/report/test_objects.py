"""Every object is written, read back and compared; tracking, supersession, outcomes, text."""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset

from daemon.findings import Measurements, Timepoint
from daemon.report import codes as nc
from daemon.report.bundle import build_report, sr_identity
from daemon.report.identity import ObjectIdentity
from daemon.report.inputs import Outcome, ReportRequest
from daemon.report.kos import build_rejection
from daemon.report.readback import read_report
from daemon.report.sr import device_observer
from daemon.report.uids import lesion_uid, series_uid, sop_uid

from .phantom import OUTPUT, Phantom
from .synthetic import PATIENT_ID, ROUTE
from .validators import dciodvfy


def encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def roundtrip(ds: Dataset) -> Dataset:
    return pydicom.dcmread(io.BytesIO(encode(ds)))


def content_items(ds: Dataset, under: str | None = None) -> list[Dataset]:
    """All content items (or those under the container with concept code `under`)."""
    out = []
    top = list(ds.get("ContentSequence", []))
    if under is not None:
        top = [i for i in top if i.ConceptNameCodeSequence[0].CodeValue == under]
    stack = top
    while stack:
        item = stack.pop()
        out.append(item)
        stack.extend(item.get("ContentSequence", []))
    return out


def test_every_object_reads_back_equal(phantom: Phantom) -> None:
    for objs in (phantom.baseline_report, phantom.followup_report):
        for ds in objs.datasets():
            back = roundtrip(ds)
            assert back.SOPInstanceUID == ds.SOPInstanceUID
            assert back.StudyInstanceUID == objs.sr.StudyInstanceUID  # all in the source study
            assert back.PatientID == PATIENT_ID
            assert encode(back) == encode(ds)  # every element survives the trip


def test_objects_go_into_the_source_study_with_configured_series(phantom: Phantom) -> None:
    objs, s = phantom.followup_report, phantom.settings
    study = phantom.followup.timepoint.study_instance_uid
    assert objs.seg is not None
    for ds, cfg, kind in ((objs.sr, s.sr, "sr"), (objs.seg, s.seg, "seg"), (objs.kos, s.ko, "ko")):
        assert ds.StudyInstanceUID == study
        assert int(ds.SeriesNumber) == cfg.number and ds.SeriesDescription == cfg.description
        assert ds.SeriesInstanceUID == series_uid(study, ROUTE, kind, "0.1.0")
    assert {int(sc.SeriesNumber) for sc in objs.key_images} == {s.sc.number}


def test_uids_are_deterministic(phantom: Phantom) -> None:
    again = build_report(phantom.followup_request, phantom.settings)
    first = phantom.followup_report
    assert [d.SOPInstanceUID for d in again.datasets()] == [d.SOPInstanceUID for d in first.datasets()]
    assert again.sr.SOPInstanceUID == sop_uid(phantom.followup.timepoint.study_instance_uid, ROUTE, "sr", "0.1.0", 1, 0)
    assert len(first.sr.SOPInstanceUID) <= 64


def test_tracking_uids_equal_across_timepoints_and_second_sr_lists_first_study(phantom: Phantom) -> None:
    base = read_report(roundtrip(phantom.baseline_report.sr))
    fu = read_report(roundtrip(phantom.followup_report.sr))
    assert [les.tracking_uid for les in base.lesions] == [les.tracking_uid for les in fu.lesions]
    assert [les.tracking_id for les in fu.lesions] == ["T1", "T2"]
    first_study = phantom.baseline.timepoint.study_instance_uid
    assert fu.lesions[0].tracking_uid == lesion_uid(PATIENT_ID, first_study, ROUTE, 1)
    assert fu.comparison_studies == (first_study,)
    assert base.comparison_studies == ()
    # the SEG carries the same tracking UIDs as the SR
    seg = roundtrip(phantom.followup_report.seg)  # type: ignore[arg-type]
    assert [str(s.TrackingUID) for s in seg.SegmentSequence] == [les.tracking_uid for les in fu.lesions]


def test_readback_recovers_lesions_measurements_and_dates(phantom: Phantom) -> None:
    geometry = {str(d.SOPInstanceUID): d for d in phantom.followup.datasets}
    back = read_report(roundtrip(phantom.followup_report.sr), geometry)
    assert back.study_date == phantom.followup.timepoint.study_date
    assert back.criterion == "RANO-BM" and back.category == "PD"
    for got, want in zip(back.lesions, phantom.followup.timepoint.lesions, strict=True):
        assert (got.tracking_id, got.tracking_uid, got.kind) == (want.tracking_id, want.tracking_uid, want.kind)
        for axis in ("long_axis", "short_axis"):
            g, w = getattr(got.measurements, axis), getattr(want.measurements, axis)
            assert abs(g.length_mm - w.length_mm) < 1e-3
            for gp, wp in ((g.start_image, w.start_image), (g.end_image, w.end_image)):
                assert gp.slice == wp.slice  # GraphicData is FL (float32): 1e-4 px
                assert abs(gp.column - wp.column) < 1e-4 and abs(gp.row - wp.row) < 1e-4
            assert np.allclose(g.start, w.start, atol=1e-3) and np.allclose(g.end, w.end, atol=1e-3)
        assert abs(got.measurements.volume_ml - want.measurements.volume_ml) < 1e-6  # type: ignore[operator]
        assert got.measurements.ratios == want.measurements.ratios
        assert got.measurements.intensity == want.measurements.intensity


def test_sr_structure_units_and_codes(phantom: Phantom) -> None:
    sr = roundtrip(phantom.followup_report.sr)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"
    assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "COMPLETE"
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99NADIR"
    items = content_items(sr)
    names = {(i.ConceptNameCodeSequence[0].CodeValue, i.get("TextValue")) for i in items if i.ValueType == "TEXT"}
    assert ("111001", "unetr-brain-mets") in names and ("111003", "1.0.0") in names
    assert ("111002", "sha256=" + "0f" * 32) in names
    assert ("121015", "Nadir 0.1.0") in names
    nums = [i for i in content_items(sr, "126010") if i.ValueType == "NUM"]
    assert all(float(i.MeasuredValueSequence[0].NumericValue) != 0 for i in nums)
    units = {i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue for i in nums}
    assert units <= {"mm", "mm3", "1", "%"}
    category = [i for i in items if i.ValueType == "CODE" and i.ConceptNameCodeSequence[0].CodeValue == "112048"]
    assert {(c.ConceptCodeSequence[0].CodeValue, c.ConceptCodeSequence[0].CodingSchemeDesignator) for c in category} == {("PD", "99NADIR")}
    impression = [i.TextValue for i in items if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "121073"]
    assert impression == [phantom.followup_report.impression.line]
    assert "progressive disease (PD)" in impression[0] and "+23.1%" in impression[0]


def _variant(phantom: Phantom, **changes: object) -> ReportRequest:
    return dataclasses.replace(phantom.followup_request, **changes)  # type: ignore[arg-type]


def test_outcomes_are_encoded_explicitly(phantom: Phantom) -> None:
    empty = Timepoint(phantom.followup.timepoint.study_instance_uid, phantom.followup.timepoint.study_date, ())
    cases = {
        "no lesion": (_variant(phantom, timepoint=empty, outcome=Outcome.NO_LESION, assessment=None, mask=None), ("121052", "121054")),
        "no suitable series": (
            _variant(phantom, timepoint=empty, outcome=Outcome.NO_SUITABLE_SERIES, assessment=None, mask=None,
                     volume=None, reason="no post-contrast 3D T1"),
            ("121052", "121059"),
        ),
        "not evaluable": (_variant(phantom, timepoint=empty, outcome=Outcome.NOT_EVALUABLE, assessment=None, mask=None,
                                   reason="steroid dose increased"), ("112048", "NE")),
    }
    for label, (req, (name, value)) in cases.items():
        objs = build_report(req, phantom.settings)
        sr = roundtrip(objs.sr)
        codes_found = {(i.ConceptNameCodeSequence[0].CodeValue, i.ConceptCodeSequence[0].CodeValue)
                       for i in content_items(sr) if i.ValueType == "CODE"}
        assert (name, value) in codes_found, label
        assert not [i for i in content_items(sr, "126010") if i.ValueType == "NUM"], label
        assert objs.seg is None
        assert read_report(sr).lesions == ()
        objs_dir = OUTPUT / label.replace(" ", "-")
        objs_dir.mkdir(parents=True, exist_ok=True)
        objs.sr.save_as(objs_dir / "SR.dcm", enforce_file_format=True)
    assert "no post-contrast 3D T1" in build_report(cases["no suitable series"][0], phantom.settings).impression.line


def test_not_measured_is_not_zero(phantom: Phantom) -> None:
    les = phantom.followup.timepoint.lesions[1]
    unmeasured = dataclasses.replace(les, measurements=Measurements(volume_ml=les.measurements.volume_ml))
    tp = dataclasses.replace(phantom.followup.timepoint, lesions=(phantom.followup.timepoint.lesions[0], unmeasured))
    sr = roundtrip(build_report(_variant(phantom, timepoint=tp), phantom.settings).sr)
    back = read_report(sr)
    assert back.lesions[1].measurements.long_axis is None
    not_evaluated = [i for i in content_items(sr) if i.ValueType == "CODE" and i.ConceptCodeSequence[0].CodeValue == "373121007"]
    assert {i.ConceptNameCodeSequence[0].CodeMeaning for i in not_evaluated} == {"Long Axis", "Short Axis"}


def test_correction_supersedes_previous_sr(phantom: Phantom) -> None:
    first = phantom.followup_report.sr
    fixed = build_report(_variant(phantom, revision=1, previous_versions=(first,)), phantom.settings).sr
    assert fixed.SOPInstanceUID != first.SOPInstanceUID
    assert fixed.SeriesInstanceUID == first.SeriesInstanceUID
    assert int(fixed.InstanceNumber) == int(first.InstanceNumber) + 1
    pred = roundtrip(fixed).PredecessorDocumentsSequence[0]
    assert pred.StudyInstanceUID == first.StudyInstanceUID
    ref = pred.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == first.SOPInstanceUID


def test_seg_one_segment_per_lesion_empty_frames_omitted(phantom: Phantom) -> None:
    seg = roundtrip(phantom.followup_report.seg)  # type: ignore[arg-type]
    assert seg.SegmentationType == "BINARY"
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["T1", "T2"]
    assert [str(s.TrackingID) for s in seg.SegmentSequence] == ["T1", "T2"]
    n_slices = len(phantom.followup.datasets)
    assert 0 < int(seg.NumberOfFrames) < 2 * n_slices
    sources = {str(d.SOPInstanceUID) for d in phantom.followup.datasets}
    refs = {str(r.ReferencedSOPInstanceUID) for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert refs <= sources and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == phantom.followup.volume.series_instance_uid
    # the mask survives the trip: voxel count of segment 1
    frames = [i for i, f in enumerate(seg.PerFrameFunctionalGroupsSequence)
              if int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber) == 1]
    assert int(seg.pixel_array[frames].sum()) == int((phantom.followup.mask.labels == 1).sum())


def test_seg_segments_carry_distinct_display_colours(phantom: Phantom) -> None:
    """Recommended Display CIELab Value on every segment (OHIF warns without it), distinct
    within the SEG, the first the key images' contour red."""
    seg = roundtrip(phantom.followup_report.seg)  # type: ignore[arg-type]
    values = [tuple(int(v) for v in s.RecommendedDisplayCIELabValue) for s in seg.SegmentSequence]
    assert len(values) == len(seg.SegmentSequence) == 2
    assert all(len(v) == 3 and all(0 <= c <= 0xFFFF for c in v) for v in values)
    assert len(set(values)) == len(values)
    rgb = [hd.color.CIELabColor.from_dicom_value(v).to_rgb() for v in values]
    assert all(abs(a - b) <= 1 for a, b in zip(rgb[0], (255, 64, 64), strict=True)), rgb


def test_key_images_kos_and_pngs(phantom: Phantom) -> None:
    objs = phantom.followup_report
    assert len(objs.key_images) == 4  # two target lesions, trend plot, summary page
    for n, sc in enumerate(objs.key_images, start=1):
        back = roundtrip(sc)
        assert back.BurnedInAnnotation == "YES" and back.ConversionType == "WSD"
        assert list(back.ImageType) == ["DERIVED", "SECONDARY"]
        assert back.PhotometricInterpretation == "RGB" and back.pixel_array.dtype == np.uint8
        Image.fromarray(back.pixel_array).save(OUTPUT / f"followup_key_{n}.png")
    lesion_slice = objs.key_images[0].SourceImageSequence[0].ReferencedSOPInstanceUID
    assert lesion_slice == phantom.followup.timepoint.lesions[0].measurements.long_axis.start_image.slice.sop_instance_uid  # type: ignore[union-attr]
    kos = roundtrip(objs.kos)
    assert kos.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    referenced = {str(i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for i in kos.ContentSequence if "ReferencedSOPSequence" in i}
    assert objs.seg is not None
    wanted = {str(d.SOPInstanceUID) for d in (*objs.key_images, objs.sr, objs.seg)}
    assert wanted <= referenced
    texts = [i.TextValue for i in kos.ContentSequence if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "113012"]
    assert texts == [objs.impression.line]


def test_french_report(phantom: Phantom) -> None:
    objs = build_report(_variant(phantom, language="fr"), phantom.settings)
    assert objs.impression.line.startswith("RANO-BM : progression (PD). Somme des diamètres 32,0 mm")
    sr = roundtrip(objs.sr)
    lang = sr.ContentSequence[0]
    assert lang.ConceptCodeSequence[0].CodeValue == "fr-FR"
    assert sr.SpecificCharacterSet == "ISO_IR 100"
    impression = [i.TextValue for i in content_items(sr) if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "121073"]
    assert impression == [objs.impression.line]
    Image.fromarray(objs.key_images[-1].pixel_array).save(OUTPUT / "followup_summary_fr.png")
    Path(OUTPUT / "impressions.txt").write_text(
        f"{phantom.followup_report.impression.line}\n{objs.impression.line}\n", encoding="utf-8"
    )


def test_site_laterality_and_kind_codes(phantom: Phantom) -> None:
    sr = roundtrip(phantom.followup_report.sr)
    items = content_items(sr)
    sites = [i for i in items if i.ValueType == "CODE" and i.ConceptNameCodeSequence[0].CodeValue == "363698007"]
    assert {s.ConceptCodeSequence[0].CodeValue for s in sites} == {"12738006"}
    sides = {i.ConceptCodeSequence[0].CodeMeaning for i in items if i.ValueType == "CODE" and i.ConceptNameCodeSequence[0].CodeValue == "272741003"}
    assert sides == {"Left", "Right"}
    kinds = [i for i in items if i.ValueType == "CODE" and i.ConceptNameCodeSequence[0].CodingSchemeDesignator == nc.NADIR_SCHEME]
    assert {k.ConceptCodeSequence[0].CodeValue for k in kinds} == {"TARGET"}


def test_volumetric_group_option_references_the_seg_segment(phantom: Phantom) -> None:
    settings = phantom.settings.model_copy(update={"volumetric_groups": True})
    objs = build_report(phantom.followup_request, settings)
    sr = roundtrip(objs.sr)
    groups = [g for g in content_items(sr, "126010") if g.ValueType == "CONTAINER"]
    segs = [g for g in groups if any(i.ConceptNameCodeSequence[0].CodeValue == "121191" for i in g.ContentSequence)]
    assert len(segs) == 2  # one TID 1411 group per lesion, same tracking UID as its callipers
    back = read_report(sr)
    assert [les.segment_number for les in back.lesions] == [1, 2]
    assert [les.tracking_uid for les in back.lesions] == [les.tracking_uid for les in phantom.followup.timepoint.lesions]
    assert abs(back.lesions[0].measurements.volume_ml - phantom.followup.timepoint.lesions[0].measurements.volume_ml) < 1e-6  # type: ignore[operator]


def test_suv_statistics_use_ucum_suv_units_and_read_back(phantom: Phantom) -> None:
    les = phantom.followup.timepoint.lesions[0]
    stats = {"suv_max": 7.25, "suv_mean": 4.5, "suv_peak": 5.125, "sul_peak": 3.75}
    pet = dataclasses.replace(les, measurements=dataclasses.replace(les.measurements, intensity=stats))
    tp = dataclasses.replace(phantom.followup.timepoint, lesions=(pet,))
    sr = roundtrip(build_report(_variant(phantom, timepoint=tp), phantom.settings).sr)
    unit_items = {
        i.ConceptNameCodeSequence[0].CodeMeaning: i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
        for i in content_items(sr, "126010") if i.ValueType == "NUM"
    }
    # a code value over 16 characters is written as LongCodeValue (PS3.3 8.8)
    units = {(k, u.get("CodeValue") or u.get("LongCodeValue")) for k, u in unit_items.items()}
    assert ("SUVbw", "g/ml{SUVbw}") in units and ("SUVlbm(Janma)", "g/ml{SUVlbm(Janma)}") in units
    assert read_report(sr).lesions[0].measurements.intensity == stats


def test_ohif_hydratable_tracking_identifier_reads_back_clean(phantom: Phantom) -> None:
    settings = phantom.settings.model_copy(update={"ohif_hydratable": True})
    sr = roundtrip(build_report(phantom.followup_request, settings).sr)
    texts = [i.TextValue for i in content_items(sr, "126010") if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "112039"]
    assert "Cornerstone3DTools@^0.1.0:Bidirectional:T1" in texts
    assert [les.tracking_id for les in read_report(sr).lesions] == ["T1", "T2"]


def test_iocm_rejection_kos(phantom: Phantom, tmp_path: Path) -> None:
    study = phantom.followup.timepoint.study_instance_uid
    ident = ObjectIdentity(
        series_uid(study, ROUTE, "ko", "0.1.0"), 9004, sop_uid(study, ROUTE, "ko", "0.1.0", 2, 1), 2,
        "Nadir key objects", "Nadir", "0.1.0", "site-7",
    )
    observer = device_observer(sr_identity(phantom.followup_request, phantom.settings, "0.1.0"))
    kos = roundtrip(build_rejection([phantom.followup_report.sr], "superseded by revision 1", ident, observer))
    assert kos.ConceptNameCodeSequence[0].CodeValue == "113001"
    assert kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == phantom.followup_report.sr.SOPInstanceUID
    if shutil.which("dciodvfy"):
        kos.save_as(tmp_path / "rej.dcm", enforce_file_format=True)
        assert not dciodvfy(tmp_path / "rej.dcm").errors
