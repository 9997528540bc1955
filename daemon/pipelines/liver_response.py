"""RECIST 1.1 and Chun for the liver-metastases route: target selection at baseline, the
timepoint inputs of RECIST from tracked lesions, the proposed Chun group of a lesion
from its measured features, and the Chun response (pure; numbers from rules/recist.yaml
and rules/chun.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from daemon.criteria import chun, recist
from daemon.criteria.assessment import Assessment
from daemon.criteria.exact import fmt, q
from daemon.criteria.inputs import LesionInput, NonTarget, Role, TimepointInput, from_finding
from daemon.criteria.params import ChunParams, RecistParams
from daemon.criteria.rules import RulesSource, rules_source
from daemon.findings import Lesion, LesionKind, Timepoint
from daemon.measure.chun_features import Shells
from daemon.measure.lesions import MeasuredLesion
from daemon.volume import Vec3, Volume

# a target not found at follow-up is "outside the field of view" (NE) rather than gone (0 mm)
# when its last known extent, widened by this much for an unregistered repositioning, leaves the volume
FOV_MARGIN_MM = 10.0
# Timepoint.context key: tracking ids the caller (which holds the registration) found outside the field
# of view, comma separated; when present it decides instead of the geometric check
OUTSIDE_FOV = "outside_field_of_view"


class RecistRule:
    """RECIST 1.1 (Eisenhauer 2009) over tracked lesions: the route's response rule."""

    criterion = recist.CRITERION

    def __init__(self, rules: Path | RulesSource) -> None:
        self.params: RecistParams = rules_source(rules).load(RecistParams, "recist")

    def thresholds(self) -> dict[str, float]:
        """The lines of the trend plot."""
        return {"pr_pct_vs_baseline": float(self.params.pr_pct_vs_baseline),
                "pd_pct_vs_nadir": float(self.params.pd_pct_vs_nadir)}

    def baseline_kinds(self, lesions: Sequence[MeasuredLesion], volume: Volume, sites: Sequence[str],
                       nodes: Sequence[bool]) -> list[LesionKind]:
        """§4.2: targets are the largest measurable lesions, at most 5 and 2 per organ (site); nodes by
        short axis (>= 15 mm to be a target); everything else non-target."""
        inputs = []
        for n, (m, site, node) in enumerate(zip(lesions, sites, nodes, strict=True)):
            la, sa = m.measurements.long_axis, m.measurements.short_axis
            inputs.append(LesionInput(str(n), site=site, is_node=node, long_axis_mm=la.length_mm if la else None,
                                      short_axis_mm=sa.length_mm if sa else None))
        targets, _ = recist.select_targets(inputs, self.params, _slice_mm(volume))
        chosen = {t.lesion_id for t in targets}
        return [LesionKind.TARGET if str(n) in chosen else LesionKind.NON_TARGET for n in range(len(lesions))]

    def assess(self, history: Sequence[Timepoint], current: Timepoint,
               volume: Volume) -> tuple[Assessment | None, str]:
        """RECIST 1.1 over the history and this timepoint; (None, why) when it cannot be assessed."""
        timepoints = [*history, current]
        baseline = timepoints[0]
        if not baseline.lesions:
            return None, "no lesion at baseline: RECIST 1.1 response cannot be assessed"
        inputs = []
        for n, tp in enumerate(timepoints):
            last = timepoints[:n] or [tp]
            inputs.append(self.timepoint_input(baseline, tp, last, volume if tp is current else None))
        try:
            return recist.assess(inputs, self.params), ""
        except ValueError as exc:
            return None, f"RECIST 1.1 not assessable: {exc}"

    def timepoint_input(self, baseline: Timepoint, tp: Timepoint, before: Sequence[Timepoint],
                        volume: Volume | None) -> TimepointInput:
        """The criterion's view of one timepoint.

        A baseline target not found is 0 mm (disappeared), or not assessed (NE) when it lies
        outside the field of view: the caller says so in tp.context[OUTSIDE_FOV], otherwise its
        last known extent must lie inside `volume` with FOV_MARGIN_MM to spare (the patient frames
        are not registered here, so the check is conservative). A target present but under the
        "too small" default (§4.3.2, 5 mm) counts as that default.
        """
        limit = q(self.params.too_small_default_mm)
        lesions = [_too_small(from_finding(les), limit) for les in tp.lesions]
        seen = {les.tracking_id for les in tp.lesions}
        outside = _outside_ids(tp, baseline, before, volume)
        for les in baseline.lesions:
            if les.kind is LesionKind.TARGET and les.tracking_id not in seen:
                if les.tracking_id in outside:
                    lesions.append(LesionInput(les.tracking_id, Role.TARGET, site=les.site, is_node=les.is_node,
                                               not_assessed=True))
                else:
                    lesions.append(LesionInput(les.tracking_id, Role.TARGET, site=les.site, is_node=les.is_node,
                                               long_axis_mm=0.0, short_axis_mm=0.0, volume_ml=0.0))
        label = tp.study_date.isoformat() if tp.study_date else tp.study_instance_uid
        return TimepointInput(label, tuple(lesions), nontarget=self._nontarget(baseline, tp),
                              slice_thickness_mm=_slice_mm(volume) if volume is not None else None)

    def _nontarget(self, baseline: Timepoint, tp: Timepoint) -> NonTarget:
        """Present / absent only (§4.3.3): unequivocal progression is the radiologist's call. A node
        non-target below the pathological short axis (10 mm) counts as normal, i.e. gone."""
        wanted = {les.tracking_id for les in baseline.lesions if les.kind is LesionKind.NON_TARGET}
        if not wanted:
            return NonTarget.NONE
        normal = q(self.params.node_pathologic_sa_mm)
        present = [les for les in tp.lesions if les.tracking_id in wanted and not (
            les.is_node and les.measurements.short_axis is not None
            and q(les.measurements.short_axis.length_mm) < normal)]
        return NonTarget.NON_CR_NON_PD if present else NonTarget.CR


