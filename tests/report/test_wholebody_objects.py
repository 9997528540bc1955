"""The whole-body FDG route's objects through the independent validators, as the other report
tests run them: every object (SR, SEG, KOS, key images) through dciodvfy, the SR through
PixelMed once (its JVM is the slow part) and through dcmjs read as OHIF reads it -- the
lesion groups and the study-level groups (whole-body features, body composition), whose NUMs
carry POINT anchors OHIF can place. The SYNTHETIC PET/CT patient on the coarse "tiny" grids,
baseline then the progression with a new lesion."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from daemon.demo import wholebody as wb
from daemon.demo.patient import write_pet_ct
from daemon.pipelines.base import PipelineInput

from .validators import PIXELMED_JAR, dciodvfy, node_ready, pixelmed, read_sr_like_ohif

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))
from helpers_wholebody import MemoryPriors  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def followup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Dataset], Path]]:
    from daemon.pipelines.wholebody_fdg import run

    work = tmp_path_factory.mktemp("wholebody-objects")
    priors = MemoryPriors()
    datasets: list[Dataset] = []
    for t in (0, 2):
        written = write_pet_ct(work, t, "tiny", seed=1)  # type: ignore[arg-type]
        files = tuple(sorted(written.folder.glob("*.dcm")))
        datasets = run(PipelineInput(written.study_instance_uid, "wholebody-fdg-percist", files, {}, priors=priors))
    out = work / "objects"
    out.mkdir()
    for n, ds in enumerate(datasets):
        ds.save_as(out / f"{ds.Modality}_{n:02d}.dcm", enforce_file_format=True)
    yield datasets, out


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_every_object_passes_dciodvfy(followup: tuple[list[Dataset], Path]) -> None:
    _, out = followup
    paths = sorted(out.glob("*.dcm"))
    kinds = {p.name.split("_")[0] for p in paths}
    assert {"SR", "SEG", "KO", "OT"} <= kinds, kinds
    scs = [p for p in paths if p.name.startswith("OT")]
    checked = [p for p in paths if not p.name.startswith("OT")] + scs[:2]  # key images: the same writer
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = list(pool.map(dciodvfy, checked))
    for path, f in zip(checked, found, strict=True):
        assert not f.errors, f"{path.name}: {f.errors}"


@pytest.mark.skipif(not PIXELMED_JAR.exists() or shutil.which("java") is None, reason="PixelMed not installed")
def test_the_sr_passes_pixelmed(followup: tuple[list[Dataset], Path]) -> None:
    _, out = followup
    found = pixelmed(next(out.glob("SR_*.dcm")))
    assert "Found Root Template TID_1500" in found.output, found.output[-2000:]
    assert not found.errors, "\n".join(found.errors)


def test_ohif_reads_lesions_and_study_groups_with_point_anchors(followup: tuple[list[Dataset], Path]) -> None:
    why = node_ready()
    if why is not None:
        pytest.skip(why)
    datasets, out = followup
    parsed = read_sr_like_ohif(next(out.glob("SR_*.dcm")))
    by_name = {m["trackingIdentifier"]: m for m in parsed["measurements"]}
    for label, wanted in (("Whole-body PET features", "Total metabolic tumour volume"),
                          ("Body composition (CT)", "Skeletal muscle volume")):
        group = by_name[label]
        meanings = {n["meaning"] for n in group["measurements"]}
        assert wanted in meanings, meanings
        for n in group["measurements"]:
            sc = n["scoord"]
            assert sc["graphicType"] == "POINT" and len(sc["graphicData"]) == 2
            # in the image's upper half (the tiny PET has 64 x 64 pixels): OHIF prints the labels
            # below the anchor, which must stay on the image
            assert all(0 <= v <= wb.GRIDS[("PT", "tiny")].shape[1] / 2 for v in sc["graphicData"]), sc
            assert sc["referencedSOPInstanceUID"] in parsed["libraryUids"]
    lesions = [m for m in parsed["measurements"] if str(m["trackingIdentifier"]).startswith("L")]
    assert len(lesions) == 4  # three tracked, one new
    for m in lesions:
        assert any(n["meaning"] == "Long Axis" and n["scoord"]["graphicType"] == "POLYLINE" for n in m["measurements"])
    # the study-level numbers' long labels go on a slice where no lesion's labels are drawn
    lesion_slices = {n["scoord"]["referencedSOPInstanceUID"] for m in lesions for n in m["measurements"] if n.get("scoord")}
    for label in ("Whole-body PET features", "Body composition (CT)"):
        assert not {n["scoord"]["referencedSOPInstanceUID"] for n in by_name[label]["measurements"]} & lesion_slices
    # no two groups anchored on one spot (OHIF would print their labels over each other)
    anchors = [(n["scoord"]["referencedSOPInstanceUID"], tuple(n["scoord"]["graphicData"]), m["trackingUid"])
               for m in parsed["measurements"] for n in m["measurements"][:1] if n.get("scoord")]
    spots = {a[:2] for a in anchors}
    assert len(spots) == len(anchors), anchors
