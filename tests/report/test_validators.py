"""Independent validators on everything we write: dciodvfy, dsrdump, PixelMed, dcmjs (OHIF's parser).

The dciodvfy and PixelMed warnings are printed (pytest -s) and listed in the report.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from daemon.findings import LesionKind
from daemon.report.bundle import build_report
from daemon.report.inputs import Outcome

from .phantom import Phantom, write
from .validators import PIXELMED_JAR, dciodvfy, dsrdump, node_ready, pixelmed, read_sr_like_ohif

pytestmark = pytest.mark.integration


def _files(phantom: Phantom, tmp: Path) -> dict[str, list[Path]]:
    return {
        "baseline": write(phantom.baseline_report, tmp / "baseline"),
        "followup": write(phantom.followup_report, tmp / "followup"),
    }


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_dciodvfy_no_errors(phantom: Phantom, tmp_path: Path) -> None:
    warnings: set[str] = set()
    files = _files(phantom, tmp_path)
    empty = dataclasses.replace(phantom.followup.timepoint, lesions=())
    for outcome in (Outcome.NO_LESION, Outcome.NOT_EVALUABLE, Outcome.NO_SUITABLE_SERIES):
        req = dataclasses.replace(
            phantom.followup_request, timepoint=empty, outcome=outcome, assessment=None, mask=None, reason="test"
        )
        files[str(outcome)] = write(build_report(req, phantom.settings), tmp_path / str(outcome))
    for paths in files.values():
        for path in paths:
            found = dciodvfy(path)
            assert not found.errors, f"{path.name}: {found.errors}"
            warnings.update(f"{path.name.split('_')[0]}: {w}" for w in found.warnings)
    print("\ndciodvfy warnings:\n" + "\n".join(sorted(warnings)))


@pytest.mark.skipif(shutil.which("dcentvfy") is None, reason="dicom3tools not installed")
def test_dcentvfy_one_consistent_study(phantom: Phantom, tmp_path: Path) -> None:
    paths = _files(phantom, tmp_path)["followup"]
    for n, ds in enumerate(phantom.followup.datasets):
        paths.append(tmp_path / f"source_{n}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    proc = subprocess.run(["dcentvfy", *map(str, paths)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert not [ln for ln in lines if ln.startswith("Error")], lines
    print("\ndcentvfy warnings:\n" + "\n".join(sorted({ln.split(" for file")[0] for ln in lines})))


@pytest.mark.skipif(shutil.which("dsrdump") is None, reason="dcmtk not installed")
def test_dsrdump_reads_the_sr(phantom: Phantom, tmp_path: Path) -> None:
    sr = next(p for p in _files(phantom, tmp_path)["followup"] if p.name.startswith("SR"))
    proc = dsrdump(sr)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert '(126000,DCM,"Imaging Measurement Report")' in proc.stdout
    assert '<has obs context TEXT:(112039,DCM,"Tracking Identifier")="T1">' in proc.stdout
    assert '(PD,99NADIR,"Progressive disease")' in proc.stdout


@pytest.mark.skipif(not PIXELMED_JAR.exists() or shutil.which("java") is None, reason="PixelMed not installed")
def test_pixelmed_tid1500_no_errors(phantom: Phantom, tmp_path: Path) -> None:
    # the follow-up (lesions + assessment) and a "no lesion" report
    srs = [tmp_path / "followup.dcm", tmp_path / "no-lesion.dcm"]
    phantom.followup_report.sr.save_as(srs[0], enforce_file_format=True)
    empty = dataclasses.replace(phantom.followup.timepoint, lesions=())
    req = dataclasses.replace(
        phantom.followup_request, timepoint=empty, outcome=Outcome.NO_LESION, assessment=None, mask=None
    )
    build_report(req, phantom.settings).sr.save_as(srs[1], enforce_file_format=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(pixelmed, srs))
    for path, found in zip(srs, results, strict=True):
        assert "Found Root Template TID_1500" in found.output, found.output[-2000:]
        assert not found.errors, "\n".join(found.errors)
        print(f"\nPixelMed warnings for {path.parent.name}/{path.name}:\n" + "\n".join(found.warnings))


def test_ohif_parser_finds_every_measurement(phantom: Phantom, tmp_path: Path) -> None:
    why = node_ready()
    if why is not None:
        pytest.skip(why)
    sr_path = next(p for p in _files(phantom, tmp_path)["followup"] if p.name.startswith("SR"))
    parsed = read_sr_like_ohif(sr_path)
    by_uid = {m["trackingUid"]: m for m in parsed["measurements"]}
    for lesion in phantom.followup.timepoint.lesions:
        m = by_uid[lesion.tracking_uid]
        assert m["trackingIdentifier"] == lesion.tracking_id
        nums = {n["meaning"]: n for n in m["measurements"]}
        for meaning, cal in (("Long Axis", lesion.measurements.long_axis), ("Short Axis", lesion.measurements.short_axis)):
            assert cal is not None
            n = nums[meaning]
            assert n["unit"] == "mm" and abs(n["value"] - round(cal.length_mm, 3)) < 1e-6
            sc = n["scoord"]
            assert sc["graphicType"] == "POLYLINE" and len(sc["graphicData"]) == 4
            assert sc["referencedSOPInstanceUID"] == cal.start_image.slice.sop_instance_uid
            assert sc["referencedSOPInstanceUID"] in parsed["libraryUids"]
            want = [cal.start_image.column, cal.start_image.row, cal.end_image.column, cal.end_image.row]
            assert all(abs(a - b) < 1e-4 for a, b in zip(sc["graphicData"], want, strict=True))
        assert nums["Volume"]["unit"] == "mm3"
        assert abs(nums["Volume"]["value"] - lesion.measurements.volume_ml * 1000) < 1e-3  # type: ignore[operator]
    # by default the assessment's numbers are NUMs OHIF finds, each anchored on a POINT near
    # the top-left corner of the longest target's slice (clear of every lesion's labels);
    # with the setting off they stay in the text only
    assessment = [m for m in parsed["measurements"] if m["trackingIdentifier"] == "RANO-BM assessment"]
    assert {n["meaning"]: n["value"] for n in assessment[0]["measurements"]}["Sum of diameters"] == 32.0
    longest = max(
        (les.measurements.long_axis for les in phantom.followup.timepoint.lesions
         if les.measurements.long_axis and les.kind == LesionKind.TARGET),
        key=lambda cal: cal.length_mm,
    )
    for n in assessment[0]["measurements"]:
        assert n["scoord"]["graphicType"] == "POINT" and n["scoord"]["graphicData"] == [4.0, 4.0]
        assert n["scoord"]["referencedSOPInstanceUID"] == longest.start_image.slice.sop_instance_uid
    text_only = phantom.settings.model_copy(update={"assessment_numbers_on_image": False})
    path = tmp_path / "text-only.dcm"
    build_report(phantom.followup_request, text_only).sr.save_as(path, enforce_file_format=True)
    assessment = [
        m for m in read_sr_like_ohif(path)["measurements"] if m["trackingIdentifier"] == "RANO-BM assessment"
    ]
    assert assessment == [] or assessment[0]["measurements"] == []
