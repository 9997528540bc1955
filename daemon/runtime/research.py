"""The shell's side of research exports: the tables a job's pipeline recorded, written as CSV.

Written under the settings' research folder (`research.folder`, else `<data_dir>/research`),
one file per study and route (`daemon.measure.radiomics_io.csv_name`: a re-run replaces it),
each atomically. A row's mask reference names the SEG as it was issued (a re-run whose content
changed sends it under a new UID, daemon.report.reissue). A folder that cannot be written is
logged as an error and does not fail the job: the clinical outputs still go out, and the
research SR carries the same numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from daemon.measure.radiomics_io import write_radiomics_csv
from daemon.pipelines.research import ResearchTable

log = logging.getLogger(__name__)


def write_tables(folder: Path, tables: Sequence[ResearchTable], issued_uids: Mapping[str, str]) -> list[Path]:
    """Each table as `folder/<name>`; `issued_uids`: a base UID -> the UID it was issued under."""
    written = []
    for table in tables:
        rows = [replace(r, mask_reference=issued_uids.get(r.mask_reference, r.mask_reference)) for r in table.rows]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            written.append(write_radiomics_csv(folder / table.name, rows))
        except OSError as exc:
            log.error("research table %s not written to %s: %s (set research.folder to a writable folder)",
                      table.name, folder, exc)
            continue
        log.info("research table written: %s (%d row(s))", folder / table.name, len(rows))
    return written
