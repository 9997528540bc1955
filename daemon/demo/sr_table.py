"""What a radiologist reads in one of our SRs, as a plain-text table (demo and tests).

Lesions come back through `daemon.report.readback`; the assessment's numbers
(sum, baseline, nadir, % changes) and the study-level statements ("No lesion",
"No suitable series") are read from the measurement groups; the impression and
reasons from the Qualitative Evaluations container.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from daemon.report.readback import ReadBack, read_report


@dataclass(frozen=True)
class SrSummary:
    back: ReadBack
    numbers: dict[str, float] = field(default_factory=dict)  # assessment NUMs: meaning -> value
    statements: tuple[str, ...] = ()  # tracking identifiers of the study-level groups
    texts: tuple[str, ...] = ()  # impression and reasons
    # every assessment of the report: criterion (code meaning) -> category (code value)
    assessments: dict[str, str] = field(default_factory=dict)

    @property
    def category(self) -> str | None:
        return self.back.category


def _items(item: Dataset) -> Iterable[Dataset]:
    seq: Iterable[Dataset] = item.get("ContentSequence", [])
    return seq


def _meaning(item: Dataset, attr: str = "ConceptNameCodeSequence") -> str:
    seq = item.get(attr)
    return str(seq[0].CodeMeaning) if seq else ""


def _value(item: Dataset, attr: str) -> str:
    seq = item.get(attr)
    return str(seq[0].CodeValue) if seq else ""


def summarize(sr: Dataset) -> SrSummary:
    numbers: dict[str, float] = {}
    statements: list[str] = []
    texts: list[str] = []
    assessments: dict[str, str] = {}
    for top in _items(sr):
        if _value(top, "ConceptNameCodeSequence") == "126010":
            for group in _items(top):
                assessments.update(_assessment(group))
                tid = next((str(i.TextValue) for i in _items(group)
                            if i.ValueType == "TEXT" and _value(i, "ConceptNameCodeSequence") == "112039"), "")
                if any(i.ValueType == "CODE" and _meaning(i) == "Lesion kind" for i in _items(group)):
                    continue
                statements.append(tid)
                for i in _items(group):
                    if i.ValueType == "NUM" and i.get("MeasuredValueSequence"):
                        numbers[_meaning(i)] = float(i.MeasuredValueSequence[0].NumericValue)
        elif top.ValueType == "CONTAINER":
            texts += [str(i.TextValue) for i in _items(top) if i.ValueType == "TEXT"]
    return SrSummary(read_report(sr), numbers, tuple(statements), tuple(texts), assessments)


def _assessment(group: Dataset) -> dict[str, str]:
    """criterion -> category of a measurement group that states both (112021, 112048)."""
    criterion = next((_meaning(i, "ConceptCodeSequence") for i in _items(group)
                      if i.ValueType == "CODE" and _value(i, "ConceptNameCodeSequence") == "112021"), "")
    category = next((_value(i, "ConceptCodeSequence") for i in _items(group)
                     if i.ValueType == "CODE" and _value(i, "ConceptNameCodeSequence") == "112048"), "")
    return {criterion: category} if criterion and category else {}


def _f(v: float | None, d: int = 1) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def table(s: SrSummary) -> str:
    lines = [f"{'lesion':<8} {'kind':<11} {'long mm':>8} {'short mm':>8} {'volume ml':>10}"]
    for les in s.back.lesions:
        m = les.measurements
        lines.append(
            f"{les.tracking_id:<8} {les.kind.value:<11} {_f(m.long_axis.length_mm if m.long_axis else None):>8} "
            f"{_f(m.short_axis.length_mm if m.short_axis else None):>8} {_f(m.volume_ml, 3):>10}"
        )
    if not s.back.lesions:
        lines.append("(no lesion)")
    for name, value in s.numbers.items():
        lines.append(f"  {name}: {value:.1f}")
    for criterion, category in (s.assessments or {s.back.criterion or "assessment": s.category or "not assessed"}).items():
        lines.append(f"  {criterion}: {category}")
    for st in s.statements:
        if not st.endswith("assessment"):
            lines.append(f"  {st}")
    for t in s.texts[:3]:
        lines.append(f"  > {t}")
    return "\n".join(lines)