def _slice_mm(volume: Volume) -> float:
    return float(volume.spacing[0])


def _too_small(les: LesionInput, limit: Fraction) -> LesionInput:
    """A target seen but measured under the default: "too small to measure" (§4.3.2)."""
    value = les.short_axis_mm if les.is_node else les.long_axis_mm
    if les.role is Role.TARGET and value is not None and 0 < q(value) < limit:
        return replace(les, too_small=True)
    return les


def _outside_ids(tp: Timepoint, baseline: Timepoint, before: Sequence[Timepoint], volume: Volume | None) -> set[str]:
    if OUTSIDE_FOV in tp.context:
        return {x.strip() for x in tp.context[OUTSIDE_FOV].split(",") if x.strip()}
    if volume is None:
        return set()
    out = set()
    for les in baseline.lesions:
        m = _last_seen(les, before).measurements
        if m.centroid is not None:
            radius = (m.max_3d_diameter_mm or (m.long_axis.length_mm if m.long_axis else 0.0)) / 2.0
            if not _inside(volume, m.centroid, radius + FOV_MARGIN_MM):
                out.add(les.tracking_id)
    return out


def _last_seen(lesion: Lesion, timepoints: Sequence[Timepoint]) -> Lesion:
    """The lesion as last seen in the timepoints (itself when not there)."""
    seen = (les for tp in reversed(timepoints) for les in tp.lesions if les.tracking_id == lesion.tracking_id)
    return next(seen, lesion)


def _inside(volume: Volume, centre: Vec3, reach_mm: float) -> bool:
    """Whether a ball of radius reach_mm around centre (patient mm) lies within the volume's grid."""
    idx = volume.patient_to_index(np.asarray(centre, dtype=np.float64))
    pad = reach_mm / np.asarray(volume.spacing, dtype=np.float64)
    hi = np.asarray(volume.shape, dtype=np.float64) - 1.0
    return bool(np.all(idx - pad >= -0.5) and np.all(idx + pad <= hi + 0.5))


# --------------------------------------------------------------------------- Chun


