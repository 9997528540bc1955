"""Fixtures of the report tests (all data synthetic: see synthetic.py)."""

from __future__ import annotations

import pytest

from .phantom import Phantom, build_phantom


@pytest.fixture(scope="session")
def phantom() -> Phantom:
    return build_phantom()
