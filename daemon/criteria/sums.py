"""Sum of target diameters per timepoint and the nadir before a timepoint.

Shared bookkeeping of RECIST 1.1 and RANO-BM; the rules that judge the numbers
(sum-level 5 mm in RECIST, lesion-level 5 mm in RANO-BM) stay in each criterion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from daemon.criteria.inputs import LesionInput, TimepointInput


@dataclass(frozen=True)
class SumRow:
    label: str
    values: dict[str, Fraction | None]  # target id -> measured value (None: not assessed)
    total: Fraction  # sum of the values that were measured
    complete: bool  # every target measured (and imaging done)


def sum_rows(
    timepoints: Sequence[TimepointInput],
    targets: Sequence[LesionInput],
    value: Callable[[LesionInput, LesionInput | None], Fraction | None],
) -> list[SumRow]:
    """One row per timepoint; `value(baseline_lesion, lesion_at_t)` gives the summed number."""
    rows = []
    for tp in timepoints:
        values = {
            t.lesion_id: value(t, tp.lesion(t.lesion_id)) if tp.imaging_done else None
            for t in targets
        }
        present = [v for v in values.values() if v is not None]
        rows.append(
            SumRow(
                label=tp.label,
                values=values,
                total=sum(present, Fraction(0)),
                complete=len(present) == len(values),
            )
        )
    return rows


def nadir_before(rows: Sequence[SumRow], index: int) -> tuple[Fraction, int]:
    """The smallest complete sum before `index` (baseline included) and where it was.

    Ties go to the most recent timepoint. The baseline is complete by construction.
    """
    best = 0
    for i in range(1, index):
        if rows[i].complete and rows[i].total <= rows[best].total:
            best = i
    return rows[best].total, best


def last_complete_before(rows: Sequence[SumRow], index: int) -> SumRow:
    """The latest timepoint before `index` with every target measured (at worst the baseline)."""
    return next(rows[j] for j in range(index - 1, -1, -1) if rows[j].complete)
