"""Every segmentation test starts without cached sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daemon.segment import runtime


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    runtime.clear_cache()
    yield
    runtime.clear_cache()