def propose_group(params: ChunParams, features: Mapping[str, float]) -> tuple[int, str]:
    """The proposed Chun group (1/2/3) of a lesion from its features, and the sentence that says why.

    Thresholds: rules/chun.yaml `proposal`, engineering defaults (no published cut-off, chun.md §4).
    Group 1 when homogeneous, hypoattenuating, sharp and without a rim brighter than the liver;
    group 3 when heterogeneous with an ill-defined interface; otherwise group 2.
    """
    g1, g3 = params.proposal.group1, params.proposal.group3
    need = ("hu_sd", "lesion_to_liver_hu", "interface_hu_per_mm", "rim_vs_liver_hu")
    missing = [k for k in need if k not in features]
    sd, iface = features.get("hu_sd"), features.get("interface_hu_per_mm")
    if sd is not None and iface is not None and q(sd) >= q(g3.hu_sd_min) and q(iface) <= q(g3.interface_hu_per_mm_max):
        return 3, (f"heterogeneous (HU SD {fmt(q(sd))} >= {fmt(q(g3.hu_sd_min))}) with an ill-defined interface "
                   f"({fmt(q(iface))} <= {fmt(q(g3.interface_hu_per_mm_max))} HU/mm): group 3 proposed")
    if missing:
        return 2, f"{', '.join(missing)} not measured: group 2 proposed (indeterminate)"
    checks = [  # (holds, fails, feature, value, comparison, threshold)
        ("homogeneous", "heterogeneous", "HU SD", q(features["hu_sd"]), "<=", q(g1.hu_sd_max)),
        ("hypoattenuating", "not hypoattenuating enough", "vs liver HU", q(features["lesion_to_liver_hu"]), "<=",
         q(g1.lesion_to_liver_hu_max)),
        ("sharp", "not sharp", "interface HU/mm", q(features["interface_hu_per_mm"]), ">=",
         q(g1.interface_hu_per_mm_min)),
        ("no enhancing rim", "an enhancing rim", "rim vs liver HU", q(features["rim_vs_liver_hu"]), "<=",
         q(g1.rim_vs_liver_hu_max)),
    ]
    failed = [c for c in checks if not (c[3] <= c[5] if c[4] == "<=" else c[3] >= c[5])]
    if not failed:
        said = ", ".join(f"{c[0]} ({c[2]} {fmt(c[3])} {c[4]} {fmt(c[5])})" for c in checks)
        return 1, f"{said}: group 1 proposed"
    said = ", ".join(f"{c[1]} ({c[2]} {fmt(c[3])}, group 1 needs {c[4]} {fmt(c[5])})" for c in failed)
    return 2, f"{said}; not heterogeneous with an ill-defined interface either: group 2 proposed"


def _groups(tp: Timepoint) -> dict[str, tuple[int, bool]]:
    """tracking id -> (group, confirmed by a radiologist) for the lesions that carry a group (lymph nodes
    left out: Chun grades liver metastases)."""
    out = {}
    for les in tp.lesions:
        group = les.measurements.notes.get("chun_group", "").strip()
        if group.isdigit() and not les.is_node:
            confirmed = les.measurements.notes.get("chun_group_source") == "radiologist"
            out[les.tracking_id] = (int(group), confirmed)
    return out


def chun_assessment(rules: Path | RulesSource, history: Sequence[Timepoint], current: Timepoint,
                    bevacizumab: bool | None) -> Assessment | None:
    """Per-lesion Chun response (Chun 2009) from the baseline's and this timepoint's groups
    (notes["chun_group"]; notes["chun_group_source"] == "radiologist" when confirmed), lesions
    matched by tracking_id. None at baseline or when no baseline lesion has a group. A baseline
    lesion without a group now is not evaluable; a new lesion has no baseline group and is left
    out. Flagged "proposed" unless every group was confirmed by a radiologist.
    """
    if not history:
        return None
    before, now = _groups(history[0]), _groups(current)
    if not before:
        return None
    params = rules_source(rules).load(ChunParams, "chun")
    lesions = []
    for tid, (group, confirmed) in before.items():
        later, later_confirmed = now.get(tid, (None, True))
        source = "radiologist" if confirmed and later_confirmed else "assisting_classifier"
        lesions.append(chun.ChunLesion(tid, group, later, source))
    result = chun.assess(lesions, params, bevacizumab)
    if all(les.group_source == "radiologist" for les in lesions):
        return result
    return replace(result, flags=(*result.flags, "proposed"))


_BEVACIZUMAB = re.compile(r"\b(bevacizumab|avastin|mvasi|zirabev)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(no|not|without|sans|stopped|arr[eê]t|pas de)\W+(\w+\W+){0,2}$", re.IGNORECASE)


def bevacizumab_mentioned(texts: Iterable[str]) -> bool | None:
    """Whether the study's header texts name bevacizumab (Avastin, or a biosimilar) in the regimen.

    None when there is no text to read; False when no text names it or every mention is negated
    ("no bevacizumab", "sans bevacizumab"); Chun then carries its regimen warning.
    """
    seen = [t for t in texts if t and t.strip()]
    if not seen:
        return None
    for text in seen:
        for m in _BEVACIZUMAB.finditer(text):
            if not _NEGATION.search(text[: m.start()]):
                return True
    return False


def shells(params: ChunParams) -> Shells:
    """Where the Chun features are measured, from rules/chun.yaml `features`."""
    f = params.features
    return Shells(float(f.rim_mm), float(f.interface_mm), (float(f.liver_mm[0]), float(f.liver_mm[1])))
