"""Every response engine's criterion name is written with the code daemon/report/codes.py declares."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import daemon.criteria
from daemon.report import codes as nc

# engine module -> its row of codes.CRITERIA (engines without a row get a derived private code)
DECLARED = {"recist": "RECIST1.1", "rano_bm": "RANO-BM", "percist": "PERCIST1.0", "chun": "CHUN",
            "perfusion": "PERFUSION", "amino_pet": "AMINO-PET"}


def engines() -> dict[str, str]:
    out = {}
    for info in pkgutil.iter_modules(daemon.criteria.__path__):
        module = importlib.import_module(f"daemon.criteria.{info.name}")
        name = getattr(module, "CRITERION", None)
        if isinstance(name, str):
            out[info.name] = name
    return out


def test_every_declared_engine_is_found() -> None:
    assert set(DECLARED) <= set(engines())


@pytest.mark.parametrize("engine", sorted(DECLARED))
def test_engine_writes_its_declared_code(engine: str) -> None:
    assert nc.criterion_code(engines()[engine]) == nc.CRITERIA[DECLARED[engine]]


def test_perfusion_and_amino_pet_codes() -> None:
    assert nc.criterion_code("CT perfusion").value == "CTPERF"
    assert nc.criterion_code("amino-acid PET").value == "AMINOPET"


def test_no_engine_takes_another_engines_code() -> None:
    found = engines()
    taken = {nc.criterion_code(name).value: engine for engine, name in found.items()}
    assert len(taken) == len(found)
