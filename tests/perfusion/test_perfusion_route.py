"""The liver CT perfusion route on a SYNTHETIC dynamic study written as DICOM (pipeline ct_perfusion):
per-lesion groups coded CTPERF with UCUM units, categories and flags, key images, validators; bad
input reported as not computable with the reason; the `nadir perfusion` command on a highdicom SEG."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from perfusion_helpers import (
    SMALL,
    TINY,
    codes_of,
    groups,
    nums,
    small_phantom,
    texts,
    tracking_id,
    write_seg,
)
from pydicom.dataset import Dataset
from report.validators import PIXELMED_JAR, dciodvfy, pixelmed

from daemon.cli import main
from daemon.demo.perfusion_phantom import (
    PerfusionPhantom,
    Protocol,
    WriteOptions,
    perfusion_phantom,
    write_dynamic,
)
from daemon.pipelines.base import PipelineInput, resolve

STUDY = WriteOptions().study_uid


def run_pipeline(files: list[Path]) -> list[Dataset]:
    return resolve("ct_perfusion")(PipelineInput(STUDY, "liver-ct-perfusion", tuple(files)))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[PerfusionPhantom, Path, list[Dataset]]:
    ph = small_phantom()
    folder = tmp_path_factory.mktemp("perfusion")
    files = write_dynamic(ph, folder)
    return ph, folder, run_pipeline(files)


def sr_of(out: list[Dataset]) -> Dataset:
    return next(d for d in out if d.Modality == "SR")


def test_each_lesion_has_a_ctperf_group_with_values_ratios_units(written: tuple[PerfusionPhantom, Path, list[Dataset]]) -> None:
    ph, _, out = written
    perf = [g for g in groups(sr_of(out)) if "CTPERF" in codes_of(g).get("Response Evaluation Method", []) and nums(g)]
    assert len(perf) >= 2  # the phantom's P1 and P2 (>= 15 mm); the route names them itself, by size
    key = "TLP lesion/liver ratio (total liver perfusion)"
    evaluated = [g for g in perf if key in nums(g) and codes_of(g)["Current Response"] != ["NE"]]  # NE: < 15 mm
    by_ratio = sorted(evaluated, key=lambda g: nums(g)[key][0])
    low, high = nums(by_ratio[0]), nums(by_ratio[-1])
    assert low["TLP lesion/liver ratio (total liver perfusion)"] [0] < 0.68 < high["TLP lesion/liver ratio (total liver perfusion)"][0]
    assert low["TLP lesion/liver ratio (total liver perfusion)"][1] == "1"
    assert low["TLP lesion (total liver perfusion)"][1] == "ml/[100]ml/min"
    assert low["HPI lesion (hepatic perfusion index)"][1] == "%"
    assert low["TTP healthy liver (time to peak)"][1] == "s"
    # on 5 mm voxels the demo model's liver label takes in non-liver voxels (IVC, vessel rims, body wall):
    # measured +27 to +34 % over the method's value; the 5 % checks on true masks are in
    # test_perfusion_phantom.py, and on the SEG's true liver in test_command_json_on_a_seg
    healthy = low["TLP healthy liver (total liver perfusion)"][0]
    assert ph.truth.expected["liver"]["TLP"] < healthy < 129.5  # seed Table 2 healthy BF maximum
    assert codes_of(by_ratio[0])["Current Response"] == ["MAJOR_RESPONSE_P"]
    assert codes_of(by_ratio[-1])["Current Response"] == ["NOT_MAJOR"]
    for g in perf:
        assert "FOFFLABELMETHOD" in codes_of(g)["Assessment flag"]  # max slope, not the seed's deconvolution
        assert tracking_id(g) in {"P1", "P2", "P3"}  # the lesion's own identifier and UID


def test_key_images_of_the_tlp_map_and_the_input_regions(written: tuple[PerfusionPhantom, Path, list[Dataset]]) -> None:
    _, _, out = written
    said = [str(d.get("DerivationDescription", "")) + str(d.get("ImageComments", "")) for d in out if d.Modality == "OT"]
    assert any("P1 TLP map" in s for s in said) and any("P2 TLP map" in s for s in said)
    assert any("perfusion input regions" in s for s in said)
    assert "aortic peak" in texts(sr_of(out))


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
@pytest.mark.skipif(not PIXELMED_JAR.exists() or shutil.which("java") is None, reason="PixelMed not installed")
def test_objects_pass_the_validators(written: tuple[PerfusionPhantom, Path, list[Dataset]], tmp_path: Path) -> None:
    paths = []
    for n, ds in enumerate(written[2]):
        path = tmp_path / f"{n}_{ds.Modality}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    for path in paths:
        found = dciodvfy(path)
        assert not found.errors, f"{path.name}: {found.errors}"
    checked = pixelmed(next(p for p in paths if p.name.endswith("_SR.dcm")))
    assert "Found Root Template TID_1500" in checked.output
    assert not checked.errors, "\n".join(checked.errors)


def _not_computable(out: list[Dataset]) -> str:
    sr = sr_of(out)
    assessed = [g for g in groups(sr) if "CTPERF" in codes_of(g).get("Response Evaluation Method", [])]
    assert [codes_of(g)["Current Response"] for g in assessed] == [["NOT_COMPUTABLE"]]
    return texts(sr)


@pytest.mark.parametrize(("protocol", "options", "reason"), [
    (Protocol(grid=TINY, times_s=(11.0, 17.0, 30.0), max_shift_mm=(0.0, 0.0)), WriteOptions(),
     "3 time frames: at least 6 are needed"),
    (Protocol(grid=TINY, times_s=(11.0, 12.0, 14.0, 17.0, 25.0, 45.0)), WriteOptions(shift_frame=4),
     "frames of different geometry: frame 5 of 6"),
    (Protocol(grid=SMALL, aorta=False, max_shift_mm=(0.0, 0.0)), WriteOptions(), "no aorta in the field of view"),
], ids=["3-frames", "geometry", "no-aorta"])
def test_bad_input_is_not_computable_with_the_reason(protocol: Protocol, options: WriteOptions, reason: str,
                                                      tmp_path: Path) -> None:
    files = write_dynamic(perfusion_phantom(protocol), tmp_path, options)
    assert reason in _not_computable(run_pipeline(files))


def test_command_json_on_a_seg(written: tuple[PerfusionPhantom, Path, list[Dataset]], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    ph, folder, _ = written
    seg = write_seg(ph, folder, tmp_path / "lesions.dcm")
    assert main(["perfusion", str(folder), "--lesions", str(seg), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = {"segment_number", "label", "method", "hap_ml_min_100ml", "hpp_ml_min_100ml", "tlp_ml_min_100ml",
            "hpi_pct", "tlp_ratio", "category", "flags"}
    assert [r["segment_number"] for r in rows] == [1, 2]  # the organ segment is the healthy liver, not a lesion
    assert all(keys <= set(r) for r in rows)
    by = {r["label"]: r for r in rows}
    assert by["P1"]["method"] == "max_slope" and by["P1"]["category"] == "major"
    assert by["P2"]["category"] == "not_major" and "off_label_method" in by["P2"]["flags"]
    expected = ph.truth.expected
    # the SEG's liver segment (true liver) as the healthy-liver region: within 10 % on 5 mm voxels (measured +8 %);
    # lesion values on this coarse grid are not within 5 % (see test_perfusion_phantom.py for 3.5 mm)
    assert by["P1"]["healthy_tlp_ml_min_100ml"] == pytest.approx(expected["liver"]["TLP"], rel=0.10)
    assert by["P1"]["tlp_ratio"] < by["P2"]["tlp_ratio"]


def test_command_refuses_a_missing_seg_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["perfusion", str(tmp_path), "--lesions", str(tmp_path / "none.dcm")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--lesions" in err[0]
