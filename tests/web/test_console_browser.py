"""The console in a real browser against a real `nadir serve` and Orthanc as the PACS.

Debian's chromium driven by playwright-core (tests/web/console_check.js, as tests/viewer
does): sign in (an account made by `nadir user add` with the password on stdin); a
SYNTHETIC CT study sent by dcmtk storescu goes from receiving to DONE on the overview;
a broken route in the editor shows its file:line error; the corrected route tried against
the stored study says it would run; saved, the node routes the next study with it; with
Orthanc stopped its outputs become dead letters; Orthanc started again, resent from the
study page, each is delivered exactly once. Screenshots go to tests/output/web/ (those in
deploy/screenshots/ were taken by this test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from jobs.studies import make_series, write_study
from pydicom.uid import generate_uid

from daemon.demo.peers import ORTHANC, NadirNode, Orthanc, storescu

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUTPUT = HERE.parent / "output" / "web"
CHROMIUM = Path(os.environ.get("NADIR_CHROMIUM", "/usr/bin/chromium"))
NODE_MODULES = REPO / "deploy" / "ohif" / "node_modules"
MISSING = [what for what, present in (
    ("Debian chromium", CHROMIUM.exists()),
    ("node", shutil.which("node") is not None),
    ("playwright-core (npm ci in deploy/ohif)", (NODE_MODULES / "playwright-core").is_dir()),
    ("Orthanc", Path(ORTHANC).exists()),
    ("dcmtk storescu", shutil.which("storescu") is not None),
) if not present]
PASSWORD = "browser-test-password"
ROUTE = """\
version: 1
routes:
  - name: {name}
    pipeline: {pipeline}
    destinations: [pacs]
    match: {{attribute: Modality, equals: CT}}
"""
INITIAL = ROUTE.format(name="qa-report", pipeline="qa_report")
BROKEN = ROUTE.format(name="qa-web", pipeline="qa_reprot")
FIXED = ROUTE.format(name="qa-web", pipeline="qa_report")


class Controller:
    """Does what the browser script asks (CTL/<step>.req -> CTL/<step>.done)."""

    def __init__(self, ctl: Path, work: Path, pacs: Orthanc, nadir: NadirNode) -> None:
        self.ctl, self.work, self.pacs, self.nadir = ctl, work, pacs, nadir
        self.sent: dict[str, str] = {}
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def send(self, name: str) -> str:
        uid = generate_uid()
        files = write_study(self.work / name, [make_series(uid, positions=[0.0, 1.0, 2.0], description="AXIAL")])
        storescu(files, self.nadir.port, "NADIR", calling_ae="CT_SCANNER")
        self.sent[name] = uid
        return uid

    def do(self, step: str) -> str:
        if step == "send-first":
            return self.send("first")
        if step == "send-second":
            return self.send("second")
        if step == "stop-orthanc":
            self.pacs.stop()
            return "stopped"
        if step == "start-orthanc":
            self.pacs.start()
            return "started"
        raise ValueError(step)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for req in sorted(self.ctl.glob("*.req")):
                    answer = self.do(req.stem)
                    req.unlink()
                    (self.ctl / f"{req.stem}.done").write_text(answer)
                time.sleep(0.05)
        except BaseException as exc:  # reported by the test
            self.error = exc


def _user_add(nadir: NadirNode) -> None:
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "user", "add", "ada", "--role", "admin"],
                          input=PASSWORD + "\n", capture_output=True, text=True, cwd=REPO, env=nadir.env(), check=False)
    assert done.returncode == 0, done.stderr
    assert "user ada added (admin)" in done.stdout


def test_console_in_a_browser(tmp_path: Path) -> None:
    if MISSING:
        pytest.skip(f"missing: {', '.join(MISSING)} (make test installs them)")
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    rules = tmp_path / "routing.yaml"
    rules.write_text(INITIAL)
    pacs = Orthanc(tmp_path / "orthanc")
    nadir = NadirNode(tmp_path / "nadir", pacs_port=pacs.dicom_port, settle_seconds=1.0, rules_file=rules,
                      extra_env={"NADIR_OUTBOX__MAX_AGE_SECONDS": "2", "NADIR_OUTBOX__FIRST_RETRY_SECONDS": "0.3",
                                 "NADIR_OUTBOX__MAX_DELAY_SECONDS": "0.5", "NADIR_ROUTING__WATCH_INTERVAL_SECONDS": "0.5"})
    pacs.nadir_port = nadir.port
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    controller = Controller(ctl, tmp_path / "studies", pacs, nadir)
    thread = threading.Thread(target=controller.run, daemon=True)
    spec = {"url": f"http://127.0.0.1:{nadir.web_port}", "user": "ada", "password": PASSWORD,
            "node_modules": str(NODE_MODULES), "chromium": str(CHROMIUM), "ctl": str(ctl), "shots": str(OUTPUT),
            "broken": BROKEN, "fixed": FIXED}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    pacs.start()
    try:
        nadir.data_dir.mkdir(parents=True)
        _user_add(nadir)
        nadir.start()
        thread.start()
        run = subprocess.run(["node", str(HERE / "console_check.js"), str(tmp_path / "spec.json"),
                              str(tmp_path / "result.json")], capture_output=True, text=True, timeout=200, check=False)
        assert run.returncode == 0, run.stderr[-3000:]
        second_outputs = pacs.series(controller.sent.get("second", "")) if "second" in controller.sent else []
    finally:
        controller.stop.set()
        nadir.stop()
        pacs.stop()
    (OUTPUT / "nadir.log").write_text(nadir.log_text())
    assert controller.error is None, controller.error
    result = json.loads((tmp_path / "result.json").read_text())
    (OUTPUT / "result.json").write_text(json.dumps(result, indent=1))
    assert "error" not in result, result["error"]
    steps = {s["step"]: s for s in result["steps"]}

    assert "DONE" in steps["first study"]["states"], steps["first study"]
    (error,) = steps["broken"]["errors"]
    assert error.startswith(f"{rules}:4: route 'qa-web': pipeline:"), error
    assert steps["tried"]["valid"] == 1 and steps["tried"]["would_run"] == "would run: qa-web"
    assert steps["saved"]["text"].startswith("Saved as version") and "The node reloaded it." in steps["saved"]["text"]
    assert rules.read_text() == FIXED
    # the node used the saved route for the next study, whose outputs died with Orthanc down
    assert "qa-web" in steps["dead letter"]["jobs"] and steps["dead letter"]["resend_buttons"] >= 1
    assert steps["dead letter"]["state"] == "FAILED"
    # resent from the page: every delivery SENT, each exactly once, the study DONE
    assert steps["resent"]["states"] and set(steps["resent"]["states"]) == {"SENT"}, steps["resent"]
    assert set(steps["resent"]["times_sent"]) == {"1"}, steps["resent"]
    assert steps["resent"]["study_state"] in ("DONE", "FAILED")
    assert second_outputs, "the resent outputs are not in Orthanc"
    audit = "\n".join(steps["audit"]["rows"])
    assert "rules.save" in audit and "outbox.resend" in audit and "login" in audit
