"""A non-editable install works: the wheel carries rules/, templates/ and the demo models,
and `nadir check-config` and `nadir serve` (answering a C-ECHO) run from it, in a folder
outside the repository.

The wheel is built from a copy of the source (nothing is written into the checkout) and
installed into a fresh virtualenv without its dependencies; those come from the test's
own virtualenv, made visible through a path file (whose own .pth files, the editable
install's among them, are not processed), so the test needs no package index.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from daemon.demo.peers import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
# what a wheel is built from (setup.py, pyproject.toml, MANIFEST.in name the rest)
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "daemon", "rules", "templates", "models")
SHIPPED = ("rules/routing.yaml", "rules/rano_bm.yaml", "rules/recist.yaml", "templates/report/impression.en.j2",
           "models/demo-brain-mets/model.yaml", "models/demo-brain-mets/model.onnx",
           "models/demo-liver-mets/model.yaml", "models/demo-liver-mets/model.onnx")

pytestmark = pytest.mark.integration


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """(the fresh virtualenv's bin/, its environment, a working folder outside the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_shipped"))
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NADIR_", "PYTHON"))}
    env["PIP_NO_INDEX"] = "1"
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                  "-w", str(tmp / "dist"), str(src)], tmp, env)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("nadir-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in SHIPPED if f"daemon/_shipped/{f}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not any("train.py" in n for n in names), "the training scripts are not shipped"

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    assert made.returncode == 0, made.stderr
    bin_dir = venv / "bin"
    installed = _run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q",
                      "--no-deps", str(wheel)], tmp, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # the dependencies: this virtualenv's site-packages, as a plain path entry
    site = Path(_run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp, env).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    outside = tmp / "site"
    outside.mkdir()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return bin_dir, env, outside


def test_the_wheel_finds_its_data_in_the_package(installed: tuple[Path, dict[str, str], Path]) -> None:
    bin_dir, env, outside = installed
    probe = _run([str(bin_dir / "python"), "-c",
                  "import daemon, daemon.resources as r, daemon.config as c, daemon.pipelines.lesion_followup as lf;"
                  "print(daemon.__file__); print(r.DATA_ROOT); print(c.RoutingSettings().rules_file);"
                  "print(lf.model_dir('demo-brain-mets'))"], outside, env)
    assert probe.returncode == 0, probe.stderr
    package, root, rules_file, model = (Path(line) for line in probe.stdout.split())
    venv = bin_dir.parent
    assert package.is_relative_to(venv) and not package.is_relative_to(REPO), package
    assert root == package.parent / "_shipped"
    assert rules_file == root / "rules" / "routing.yaml" and rules_file.is_file()
    assert (model / "model.onnx").is_file() and (model / "model.yaml").is_file()


def test_check_config_and_a_c_echo_from_the_wheel(installed: tuple[Path, dict[str, str], Path]) -> None:
    bin_dir, env, outside = installed
    nadir = str(bin_dir / "nadir")
    checked = _run([nadir, "check-config"], outside, env, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "routing.yaml" in checked.stdout and "Traceback" not in checked.stderr

    port = free_port()
    serve_env = {**env, "NADIR_NODE__HOST": "127.0.0.1", "NADIR_NODE__PORT": str(port),
                 "NADIR_STORE__MIN_FREE_BYTES": "0", "NADIR_WEB__PORT": str(free_port())}
    log = outside / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([nadir, "serve"], cwd=outside, env=serve_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        def echoed() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"nadir serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            return _echo(port)

        wait_until(f"a C-ECHO answered on port {port}", echoed, 120, 0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert (outside / "data").is_dir(), "the embedded default's spool and database in the working folder"


def _echo(port: int) -> bool:
    """dcmtk's echoscu, as an admin would (pynetdicom where dcmtk is not installed)."""
    if shutil.which("echoscu") and Path(shutil.which("echoscu") or "").parent != Path(sys.executable).parent:
        run = subprocess.run(["echoscu", "-to", "5", "-aec", "NADIR", "127.0.0.1", str(port)],
                             capture_output=True, timeout=30)
        return run.returncode == 0
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="WHEELTEST")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="NADIR")
    if not assoc.is_established:
        time.sleep(0.2)
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and int(status.Status) == 0
