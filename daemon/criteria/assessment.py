"""The output every criterion returns: a category with the numbers and reasons behind it.

This is the contract between criteria/ and report/ (and `nadir assess`). Each
criterion module may add its own input dataclasses, but returns an `Assessment`.
A number that does not apply is None, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Citation:
    text: str  # authors, journal, year, section/table, as the rules file gives it
    doi: str | None = None


@dataclass(frozen=True)
class TimepointResult:
    """The numbers of one timepoint, as a radiologist reads them in the table."""

    timepoint: str  # label (e.g. "baseline", "fu1", or a study date)
    category: str  # e.g. BASELINE, CR, PR, SD, PD, NE
    numbers: dict[str, float | None] = field(default_factory=dict)
    # e.g. sum_mm, nadir_mm, pct_vs_baseline, pct_vs_nadir, abs_change_mm
    nadir_timepoint: str | None = None  # which timepoint the nadir was
    evaluable: bool = True
    reasons: tuple[str, ...] = ()  # short sentences naming the rule that fired, with numbers
    details: dict[str, str] = field(default_factory=dict)  # e.g. target_response: PR
    flags: tuple[str, ...] = ()  # e.g. steroid_increase (for this timepoint)
    checks: dict[str, bool] = field(default_factory=dict)  # e.g. measurable, comparability_warning


@dataclass(frozen=True)
class Assessment:
    criterion: str  # e.g. "RECIST1.1", "RANO-BM", "PERCIST1.0"
    citation: Citation
    category: str  # the overall / latest category
    timepoints: tuple[TimepointResult, ...] = ()
    numbers: dict[str, float | None] = field(default_factory=dict)  # criterion-level numbers, e.g. ratio
    evaluable: bool = True
    reasons: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()  # e.g. at_threshold, off_label_method, exploratory
    details: dict[str, str] = field(default_factory=dict)  # e.g. which setting a cut-off applies to
    tables: dict[str, dict[str, float | None]] = field(default_factory=dict)  # e.g. ratios: {BF: 0.35}
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)  # e.g. triggered_by: (...)
    classified: bool = True  # False: numbers only, no published cut-off (category then not meaningful)

    @classmethod
    def from_timepoints(
        cls, criterion: str, citation: Citation, results: tuple[TimepointResult, ...]
    ) -> Assessment:
        """The assessment of a series of timepoints: the latest one's category and numbers.

        The baseline's own flags stay on the baseline timepoint.
        """
        last = results[-1]
        return cls(
            criterion=criterion,
            citation=citation,
            category=last.category,
            timepoints=results,
            numbers=dict(last.numbers),
            evaluable=last.evaluable,
            reasons=last.reasons,
            flags=last.flags,
            details=dict(last.details),
        )
