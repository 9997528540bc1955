"""PERCIST 1.0 as the whole-body FDG route's response rule (daemon.pipelines.lesion_followup.ResponseRule).

Each timepoint's PERCIST view (daemon.criteria.percist.PetTimepoint) comes from its tracked
lesions (SULpeak in the 1 cm3 sphere, `sul_peak`) and its context (the liver reference of
the 3 cm sphere, the uptake time, TLG); a new lesion at follow-up is a new FDG-avid
lesion. Targets at baseline: the hottest lesions by SULpeak, at most 5 and 2 per organ
(rules/percist.yaml); the category compares the hottest lesion of each timepoint with the
baseline's, whichever lesion it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from daemon.criteria import percist
from daemon.criteria.assessment import Assessment
from daemon.criteria.inputs import LesionInput, from_finding
from daemon.criteria.params import PercistRules
from daemon.criteria.rules import RulesSource
from daemon.findings import LesionKind, Timepoint
from daemon.measure.lesions import MeasuredLesion
from daemon.report.percist_text import timepoint_number
from daemon.volume import Volume

PEAK = "sul_peak"


def _tlg(tp: Timepoint) -> float | None:
    """Sum of SULmean x volume over the lesions (None without lesions measured)."""
    parts = [les.measurements.intensity["sul_mean"] * les.measurements.volume_ml for les in tp.lesions
             if "sul_mean" in les.measurements.intensity and les.measurements.volume_ml is not None]
    return sum(parts) if parts else None


def pet_timepoint(tp: Timepoint, first: bool) -> percist.PetTimepoint:
    label = tp.study_date.isoformat() if tp.study_date else tp.study_instance_uid
    lesions: tuple[LesionInput, ...] = tuple(from_finding(les) for les in tp.lesions if PEAK in les.measurements.intensity)
    return percist.PetTimepoint(
        label, liver_sul_mean=timepoint_number(tp, "liver_sul_mean"), liver_sul_sd=timepoint_number(tp, "liver_sul_sd"),
        lesions=lesions, new_lesion=not first and any(les.kind is LesionKind.NEW for les in tp.lesions),
        all_lesions_at_background=not tp.lesions if not first else None,
        uptake_time_min=timepoint_number(tp, "uptake_time_min"), tlg=_tlg(tp),
    )


class PercistRule:
    """PERCIST 1.0 (Wahl 2009) over tracked lesions."""

    criterion = percist.CRITERION

    def __init__(self, rules: RulesSource) -> None:
        self.params = rules.load(PercistRules, "percist").percist

    def thresholds(self) -> dict[str, float]:
        """The lines of the trend plot: PMR and PMD as percent changes of the hottest SULpeak from
        the baseline's (PERCIST compares with the baseline, not a nadir)."""
        return {"pr_pct_vs_baseline": float(self.params.pmr_pct), "pd_pct_vs_baseline": float(self.params.pmd_pct)}

    def baseline_kinds(self, lesions: Sequence[MeasuredLesion], volume: Volume, sites: Sequence[str],
                       nodes: Sequence[bool]) -> list[LesionKind]:
        """The hottest lesions by SULpeak, at most `max_lesions` and `max_lesions_per_organ`: targets."""
        order = sorted(range(len(lesions)), key=lambda n: -lesions[n].measurements.intensity.get(PEAK, 0.0))
        chosen: set[int] = set()
        per_site: dict[str, int] = {}
        for n in order:
            site = "lymph node" if nodes[n] else sites[n]
            if len(chosen) < self.params.max_lesions and per_site.get(site, 0) < self.params.max_lesions_per_organ:
                chosen.add(n)
                per_site[site] = per_site.get(site, 0) + 1
        return [LesionKind.TARGET if n in chosen else LesionKind.NON_TARGET for n in range(len(lesions))]

    def assess(self, history: Sequence[Timepoint], current: Timepoint,
               volume: Volume) -> tuple[Assessment | None, str]:
        timepoints = [*history, current]
        if not timepoints[0].lesions:
            return None, "no FDG-avid lesion at baseline: PERCIST 1.0 response cannot be assessed"
        pets = [pet_timepoint(tp, n == 0) for n, tp in enumerate(timepoints)]
        said: tuple[str, ...] = ()
        if pets[0].liver_sul_mean is None and pets[-1].liver_sul_mean is not None:
            # the baseline's liver reference is not known (e.g. read back from an SR): measurability
            # by this study's liver, and no comparability check
            pets[0] = replace(pets[0], liver_sul_mean=pets[-1].liver_sul_mean, liver_sul_sd=pets[-1].liver_sul_sd)
            said = ("the baseline's liver reference is not known: its measurability judged with this study's "
                    "liver reference, and the liver comparability of the two scans not checked",)
        try:
            found = percist.assess(pets, self.params)
            return replace(found, reasons=(*found.reasons, *said)), ""
        except ValueError as exc:
            return None, f"PERCIST 1.0 not assessable: {exc}"
