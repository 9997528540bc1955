"""`make demo`: the brain-metastases, liver-metastases and whole-body FDG routes end to end on this machine.

Starts a local Orthanc (the PACS, with its web explorer) and `nadir serve`, writes
three demo patients (SYNTHETIC): brain MR at a baseline and two follow-ups whose
lesions shrink then grow (RANO-BM), portal-venous abdominal CT at a baseline, a
response and a progression (RECIST 1.1 and Chun), and whole-body FDG PET/CT at a
baseline, a partial metabolic response and a progression with a new lesion (PERCIST
1.0, TMTV, Dmax, body composition); for each study does what a
hospital's modality and PACS do: sends it to the PACS and to Nadir (dcmtk
storescu), waits for Nadir's SR to arrive in the PACS, and prints the table the SR
holds (lesions, the categories of each assessment), where the objects are in
Orthanc, the OHIF viewer URL that opens the study (OHIF v3 served offline over the
PACS's DICOMweb, when `make viewer` installed it), and the latency (last instance
sent -> SR stored in the PACS). Run from a terminal, the PACS and the viewer stay up
until Ctrl-C so the results can be opened; Ctrl-C stops everything and leaves
nothing running.

    python -m daemon.demo.run [--workdir DIR] [--size small|full] [--keep] [--wait | --no-wait]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom

from daemon.config import ReportSettings
from daemon.demo.peers import NadirNode, Orthanc, storescu, wait_until
from daemon.demo.phantom import Grid
from daemon.demo.response_patient import DemoStudy, write_negative_cases, write_timepoints
from daemon.demo.sr_table import SrSummary, summarize, table
from daemon.demo.wholebody_studies import negative_pet_studies, pet_ct_timepoints
from daemon.web.ohif import ViewerNotInstalledError, ViewerServer, start_viewer

log = logging.getLogger(__name__)

REPORT = ReportSettings()
SR_SERIES, KO_SERIES = REPORT.sr_series_number, REPORT.ko_series_number


@dataclass(frozen=True)
class StudyResult:
    study: DemoStudy
    latency_s: float  # last instance sent -> SR stored in the PACS
    summary: SrSummary
    series_numbers: tuple[int, ...]  # series of the study in the PACS afterwards
    explorer_url: str
    viewer_url: str | None = None  # OHIF, when the viewer is installed


def _sr_in_pacs(pacs: Orthanc, study_uid: str, timeout_s: float) -> pydicom.Dataset:
    def ready() -> str | None:
        s = pacs.series_numbered(study_uid, SR_SERIES)
        return str(s["Instances"][-1]) if s and s["Instances"] else None

    instance = wait_until(f"Nadir's SR of study {study_uid} in the PACS", ready, timeout_s, 0.2)
    return pydicom.dcmread(io.BytesIO(pacs.file(instance)))


def process(pacs: Orthanc, nadir: NadirNode, study: DemoStudy, timeout_s: float = 240.0,
            to_pacs: bool = True, viewer: ViewerServer | None = None) -> StudyResult:
    """Send one study (to the PACS, then to Nadir) and wait for the whole report in the PACS."""
    files = sorted(study.folder.glob("*.dcm"))
    if to_pacs:
        storescu(files, pacs.dicom_port, pacs.ae_title)
    storescu(files, nadir.port, "NADIR")
    sent = time.monotonic()
    sr = _sr_in_pacs(pacs, study.study_instance_uid, timeout_s)
    latency = time.monotonic() - sent
    wait_until("the key-object selection in the PACS",
               lambda: pacs.series_numbered(study.study_instance_uid, KO_SERIES), 60, 0.2)
    numbers = tuple(sorted(int(s["MainDicomTags"].get("SeriesNumber", 0) or 0)
                           for s in pacs.series(study.study_instance_uid)))
    sid = pacs.study_id(study.study_instance_uid)
    return StudyResult(study, latency, summarize(sr), numbers, f"{pacs.url}/app/explorer.html#study?uuid={sid}",
                       viewer.study_url(study.study_instance_uid) if viewer else None)


def report(result: StudyResult, out: Callable[[str], object] = print) -> None:
    s = result.study
    also = "".join(f", {criterion} {category}" for criterion, category in s.also_expected)
    out(f"\n=== {s.name} ({s.study_date}) — expected {s.expected}{also}")
    out(table(result.summary))
    out(f"latency (last instance sent -> SR in the PACS): {result.latency_s:.1f} s")
    out(f"series in the PACS: {', '.join(map(str, result.series_numbers))}")
    out(f"open in Orthanc: {result.explorer_url}")
    if result.viewer_url:
        out(f"open in OHIF:    {result.viewer_url}")


def _start_viewer(pacs: Orthanc, out: Callable[[str], object]) -> ViewerServer | None:
    try:
        viewer = start_viewer(pacs.url)
    except ViewerNotInstalledError as exc:
        out(f"OHIF viewer not installed ({exc}); `make viewer` installs it")
        return None
    out(f"OHIF viewer at {viewer.url} (over the PACS's DICOMweb)")
    return viewer


def liver_timepoints(out: Path, size: str = "small", seed: int = 1, grid: Grid | None = None) -> list[DemoStudy]:
    """The SYNTHETIC liver patient (daemon.demo.patient): portal-venous CT at baseline and two
    follow-ups, with the RECIST 1.1 and Chun categories the phantom was designed for (on `grid`
    when given, e.g. daemon.demo.patient.LIVER_COVER)."""
    from daemon.demo.patient import TIMEPOINTS, write_abdomen_ct

    studies = []
    for t in range(len(TIMEPOINTS)):
        written = write_abdomen_ct(out, t, size, seed, grid)  # type: ignore[arg-type]
        truth = json.loads(written.truth_path.read_text())
        expected = dict(truth.get("expected", {}))
        studies.append(DemoStudy(
            written.folder.name, written.folder, written.study_instance_uid,
            str(truth["study_date"]).replace("-", ""), written.files, expected.pop("RECIST1.1", ""),
            tuple(sorted(expected.items())),
        ))
    return studies


def run_demo(workdir: Path, size: str = "small", negatives: bool = False,
             out: Callable[[str], object] = print, wait: bool = False) -> list[StudyResult]:
    started = time.monotonic()
    out(f"writing the demo patient (SYNTHETIC) under {workdir / 'studies'} ...")
    studies = write_timepoints(workdir / "studies", size=size)  # type: ignore[arg-type]
    if negatives:
        studies += write_negative_cases(workdir / "studies")
    studies += liver_timepoints(workdir / "studies", size)
    studies += pet_ct_timepoints(workdir / "studies", size)
    if negatives:
        studies += negative_pet_studies(workdir / "studies")
    pacs = Orthanc(workdir / "orthanc")
    nadir = NadirNode(workdir / "nadir", pacs_port=pacs.dicom_port)
    pacs.nadir_port = nadir.port
    results = []
    viewer: ViewerServer | None = None
    try:
        pacs.start()
        out(f"Orthanc (PACS) at {pacs.url}/app/explorer.html  (DICOM {pacs.ae_title}@127.0.0.1:{pacs.dicom_port})")
        viewer = _start_viewer(pacs, out)
        nadir.start()
        out(f"Nadir listening as NADIR@127.0.0.1:{nadir.port}; log {nadir.log_path}")
        for study in studies:
            result = process(pacs, nadir, study, viewer=viewer)
            report(result, out)
            results.append(result)
        out(f"\ndone in {time.monotonic() - started:.0f} s")
        if wait:
            out("the PACS and the viewer stay up to open the results; Ctrl-C stops everything")
            while True:
                time.sleep(3600)
    finally:
        if viewer is not None:
            viewer.close()
        nadir.stop()
        pacs.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where studies, PACS storage and logs go (default: a temp dir)")
    parser.add_argument("--size", choices=["small", "full"], default="small")
    parser.add_argument("--negatives", action="store_true",
                        help="also send a study with no lesion, one with no suitable series, and PET studies "
                             "the whole-body route refuses with a reason (no attenuation correction, no CT, half body)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--wait", action=argparse.BooleanOptionalAction, default=sys.stdin.isatty(),
                        help="keep the PACS and the viewer up until Ctrl-C (default: when run from a terminal)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for tool in ("storescu",):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install dcmtk (make apt)", file=sys.stderr)
            return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nadir-demo-"))
    try:
        run_demo(workdir, args.size, args.negatives, wait=args.wait)
    except KeyboardInterrupt:
        print("\ninterrupted: Orthanc and Nadir stopped", file=sys.stderr)
        return 130
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"files kept under {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
