"""How long each model run took, collected for the job that ran it (no I/O).

The runtime opens a collection around a pipeline (`collect_inferences`, in
daemon.runtime.execution); `segment()` adds each run's model and seconds to it; the
runtime writes them with the job's DONE transaction (daemon.store.telemetry), and
`/metrics` reads them as `nadir_inference_seconds` by model. A pipeline neither passes
nor sees them. Outside a collection (a test, `nadir measure`) a run is not recorded.
The collection belongs to the calling thread's context: a pipeline that runs a model on
a thread of its own pool runs it under `contextvars.copy_context()` to have it counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Inference:
    """One model run: which model, and how long it took (wall-clock seconds)."""

    model: str
    version: str
    seconds: float


_collected: ContextVar[list[Inference] | None] = ContextVar("nadir_inferences", default=None)


@contextmanager
def collect_inferences() -> Iterator[list[Inference]]:
    """The model runs of the enclosed code, appended to the list as they end."""
    runs: list[Inference] = []
    token = _collected.set(runs)
    try:
        yield runs
    finally:
        _collected.reset(token)


def record_inference(model: str, version: str, seconds: float) -> None:
    """One model run, into the collection open in this context (if any)."""
    runs = _collected.get()
    if runs is not None:
        runs.append(Inference(model, version, seconds))
