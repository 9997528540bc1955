"""The `nadir` command line: one line and exit status 2 for an expected slip (never a
traceback), the default settings file (`NADIR_CONFIG`, `/etc/nadir/nadir.yaml`), and the
global options before or after the command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.commands._store import config_file

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder without a data folder, and no settings file or NADIR_* variable in force."""
    for name in [n for n in os.environ if n.startswith("NADIR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    level = logging.getLogger().level
    yield tmp_path
    logging.getLogger().setLevel(level)


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run `nadir ARGV`; it must exit 2 with one line on stderr (deprecation notes aside)."""
    rc = main(list(argv))
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if "deprecated" not in line]
    assert rc == 2, (argv, out.err)
    assert len(lines) == 1 and "Traceback" not in out.err, out.err
    return lines[0]


def test_without_a_data_folder_the_store_commands_say_so_in_one_line(bare: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["ls"], ["jobs"], ["outbox"], ["resend"], ["study", "ls"], ["study", "show", "1.2.3"],
                 ["job", "ls"], ["job", "retry", "1"], ["outbox", "ls"], ["outbox", "resend", "1"],
                 ["explain", "1.2.3"]):
        line = one_line_error(capsys, *argv)
        assert f"no data folder {bare / 'data'}" in line and "--config or NADIR_CONFIG" in line, line
    assert not (bare / "data").exists()


def test_no_traceback_from_the_installed_command(bare: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "ls"], capture_output=True, text=True,
                            check=False, cwd=bare, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"nadir study ls: no data folder {bare / 'data'}")


def test_explain_measure_and_export_of_what_is_not_there(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, "explain", "missing/study") == \
        "nadir explain: missing/study: no such folder (and not a Study Instance UID)"
    (bare / "data").mkdir()
    assert one_line_error(capsys, "explain", "1.2.3") == \
        "nadir explain: no study 1.2.3 in the node's database (`nadir study ls` lists them)"
    (bare / "notes.txt").write_text("not DICOM")
    (bare / "series").mkdir()
    assert one_line_error(capsys, "measure", "series", "--seg", "notes.txt") == \
        "nadir measure: notes.txt: not a DICOM file; --seg takes a DICOM Segmentation file"
    assert one_line_error(capsys, "measure", "series", "--seg", "seg.dcm") == \
        "nadir measure: seg.dcm: no such file; --seg takes a DICOM Segmentation file"
    assert one_line_error(capsys, "export-nifti", "missing", "out.nii.gz") == \
        "nadir export-nifti: missing: no such folder; give the folder that holds the series' DICOM files"
    assert not (bare / "data" / "nadir.db").exists()


def test_unknown_command_or_action(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, "study", "lsit") == \
        "nadir study: unknown action 'lsit': `nadir study` takes one of ls, show"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("study show", "job retry", "outbox resend", "check-config"):
        assert command in out


def test_nadir_config_is_the_default_settings_file(bare: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (bare / "node").mkdir()
    settings = bare / "nadir.yaml"
    settings.write_text(f"store:\n  data_dir: {bare / 'node'}\n")
    monkeypatch.setenv("NADIR_CONFIG", str(settings))
    assert main(["study", "ls"]) == 0  # the folder of the file, not ./data
    assert capsys.readouterr().out == "no study received yet\n"
    monkeypatch.setenv("NADIR_CONFIG", str(bare / "missing.yaml"))
    assert f"{bare / 'missing.yaml'}: cannot read" in one_line_error(capsys, "job", "ls")
    assert main(["job", "ls", "--config", str(settings)]) == 0  # --config wins, before or after
    assert main(["--config", str(settings), "job", "ls"]) == 0


def test_default_settings_file_order(tmp_path: Path) -> None:
    system = tmp_path / "etc-nadir.yaml"
    assert config_file(None, {}, system) is None  # the embedded default
    system.write_text("{}\n")
    assert config_file(None, {}, system) == system
    assert config_file(None, {"NADIR_CONFIG": "/x.yaml"}, system) == Path("/x.yaml")
    assert config_file(Path("/y.yaml"), {"NADIR_CONFIG": "/x.yaml"}, system) == Path("/y.yaml")


@pytest.mark.parametrize(("argv", "level"), [
    (["-q", "study", "ls"], logging.WARNING),
    (["study", "ls", "-q"], logging.WARNING),
    (["study", "ls", "-qq"], logging.ERROR),
    (["ls", "-v"], logging.DEBUG),
    (["study", "--log-level", "ERROR", "ls"], logging.ERROR),
    (["study", "ls", "--log-level", "DEBUG"], logging.DEBUG),
    (["--log-level", "WARNING", "study", "ls", "-v"], logging.WARNING),  # the explicit level wins
    (["study", "ls"], logging.INFO),
])
def test_global_options_before_or_after_the_command(bare: Path, capsys: pytest.CaptureFixture[str],
                                                    argv: list[str], level: int) -> None:
    (bare / "data").mkdir()
    assert main(argv) == 0
    assert capsys.readouterr().out == "no study received yet\n"
    assert logging.getLogger().level == level
