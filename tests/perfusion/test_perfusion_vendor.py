"""Vendor perfusion maps (input (a)) recognised by rules/perfusion_vendor.yaml on SYNTHETIC headers in GE
CT Perfusion 4D and Siemens syngo CT Body Perfusion naming; colour-rendered maps refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from perfusion_helpers import codes_of, groups, nums, small_phantom, texts, tracking_id
from pydicom.dataset import Dataset

from daemon.criteria.rules import RulesSource
from daemon.demo.perfusion_phantom import WriteOptions, write_vendor_maps
from daemon.measure.perfusion_vendor import MapRefused, MapSeries, VendorRules, classify
from daemon.pipelines.base import PipelineInput, resolve

RULES = RulesSource().load(VendorRules, "perfusion_vendor")


def header(manufacturer: str, description: str, photometric: str = "MONOCHROME2",
           image_type: tuple[str, ...] = ("DERIVED", "SECONDARY")) -> Dataset:
    ds = Dataset()
    ds.Manufacturer = manufacturer
    ds.SoftwareVersions = "test"
    ds.SeriesDescription = description
    ds.ImageType = list(image_type)
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    return ds


@pytest.mark.parametrize(("manufacturer", "description", "parameter"), [
    ("GE MEDICAL SYSTEMS", "BF", "BF"),
    ("GE MEDICAL SYSTEMS", "Liver BV", "BV"),
    ("GE MEDICAL SYSTEMS", "HABF", "HABF"),
    ("GE MEDICAL SYSTEMS", "Hepatic Portal Blood Flow", "HPBF"),
    ("GE MEDICAL SYSTEMS", "HAF", "HAF"),
    ("GE MEDICAL SYSTEMS", "Total MTT", "MTT"),
    ("GE MEDICAL SYSTEMS", "PS", "PS"),
    ("SIEMENS", "Body Perfusion Blood Flow", "BF"),
    ("SIEMENS", "ALP", "HABF"),
    ("SIEMENS", "PVP", "HPBF"),
    ("SIEMENS", "HPI", "HAF"),
    ("SIEMENS", "Flow Extraction Product", "PS"),
    ("SIEMENS", "TTP", "TTP"),
])
def test_both_vendors_namings(manufacturer: str, description: str, parameter: str) -> None:
    found = classify(header(manufacturer, description), RULES)
    assert isinstance(found, MapSeries) and found.parameter == parameter
    assert found.method == "deconvolution" and manufacturer in found.software


def test_hepatic_arterial_blood_flow_is_not_bf() -> None:
    found = classify(header("GE MEDICAL SYSTEMS", "Hepatic Arterial Blood Flow"), RULES)
    assert isinstance(found, MapSeries) and found.parameter == "HABF"


def test_a_series_saying_max_slope_is_not_deconvolution() -> None:
    found = classify(header("SIEMENS", "Liver BF max slope"), RULES)
    assert isinstance(found, MapSeries) and found.method == "max_slope"


def test_the_dynamic_series_and_other_vendors_are_not_maps() -> None:
    assert classify(header("GE MEDICAL SYSTEMS", "Liver perfusion 4D", image_type=("ORIGINAL", "PRIMARY")), RULES) is None
    assert classify(header("ACME", "BF"), RULES) is None


def test_image_type_perfusion_names_a_map_of_unknown_method() -> None:
    found = classify(header("ACME", "map", image_type=("DERIVED", "SECONDARY", "PERFUSION", "BF")), RULES)
    assert isinstance(found, MapSeries) and found.parameter == "BF" and found.method == "unknown"


def test_a_colour_map_is_refused_with_the_reason() -> None:
    found = classify(header("GE MEDICAL SYSTEMS", "BF", photometric="RGB"), RULES)
    assert isinstance(found, MapRefused)
    assert "colour-rendered" in found.reason and "quantitative" in found.reason


def _run(files: list[Path]) -> list[Dataset]:
    return resolve("ct_perfusion")(PipelineInput(WriteOptions().study_uid, "liver-ct-perfusion", tuple(files)))


def test_ge_maps_through_the_pipeline(tmp_path: Path) -> None:
    """Deconvolution maps (GE naming) and a portal-venous series: BF ratios, no off_label_method."""
    ph = small_phantom(max_shift_mm=(0.0, 0.0))
    out = _run(write_vendor_maps(ph, tmp_path, "GE MEDICAL SYSTEMS"))
    sr = next(d for d in out if d.Modality == "SR")
    perf = {tracking_id(g): g for g in groups(sr) if "CTPERF" in codes_of(g).get("Response Evaluation Method", [])
            and nums(g)}
    designed = ph.truth.designed
    p1 = nums(perf["P1"])
    # the model's liver label takes in some non-liver voxels (0 on these maps): measured -14 % healthy, +16 % ratio
    assert p1["BF healthy liver (blood flow)"] == (pytest.approx(designed["liver"]["TLP"], rel=0.2), "ml/[100]g/min")
    assert p1["BF lesion/liver ratio (blood flow)"][0] == pytest.approx(
        designed["P1"]["TLP"] / designed["liver"]["TLP"], rel=0.2)
    assert codes_of(perf["P1"])["Current Response"] == ["MAJOR_RESPONSE_P"]
    assert codes_of(perf["P2"])["Current Response"] == ["NOT_MAJOR"]
    assert "Assessment flag" not in codes_of(perf["P1"])  # deconvolution maps: on-label
    assert "GE CT Perfusion 4D" in texts(sr) and "deconvolution" in texts(sr)
    assert any("P1 BF map" in str(d.get("DerivationDescription", "")) + str(d.get("ImageComments", ""))
               for d in out if d.Modality == "OT")


def test_colour_maps_only_are_not_computable_with_the_reason(tmp_path: Path) -> None:
    ph = small_phantom(max_shift_mm=(0.0, 0.0))
    files = [p for p in write_vendor_maps(ph, tmp_path, "SIEMENS", photometric_rgb=("BF", "BV", "HABF", "HPBF"))
             if not p.name.startswith("pv_")]
    said = texts(next(d for d in _run(files) if d.Modality == "SR"))
    assert "Perfusion not computable" in said and "colour-rendered" in said
