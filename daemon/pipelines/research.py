"""Research tables a pipeline produces beside its DICOM outputs, collected for the runtime (no I/O).

A pipeline returns datasets only; a table for research (the radiomics CSV: one row per
lesion) is handed over like the model timings of daemon.segment.timing: the runtime opens a
collection around the pipeline (`collect_research`, in daemon.runtime.execution), the
pipeline adds its tables (`record_research`), and the runtime writes them, atomically, under
the research folder of the settings (`research.folder`). Outside a collection (a test,
`nadir measure`) a table is dropped, and the caller that wants it opens its own collection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from daemon.measure.radiomics_io import RadiomicsRow


@dataclass(frozen=True)
class ResearchTable:
    """One CSV: its file name (deterministic: a re-run replaces it) and its rows."""

    name: str
    rows: tuple[RadiomicsRow, ...]


_collected: ContextVar[list[ResearchTable] | None] = ContextVar("nadir_research", default=None)


@contextmanager
def collect_research() -> Iterator[list[ResearchTable]]:
    """The research tables of the enclosed code, appended to the list as they are recorded."""
    tables: list[ResearchTable] = []
    token = _collected.set(tables)
    try:
        yield tables
    finally:
        _collected.reset(token)


def record_research(table: ResearchTable) -> bool:
    """One table, into the collection open in this context; False when none is open."""
    tables = _collected.get()
    if tables is None:
        return False
    tables.append(table)
    return True
