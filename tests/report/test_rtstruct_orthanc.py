"""The RT Structure Set through the node's runtime to a real Orthanc standing for the planning
system, fetched back and read by rt-utils (SYNTHETIC phantom, tests/report/synthetic.py).

Two destinations: `pacs` takes only the SR, `tps` only the RTSTRUCT. A burst worker runs
the job (the route's pipeline gives the prepared report objects, the RTSTRUCT because a
destination takes it), the outbox sender C-STOREs them, and each Orthanc holds exactly
what its destination takes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from jobs.harness import Orthanc
from jobs.test_pipeline_flow import store_ready_study

from daemon.config import Settings
from daemon.demo.peers import ORTHANC
from daemon.node.scu import Sender
from daemon.report.bundle import build_report
from daemon.routing_rules import RulesHolder
from daemon.runtime.context import build_context
from daemon.runtime.execution import work_loop
from daemon.runtime.router import route_study
from daemon.store.outbox import outputs_root

from .phantom import Phantom
from .rtstruct_reader import contour_volumes_ml, rt_utils_masks, within_one_voxel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RULES = """\
version: 1
routes:
  - name: brain-mets-mri
    pipeline: report.prepared_pipeline:run
    parameters: {{folder: "{folder}"}}
    destinations: [pacs, tps]
"""


def _modalities(pacs: Orthanc) -> dict[str, str]:
    """SOP Instance UID -> modality of every instance the Orthanc holds."""
    out = {}
    for series in pacs.get("/series?expand"):
        for inst in series["Instances"]:
            tags = pacs.get(f"/instances/{inst}")["MainDicomTags"]
            out[tags["SOPInstanceUID"]] = series["MainDicomTags"]["Modality"]
    return out


def test_the_planning_system_gets_the_rtstruct_and_reads_the_lesions_back(phantom: Phantom, tmp_path: Path) -> None:
    if not Path(ORTHANC).exists():
        pytest.skip("Orthanc is not installed (make apt)")
    study = phantom.followup
    objs = build_report(phantom.followup_request, phantom.settings, rtstruct=True)
    assert objs.rtstruct is not None
    prepared, series = tmp_path / "prepared", tmp_path / "series"
    prepared.mkdir()
    series.mkdir()
    for n, ds in enumerate(objs.datasets()):
        ds.save_as(prepared / f"{n:02d}.dcm", enforce_file_format=True)
    files = []
    for ds in study.datasets:
        files.append(series / f"{ds.SOPInstanceUID}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)

    pacs, tps = Orthanc(tmp_path / "pacs").start(), Orthanc(tmp_path / "tps").start()
    try:
        rules = tmp_path / "routing.yaml"
        rules.write_text(RULES.format(folder=prepared))
        settings = Settings(
            store={"data_dir": tmp_path / "data"}, routing={"rules_file": rules},
            destinations={
                "pacs": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": pacs.dicom_port, "outputs": ["sr"]},
                "tps": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": tps.dicom_port, "outputs": ["rtstruct"]},
            },
        )
        ctx = build_context(settings)
        now = datetime.now(UTC)
        study_id = store_ready_study(ctx, settings.store.spool_dir, files, now)
        assert route_study(ctx, RulesHolder(rules, settings.destinations.keys()), study_id, now) is not None
        assert work_loop(settings, "test-worker", lambda: False, burst=True, engine=ctx.engine) == 1
        # what no destination takes (SEG, key images, KOS) is neither kept nor queued
        assert len(list(outputs_root(settings.store.data_dir).rglob("*.dcm"))) == 2
        assert Sender(settings, ctx.sessions).send_due() == 2
        ctx.engine.dispose()

        assert _modalities(pacs) == {str(objs.sr.SOPInstanceUID): "SR"}
        assert _modalities(tps) == {str(objs.rtstruct.SOPInstanceUID): "RTSTRUCT"}
        (instance,) = tps.get("/instances")
        back = tmp_path / "from-tps.dcm"
        back.write_bytes(tps.file(instance))
    finally:
        pacs.stop()
        tps.stop()

    assert pydicom.dcmread(back).StructureSetLabel == "NADIR"
    masks = rt_utils_masks(series, back)
    volumes = contour_volumes_ml(back, study.volume.spacing[0])
    voxel_ml = study.volume.voxel_volume_mm3 / 1000.0
    lesions = {les.tracking_id: les for les in study.timepoint.lesions}
    assert sorted(masks) == sorted(lesions)
    for name, les in lesions.items():
        truth = np.asarray(study.mask.labels == les.segment_number)
        assert within_one_voxel(masks[name], truth), name
        assert volumes[name] == pytest.approx(float(truth.sum()) * voxel_ml, rel=0.03), name
