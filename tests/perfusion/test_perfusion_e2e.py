"""End to end, liver CT perfusion route, real peers: Orthanc (the PACS) + `nadir serve` (the shipped
rules/routing.yaml) + dcmtk storescu.

One SYNTHETIC study (daemon.demo.perfusion_phantom, the small test grid): the dynamic series and a
portal-venous series. Both the liver route (liver-mets-recist, on the portal-venous series) and the
perfusion route (liver-ct-perfusion) run on it; the perfusion route waits for the liver route's
timepoint of the study (jobs retried every second here, `retry_delay_seconds`) and names its lesions
as the liver route did. Asserted in the PACS: the perfusion SR's CTPERF groups with the TLP ratio,
its unit and the category of each lesion, the TLP-map key images and a key-object selection, and the
perfusion SR's tracking ids and UIDs equal to those of the liver route's SR of the same study.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from perfusion_helpers import codes_of, groups, nums, small_phantom, tracking_id
from pydicom.dataset import Dataset

from daemon.demo.peers import ORTHANC, NadirNode, Orthanc, storescu, wait_until
from daemon.demo.perfusion_phantom import WriteOptions, write_dynamic, write_portal_venous

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

STUDY = WriteOptions().study_uid
RATIO = "TLP lesion/liver ratio (total liver perfusion)"
TRACKING_UID = "112040"


@dataclass
class Run:
    pacs: Orthanc
    srs: list[Dataset]  # every SR of the study in the PACS
    series: list[dict[str, Any]]


def _instances(pacs: Orthanc, modality: str) -> list[Dataset]:
    return [pydicom.dcmread(io.BytesIO(pacs.file(i))) for s in pacs.series(STUDY)
            if s["MainDicomTags"].get("Modality") == modality for i in s["Instances"]]


def _is_perfusion(sr: Dataset) -> bool:
    return _measured(sr) and any("CTPERF" in codes_of(g).get("Response Evaluation Method", []) for g in groups(sr))


def _measured(sr: Dataset) -> bool:
    return any(i.ConceptNameCodeSequence[0].CodeValue == "126010" for i in sr.ContentSequence)


def _is_liver(sr: Dataset) -> bool:
    """The liver route's SR (its groups carry RECIST 1.1, not CTPERF); the study QA report has no groups."""
    return _measured(sr) and not _is_perfusion(sr)


def _both_srs(pacs: Orthanc) -> list[Dataset] | None:
    srs = _instances(pacs, "SR")
    return srs if any(map(_is_perfusion, srs)) and any(map(_is_liver, srs)) else None


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if not Path(ORTHANC).exists() or shutil.which("storescu") is None:
        pytest.fail("Orthanc and dcmtk are needed (make apt)")
    work = tmp_path_factory.mktemp("perfusion-e2e")
    ph = small_phantom()
    files = write_dynamic(ph, work / "study") + write_portal_venous(ph, work / "study")
    pacs = Orthanc(work / "orthanc")
    node = NadirNode(work / "nadir", pacs_port=pacs.dicom_port, settle_seconds=1.0,
                     extra_env={"NADIR_JOBS__RETRY_DELAY_SECONDS": "1"})
    pacs.nadir_port = node.port
    try:
        pacs.start()
        node.start()
        storescu(files, node.port, "NADIR")
        srs = wait_until("both routes' SRs in the PACS", lambda: _both_srs(pacs), 240, 0.5)
        wait_until("two key-object selections in the PACS",
                   lambda: len(_instances(pacs, "KO")) >= 2 or None, 60, 0.5)
        yield Run(pacs, srs, pacs.series(STUDY))
    finally:
        node.stop()
        pacs.stop()


def _perfusion_sr(run: Run) -> Dataset:
    return next(s for s in run.srs if _is_perfusion(s))


def _lesion_groups(sr: Dataset) -> list[Dataset]:
    return [g for g in groups(sr) if any(i.ValueType == "UIDREF" and i.ConceptNameCodeSequence[0].CodeValue
                                         == TRACKING_UID for i in g.ContentSequence)]


def _names(sr: Dataset) -> set[tuple[str, str]]:
    return {(tracking_id(g), next(str(i.UID) for i in g.ContentSequence if i.ValueType == "UIDREF"
                                  and i.ConceptNameCodeSequence[0].CodeValue == TRACKING_UID))
            for g in _lesion_groups(sr) if not tracking_id(g).endswith(" assessment")}  # the study-level groups


def test_perfusion_sr_has_ctperf_ratios_and_categories(run: Run) -> None:
    perf = [g for g in groups(_perfusion_sr(run)) if "CTPERF" in codes_of(g).get("Response Evaluation Method", [])
            and RATIO in nums(g)]
    assert len(perf) >= 2, "the phantom's two lesions >= 15 mm"
    by_ratio = sorted(perf, key=lambda g: nums(g)[RATIO][0])
    assert nums(by_ratio[0])[RATIO][0] < 0.68 < nums(by_ratio[-1])[RATIO][0]
    assert nums(by_ratio[0])[RATIO][1] == "1"
    assert codes_of(by_ratio[0])["Current Response"] == ["MAJOR_RESPONSE_P"]
    assert codes_of(by_ratio[-1])["Current Response"] == ["NOT_MAJOR"]


def test_lesions_named_as_the_liver_route_named_them(run: Run) -> None:
    liver = next(s for s in run.srs if _is_liver(s))
    theirs, ours = _names(liver), _names(_perfusion_sr(run))
    assert len(ours) >= 2, f"lesion groups of the perfusion SR: {sorted(ours)}"
    assert ours <= theirs, f"perfusion {sorted(ours)} vs liver route {sorted(theirs)}"


def test_tlp_map_key_images_and_key_object_selection(run: Run) -> None:
    said = [str(d.get("DerivationDescription", "")) + str(d.get("ImageComments", ""))
            for d in _instances(run.pacs, "OT") + _instances(run.pacs, "SC")]
    names = {tid for tid, _ in _names(_perfusion_sr(run))}
    assert all(any(f"{tid} TLP map" in s for s in said) for tid in names), said
    assert any("perfusion input regions" in s for s in said)
    kos = _instances(run.pacs, "KO")
    perf_images = {str(d.SOPInstanceUID) for d in _instances(run.pacs, "OT") + _instances(run.pacs, "SC")
                   if "TLP map" in str(d.get("DerivationDescription", "")) + str(d.get("ImageComments", ""))}
    selected = {str(r.ReferencedSOPInstanceUID) for k in kos for s in k.CurrentRequestedProcedureEvidenceSequence
                for se in s.ReferencedSeriesSequence for r in se.ReferencedSOPSequence}
    assert perf_images <= selected, "the TLP-map key images are not in a key-object selection"
