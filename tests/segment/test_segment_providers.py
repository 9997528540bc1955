"""Execution-provider choice, fallback to the CPU, one log line per model and process."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tiny_models import conv_model, write_model

from daemon.segment import load_model, runtime
from daemon.segment.runtime import CPU, CUDA, TENSORRT, choose_providers

ALL = [TENSORRT, CUDA, CPU]


def test_choice_prefers_tensorrt_then_cuda_then_cpu() -> None:
    assert choose_providers("auto", ALL, gpu=True, tensorrt_libs=True) == [TENSORRT, CUDA, CPU]
    assert choose_providers("auto", ALL, gpu=True, tensorrt_libs=False) == [CUDA, CPU]
    assert choose_providers("auto", ALL, gpu=False, tensorrt_libs=True) == [CPU]
    assert choose_providers("auto", [CPU], gpu=True, tensorrt_libs=True) == [CPU]
    assert choose_providers("cuda", ALL, gpu=True, tensorrt_libs=True) == [CUDA, CPU]
    assert choose_providers("cpu", ALL, gpu=True, tensorrt_libs=True) == [CPU]


def test_provider_is_logged_once_and_sessions_are_cached(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = write_model(tmp_path / "m", conv_model())
    with caplog.at_level(logging.INFO, logger="daemon.segment"):
        first = load_model(folder)
        second = load_model(folder)
    assert first is second
    lines = [r.getMessage() for r in caplog.records if "runs on" in r.getMessage()]
    assert lines == [lines[0]] and f"runs on {first.provider}" in lines[0]
    assert first.provider in (TENSORRT, CUDA, CPU)


def test_gpu_asked_for_but_unusable_falls_back_to_cpu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if runtime.gpu_present():
        pytest.skip("a GPU is present: the fallback cannot be forced here")
    monkeypatch.setattr(runtime, "gpu_present", lambda: True)  # pretend a driver, without the CUDA libraries
    folder = write_model(tmp_path / "m", conv_model())
    with caplog.at_level(logging.INFO, logger="daemon.segment"):
        model = load_model(folder, providers="cuda")
    assert model.provider == CPU
    assert any("runs on CPUExecutionProvider" in r.getMessage() for r in caplog.records)


def test_running_a_model_never_imports_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = write_model(tmp_path / "m", conv_model())
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from daemon.segment import load_model, segment\n"
        "from daemon.volume import SliceRef, Volume\n"
        "a = np.zeros((4, 9, 9), np.float32)\n"
        "v = Volume(a, np.eye(4), tuple(SliceRef(f'2.25.{k}', '1.2') for k in range(4)), '2.25.9')\n"
        f"segment(v, load_model(Path({str(folder)!r}), providers='cpu'))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
