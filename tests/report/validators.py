"""Runs the independent validators on files: dciodvfy, dsrdump, PixelMed, node (dcmjs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parent / "js"
PIXELMED_JAR = Path("/usr/share/java/pixelmed.jar")
PIXELMED = [
    "java", "-Djdk.xml.xpathExprOpLimit=0", "-Djdk.xml.xpathExprGrpLimit=0",
    "-Djdk.xml.xpathTotalOpLimit=0", "-cp", str(PIXELMED_JAR), "com.pixelmed.validate.DicomSRValidator",
]


@dataclass(frozen=True)
class Findings:
    errors: list[str]
    warnings: list[str]
    output: str


def dciodvfy(path: Path) -> Findings:
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    return Findings(
        [ln for ln in lines if ln.startswith("Error")], [ln for ln in lines if ln.startswith("Warning")], proc.stderr
    )


def dsrdump(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dsrdump", "+Pc", str(path)], capture_output=True, text=True, timeout=60)


def pixelmed(path: Path) -> Findings:
    proc = subprocess.run([*PIXELMED, str(path)], capture_output=True, text=True, timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    return Findings(
        [ln for ln in lines if ln.startswith("Error")], [ln for ln in lines if ln.startswith("Warning")],
        proc.stdout + proc.stderr,
    )


def node_ready() -> str | None:
    """None if the dcmjs check can run, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS_DIR / "node_modules" / "dcmjs").is_dir():
        return f"dcmjs not installed: run `npm ci` in {JS_DIR}"
    return None


def read_sr_like_ohif(path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", str(JS_DIR / "read_sr.js"), str(path)], capture_output=True, text=True, timeout=60, cwd=JS_DIR
    )
    if proc.returncode != 0:
        raise AssertionError(f"the OHIF-style reader refused {path.name}: {proc.stderr.strip()}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
