"""RECIST 1.1 and Chun side by side: the Chun group and features in the SR, read back, in the
text (en/fr) and the summary page, through the three validators and dcmjs; and the lesion's
name as the label OHIF prints beside its callipers, on both routes."""

from __future__ import annotations

import copy
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from daemon.criteria.assessment import Assessment, Citation
from daemon.report import codes as nc
from daemon.report.bundle import build_report
from daemon.report.keyimages import WORDS, per_lesion_rows
from daemon.report.readback import read_report
from daemon.report.sr import latin1_text
from daemon.report.text import render_impression

from .liver import FEATURES, Liver, build_liver
from .phantom import Phantom, write
from .test_objects import content_items, roundtrip
from .validators import PIXELMED_JAR, dciodvfy, dsrdump, node_ready, pixelmed, read_sr_like_ohif

CHUN_KEYS = ("hu_mean", "hu_sd", "lesion_to_liver_hu", "interface_hu_per_mm", "rim_vs_core_hu", "rim_vs_liver_hu")


@pytest.fixture(scope="module")
def liver(phantom: Phantom) -> Iterator[Liver]:
    yield build_liver()


def _groups(sr: Dataset) -> list[Dataset]:
    (measurements,) = [i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010"]
    return list(measurements.ContentSequence)


def _items(group: Dataset, value_type: str, code: str) -> list[Dataset]:
    return [i for i in group.ContentSequence
            if i.ValueType == value_type and i.ConceptNameCodeSequence[0].CodeValue == code]


def _tracking_id(group: Dataset) -> str:
    return str(_items(group, "TEXT", "112039")[0].TextValue)


def test_both_assessments_each_in_its_own_group(liver: Liver) -> None:
    sr = roundtrip(liver.followup_report.sr)
    methods = {
        _tracking_id(g): [(i.ConceptCodeSequence[0].CodeValue, i.ConceptCodeSequence[0].CodingSchemeDesignator)
                          for i in _items(g, "CODE", "112021")]
        for g in _groups(sr)
    }
    # RECIST 1.1 is CID 6147's (DCM,126081); Chun has no standard code (99NADIR)
    assert methods["RECIST1.1 assessment"] == [("126081", "DCM")]
    assert methods["Chun assessment"] == [("CHUN", "99NADIR")]
    chun = next(g for g in _groups(sr) if _tracking_id(g) == "Chun assessment")
    codes = {(i.ConceptNameCodeSequence[0].CodeValue, i.ConceptCodeSequence[0].CodeValue)
             for i in chun.ContentSequence if i.ValueType == "CODE"}
    assert ("112048", "PER_LESION") in codes and ("REVIEW", "TOCONFIRM") in codes
    assert not [i for i in chun.ContentSequence if i.ValueType == "NUM"]  # its numbers stay in the text
    # no NUM, so no SCOORD: it shares the RECIST group's tracking UID, where OHIF places both
    uids = {_tracking_id(g): str(_items(g, "UIDREF", "112040")[0].UID) for g in _groups(sr)}
    assert uids["Chun assessment"] == uids["RECIST1.1 assessment"]
    assert len(set(uids.values())) == len(uids) - 1
    back = read_report(sr)
    assert (back.criterion, back.category) == ("RECIST 1.1", "PR")  # the main one is the first
    assert back.other_assessments == (("Chun morphologic response", "PER_LESION"),)


def test_per_lesion_group_response_and_proposal_flag(liver: Liver) -> None:
    sr = roundtrip(liver.followup_report.sr)
    lesions = {_tracking_id(g): g for g in _groups(sr) if _items(g, "CODE", "LESIONKIND")}
    assert set(lesions) == {"H1", "H2"}
    want = {"H1": ("CHUNG1", "OPTIMAL"), "H2": ("CHUNG2", "INCOMPLETE")}
    for name, group in lesions.items():
        value = {i.ConceptNameCodeSequence[0].CodeValue: i.ConceptCodeSequence[0].CodeValue
                 for i in group.ContentSequence if i.ValueType == "CODE"}
        assert (value["CHUNGROUP"], value["CHUNRESP"]) == want[name]
        assert value["REVIEW"] == "TOCONFIRM"
        assert value["363698007"] == "10200004"  # finding site: liver
        basis = _items(group, "TEXT", "CHUNBASIS")[0].TextValue
        assert basis.startswith("hu_sd")


def test_features_are_nums_with_ucum_units_and_standard_codes_where_they_exist(liver: Liver) -> None:
    sr = roundtrip(liver.followup_report.sr)
    h1 = next(g for g in _groups(sr) if _tracking_id(g) == "H1")
    nums = {}
    for i in h1.ContentSequence:
        if i.ValueType != "NUM":
            continue
        derivation = [c.ConceptCodeSequence[0].CodeValue for c in i.get("ContentSequence", [])
                      if c.ConceptNameCodeSequence[0].CodeValue == "121401"]
        key = (i.ConceptNameCodeSequence[0].CodeValue, derivation[0] if derivation else "")
        unit = i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
        nums[key] = (float(i.MeasuredValueSequence[0].NumericValue), unit.CodeValue, unit.CodingSchemeDesignator)
        # every NUM keeps an INFERRED FROM SCOORD (OHIF reads it; conformance §2.2 rule 6)
        assert any(c.ValueType == "SCOORD" for c in i.ContentSequence)
    f = FEATURES["1"]
    hu = ("[hnsf'U]", "UCUM")
    assert nums[("112031", "373098007")] == (f["hu_mean"], *hu)  # Attenuation Coefficient, Mean
    assert nums[("112031", "386136009")] == (f["hu_sd"], *hu)  # ..., Standard Deviation
    assert nums[(nc.LESION_TO_LIVER_HU.value, "")] == (f["lesion_to_liver_hu"], *hu)
    assert nums[(nc.INTERFACE_GRADIENT.value, "")] == (f["interface_hu_per_mm"], "[hnsf'U]/mm", "UCUM")
    assert nums[(nc.RIM_VS_CORE_HU.value, "")] == (f["rim_vs_core_hu"], *hu)
    assert nums[(nc.RIM_VS_LIVER_HU.value, "")] == (f["rim_vs_liver_hu"], *hu)


def test_readback_recovers_features_and_proposed_groups(liver: Liver) -> None:
    for objs, tp in ((liver.baseline_report, liver.baseline.timepoint), (liver.followup_report, liver.followup.timepoint)):
        back = read_report(roundtrip(objs.sr))
        for got, want in zip(back.lesions, tp.lesions, strict=True):
            assert got.tracking_id == want.tracking_id
            assert got.measurements.intensity == want.measurements.intensity
            assert set(got.measurements.intensity) == set(CHUN_KEYS)
            assert got.measurements.notes == want.measurements.notes  # chun_group and chun_basis


def test_impression_en_and_fr_state_the_proposal(liver: Liver) -> None:
    en = liver.followup_report.impression
    assert en.line.startswith("RECIST1.1: partial response (PR).")
    assert en.line.endswith(
        "Chun (proposed — confirm): H1 group 3 → 1, optimal morphologic response; "
        "H2 group 3 → 2, incomplete morphologic response. "
        "Chun criteria were validated under bevacizumab, not stated for this regimen."
    )
    assert "Criterion: Chun (Chun YS" in en.details and "proposed_group_unconfirmed" in en.details
    fr = build_report(dataclasses.replace(liver.followup_request, language="fr"), liver.settings).impression
    assert "Chun (proposé — à confirmer) : H1 groupe 3 → 1, réponse morphologique optimale ; " in fr.line
    assert "H2 groupe 3 → 2, réponse morphologique incomplète." in fr.line
    base = liver.baseline_report.impression.line
    assert base.endswith("Chun groups (proposed — confirm): H1 group 3, H2 group 3.")
    base_fr = build_report(dataclasses.replace(liver.baseline_request, language="fr"), liver.settings).impression
    assert base_fr.line.endswith("Groupes de Chun (proposés — à confirmer) : H1 groupe 3, H2 groupe 3.")


def test_sr_and_kos_text_in_the_source_character_set(liver: Liver) -> None:
    """"—" and "→" are not Latin-1: a Latin-1 study's SR and KOS fold them ("proposed - confirm",
    "3 -> 1"; dcmtk's checker does not handle UTF-8); a UTF-8 study's keep them."""
    objs = liver.followup_report
    sr, kos = roundtrip(objs.sr), roundtrip(objs.kos)
    assert sr.SpecificCharacterSet == kos.SpecificCharacterSet == "ISO_IR 100"
    folded = latin1_text(objs.impression.line)
    assert "Chun (proposed - confirm): H1 group 3 -> 1, optimal morphologic response" in folded
    assert _impression(sr) == [folded]
    description = [i.TextValue for i in kos.ContentSequence
                   if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "113012"]
    assert description == [folded]
    utf8 = tuple(copy.deepcopy(ds) for ds in liver.followup.datasets)
    for ds in utf8:
        ds.SpecificCharacterSet = "ISO_IR 192"
    again = build_report(dataclasses.replace(liver.followup_request, source_images=utf8), liver.settings)
    sr = roundtrip(again.sr)
    assert sr.SpecificCharacterSet == "ISO_IR 192" and _impression(sr) == [again.impression.line]


def _impression(sr: Dataset) -> list[str]:
    return [i.TextValue for i in content_items(sr)
            if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "121073"]


def test_summary_page_lists_chun_per_lesion(liver: Liver) -> None:
    req = liver.followup_request
    rows = per_lesion_rows(req, WORDS["en"], "en", liver.settings.templates_dir)
    assert rows == [
        ("Lesion", "Chun group (proposed — confirm)", "Chun: response"),
        ("H1", "3 → 1", "optimal morphologic response"),
        ("H2", "3 → 2", "incomplete morphologic response"),
    ]
    base = per_lesion_rows(liver.baseline_request, WORDS["fr"], "fr", liver.settings.templates_dir)
    assert base == [("Lésion", "Chun (proposé — à confirmer)"), ("H1", "3"), ("H2", "3")]
    assert len(liver.followup_report.key_images) == 4  # two lesions, trend plot, summary page


def test_brain_route_writes_none_of_it(phantom: Phantom) -> None:
    sr = roundtrip(phantom.followup_report.sr)
    codes = {i.ConceptNameCodeSequence[0].CodeValue for i in content_items(sr)}
    assert not codes & {"CHUNGROUP", "CHUNBASIS", "CHUNRESP", "REVIEW", nc.LESION_TO_LIVER_HU.value}
    assert "Chun" not in phantom.followup_report.impression.line
    assert read_report(sr).lesions[0].measurements.notes == {}


def test_every_lesion_group_names_its_lesion_for_ohif(phantom: Phantom, liver: Liver) -> None:
    """OHIF 3.x prints a group's TEXT (DCM,121106,"Comment") as the first line of its label."""
    for sr in (phantom.followup_report.sr, liver.followup_report.sr):
        for group in _groups(roundtrip(sr)):
            if _items(group, "CODE", "LESIONKIND"):
                assert [i.TextValue for i in _items(group, "TEXT", "121106")] == [_tracking_id(group)]
            else:
                assert not _items(group, "TEXT", "121106")


# --- the independent validators, as test_validators.py runs them on the brain route --------


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_liver_objects_dciodvfy_no_errors(liver: Liver, tmp_path: Path) -> None:
    warnings: set[str] = set()
    for objs, name in ((liver.baseline_report, "baseline"), (liver.followup_report, "followup")):
        for path in write(objs, tmp_path / name):
            found = dciodvfy(path)
            assert not found.errors, f"{path.name}: {found.errors}"
            warnings.update(f"{path.name.split('_')[0]}: {w}" for w in found.warnings)
    print("\ndciodvfy warnings (liver):\n" + "\n".join(sorted(warnings)))


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("dsrdump") is None, reason="dcmtk not installed")
def test_liver_sr_dsrdump(liver: Liver, tmp_path: Path) -> None:
    path = tmp_path / "sr.dcm"
    liver.followup_report.sr.save_as(path, enforce_file_format=True)
    proc = dsrdump(path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert '(126081,DCM,"RECIST 1.1")' in proc.stdout and '(CHUN,99NADIR,"Chun morphologic response")' in proc.stdout


@pytest.mark.integration
@pytest.mark.skipif(not PIXELMED_JAR.exists() or shutil.which("java") is None, reason="PixelMed not installed")
def test_liver_sr_pixelmed_no_errors(liver: Liver, tmp_path: Path) -> None:
    # the follow-up holds every item the baseline has, and the Chun group and responses
    path = tmp_path / "followup.dcm"
    liver.followup_report.sr.save_as(path, enforce_file_format=True)
    found = pixelmed(path)
    assert "Found Root Template TID_1500" in found.output, found.output[-2000:]
    assert not found.errors, "\n".join(found.errors)
    print("\nPixelMed warnings for the liver follow-up:\n" + "\n".join(found.warnings))


@pytest.mark.integration
def test_liver_sr_ohif_parser(liver: Liver, tmp_path: Path) -> None:
    why = node_ready()
    if why is not None:
        pytest.skip(why)
    path = tmp_path / "sr.dcm"
    liver.followup_report.sr.save_as(path, enforce_file_format=True)
    parsed = read_sr_like_ohif(path)
    by_id = {m["trackingIdentifier"]: m for m in parsed["measurements"]}
    for lesion in liver.followup.timepoint.lesions:
        nums = by_id[lesion.tracking_id]["measurements"]
        assert {n["meaning"] for n in nums} >= {"Long Axis", "Short Axis", "Volume", "Attenuation Coefficient",
                                                "Lesion-liver interface attenuation gradient"}
        assert {n["unit"] for n in nums} == {"mm", "mm3", "[hnsf'U]", "[hnsf'U]/mm"}
        # the derivation (Mean, SD) is a NUM's first child, before its SCOORD: OHIF warns and
        # leaves those two out of the label; every other NUM has its SCOORD first
        assert [n["meaning"] for n in nums if n["scoord"] is None] == ["Attenuation Coefficient"] * 2
    # OHIF merges the Chun group (no NUM, no SCOORD) into the RECIST one: a measurement without
    # a coordinate would make OHIF 3.12 throw and draw nothing of the SR
    assert "Chun assessment" not in by_id
    assert all(m["coords"] > 0 for m in parsed["measurements"]), parsed["measurements"]
    assert {k: m["comments"] for k, m in by_id.items()} == {"H1": ["H1"], "H2": ["H2"], "RECIST1.1 assessment": []}


def test_an_extra_assessment_without_per_lesion_results_is_one_sentence(liver: Liver) -> None:
    pmr = Assessment("PERCIST1.0", Citation("Wahl RL et al. J Nucl Med 2009;50:122S-150S"), "PMR")
    req = dataclasses.replace(liver.followup_request, extra_assessments=(pmr,))
    line = render_impression(req, "en", liver.settings.templates_dir).line
    # and the lesions' proposed groups are still said, without a Chun response
    assert line.endswith(
        "2 lesions measured. PERCIST1.0: partial metabolic response (PMR). "
        "Chun groups (proposed — confirm): H1 group 1, H2 group 2."
    )
    assert nc.category_code("not_evaluable") == nc.category_code("NE")  # chun.py's per-lesion NE


def test_a_group_confirmed_by_a_radiologist_is_not_a_proposal(liver: Liver) -> None:
    confirmed = tuple(
        dataclasses.replace(les, measurements=dataclasses.replace(
            les.measurements, notes={**les.measurements.notes, "chun_group_source": "radiologist"}))
        for les in liver.baseline.timepoint.lesions
    )
    req = dataclasses.replace(
        liver.baseline_request, timepoint=dataclasses.replace(liver.baseline.timepoint, lesions=confirmed))
    objs = build_report(req, liver.settings)
    assert objs.impression.line.endswith("Chun groups: H1 group 3, H2 group 3.")
    sr = roundtrip(objs.sr)
    names = {i.ConceptNameCodeSequence[0].CodeValue for i in content_items(sr) if i.ValueType == "CODE"}
    assert "CHUNGROUPRAD" in names and not names & {"CHUNGROUP", "REVIEW"}
    assert [les.measurements.notes for les in read_report(sr).lesions] == [les.measurements.notes for les in confirmed]
    assert per_lesion_rows(req, WORDS["en"], "en", liver.settings.templates_dir)[0] == ("Lesion", "Chun group")
