"""Settings: YAML file + NADIR_<SECTION>__<KEY> environment, errors naming file, key and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nadir.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_embedded_node(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("NADIR_NODE__PORT", "NADIR_NODE__AE_TITLE", "NADIR_STORE__DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings()
    assert settings.node.ae_title == "NADIR"
    assert settings.node.port == 11112
    assert settings.store.effective_database_url.startswith("sqlite:///")
    assert settings.assembly.settle_seconds == 30


def test_environment_overrides_file_and_merges_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "node:\n  port: 4242\n  ae_title: FROMFILE\nassembly:\n  settle_seconds: 5\n")
    monkeypatch.setenv("NADIR_NODE__AE_TITLE", "FROMENV")
    monkeypatch.setenv("NADIR_NODE__ALLOWED_CALLING_AES", "CT1, MR2")
    monkeypatch.setenv("NADIR_ASSEMBLY__SETTLE_SECONDS", "2.5")
    settings = load_settings(path)
    assert settings.node.port == 4242  # from the file, not lost by the env merge
    assert settings.node.ae_title == "FROMENV"
    assert settings.node.allowed_calling_aes == ["CT1", "MR2"]
    assert settings.assembly.settle_seconds == 2.5


def test_errors_name_file_key_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "node:\n  port: 99999\n  ae_titel: X\nstore:\n  retention_days: -1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert f"{path}:2: node.port" in text and "65535" in text
    assert f"{path}:3: node.ae_titel: unknown key" in text
    assert f"{path}:5: store.retention_days" in text


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "node:\n  port: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        load_settings(path)


def test_ae_title_rules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="node.ae_title"):
        load_settings(_write(tmp_path, "node:\n  ae_title: THIS_TITLE_IS_TOO_LONG\n"))


def test_cli_without_command_prints_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "check-config" in result.stdout
