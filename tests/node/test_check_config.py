"""`nadir check-config`: effective settings, or errors naming file, key and line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from node_harness import PYTHON, REPO_ROOT


def check(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "daemon.cli", "check-config", str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env},
    )


def test_valid_file_prints_effective_settings_with_env_override(tmp_path: Path) -> None:
    f = tmp_path / "nadir.yaml"
    f.write_text("node:\n  ae_title: SITE\n  port: 11113\nassembly:\n  settle_seconds: 45\n")
    out = check(f, NADIR_NODE__PORT="4242")
    assert out.returncode == 0, out.stderr
    assert "ae_title: SITE" in out.stdout
    assert "port: 4242" in out.stdout
    assert "settle_seconds: 45.0" in out.stdout


def test_errors_name_file_key_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("node:\n  ae_title: SITE\n  port: 70000\nstore:\n  data_dri: /x\n")
    out = check(f)
    assert out.returncode != 0
    assert f"{f}:3: node.port" in out.stderr
    assert f"{f}:5: store.data_dri: unknown key" in out.stderr


def test_the_routing_file_it_points_at_is_checked_too(tmp_path: Path) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text(
        "routes:\n  - name: qa\n    pipeline: qa_report\n    destinations: [nowhere]\n"
    )
    f = tmp_path / "nadir.yaml"
    f.write_text(f"routing:\n  rules_file: {rules}\n")
    out = check(f)
    assert out.returncode == 2
    assert str(rules) in out.stderr and "nowhere" in out.stderr
    # the shipped rules with the default destinations are valid and counted
    good = tmp_path / "good.yaml"
    good.write_text("node:\n  ae_title: SITE\n")
    out = check(good)
    assert out.returncode == 0, out.stderr
    assert "rules/routing.yaml: valid;" in out.stdout and "route(s)" in out.stdout
