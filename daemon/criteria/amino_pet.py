"""Amino-acid (FDOPA, FET) and dual-phase FDG PET of the brain: recurrence or progression
versus treatment-related change, from ratios and published cut-offs (seed 001).

Each cut-off in rules/amino_pet.yaml carries its tracer, its setting (glioma or brain
metastases), its sensitivity/specificity and its citation. A cut-off is applied only to
its own tracer and setting; otherwise the ratio is reported `not_applicable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from daemon.criteria.assessment import Assessment
from daemon.criteria.exact import f, q, ratio
from daemon.criteria.params import AminoPetParams, Condition, CutOff

CRITERION = "amino-acid PET"


def _holds(c: Condition, x: Fraction) -> bool:
    v = q(c.value)
    return {"ge": x >= v, "gt": x > v, "lt": x < v, "le": x <= v}[c.op]


def _performance(cut: CutOff) -> dict[str, float | None]:
    p = cut.performance
    keys = ("sensitivity_pct", "specificity_pct", "accuracy_pct", "auc")
    return {k: None if getattr(p, k) is None else float(getattr(p, k)) for k in keys}


def _names(params: AminoPetParams, cut: CutOff) -> str:
    return " / ".join(params.setting_names.get(s, s) for s in cut.settings)


def evaluate(
    params: AminoPetParams,
    name: str,
    tracer: str,
    setting: str,
    quantities: Mapping[str, Fraction | None],
    numbers: Mapping[str, float | None],
) -> Assessment:
    """Apply cut-off `name` to the quantities (ratio, tbr_mean, index...) of one lesion."""
    cut = params.cutoffs[name]
    cite = cut.citation.to_citation()
    details = {"cutoff": name, "label": cut.label, "tracer": tracer, "setting": setting,
               "cut_tracer": cut.tracer, "cut_settings": " ".join(cut.settings),
               "applies_to": f"{cut.tracer} PET, {_names(params, cut)}",
               "verified": cut.verified}
    base = dict(numbers) | _performance(cut)
    if tracer.upper() != cut.tracer.upper() or setting.upper() not in cut.settings:
        reason = f"{cut.label} cut-off validated for {_names(params, cut)} only"
        if tracer.upper() != cut.tracer.upper():
            reason = f"{cut.label} cut-off validated for {cut.tracer} PET only"
        return Assessment(CRITERION, cite, "not_applicable", numbers=base, reasons=(reason,),
                          details=details | {"reason": reason}, classified=True)
    if all(v is None for v in quantities.values()):
        return Assessment(CRITERION, cite, "not_computable", numbers=base, evaluable=False, details=details,
                          reasons=("reference value missing or not positive: ratio not computable",))
    if not cut.conditions or cut.positive is None or cut.negative is None:
        return Assessment(CRITERION, cite, "no_cutoff", numbers=base, classified=False, details=details,
                          reasons=(f"{cut.label}: no numeric cut-off available; values reported only",))
    missing = [c.quantity for c in cut.conditions if quantities.get(c.quantity) is None]
    if cut.requires_all_inputs and missing:
        reason = (f"{cut.label}: {', '.join(missing)} missing: not evaluable for this rule (its sensitivity and "
                  "specificity are those of the combined rule; no source gives the remaining condition's own)")
        return Assessment(CRITERION, cite, "not_evaluable", numbers=base, evaluable=False, details=details,
                          lists={"missing": tuple(missing)}, reasons=(reason,))
    fired: list[str] = []
    flags: list[str] = []
    for c in cut.conditions:
        x = quantities.get(c.quantity)
        if x is None:
            continue
        if _holds(c, x):
            fired.append(c.trigger.format(value=c.value))
        if cut.at_threshold_margin and abs(x - q(c.value)) <= q(cut.at_threshold_margin):
            flags.append("at_threshold")
    category = cut.positive if fired else cut.negative
    words = ", ".join(fired) if fired else "no condition met"
    return Assessment(
        CRITERION, cite, category, numbers=base, flags=tuple(flags), details=details,
        lists={"triggered_by": tuple(fired)},
        reasons=(f"{cut.label} ({cut.tracer}, {_names(params, cut)}): {words}: {category}",),
    )


def cicone(params: AminoPetParams, tracer: str, setting: str, lesion_suvmax: float, background_suvmax: float) -> Assessment:
    """FDOPA, brain metastases after SRS: lesion SUVmax / background SUVmax (rSUV)."""
    r = ratio(q(lesion_suvmax), q(background_suvmax))
    return evaluate(params, "fdopa_cicone_rsuv", tracer, setting, {"ratio": r}, {"ratio": f(r)})


def puranik(params: AminoPetParams, tracer: str, setting: str, tumour_suv: float, white_matter_suv: float) -> Assessment:
    """FET, high-grade glioma: tumour / white-matter ratio."""
    r = ratio(q(tumour_suv), q(white_matter_suv))
    return evaluate(params, "fet_puranik_twm", tracer, setting, {"ratio": r}, {"ratio": f(r)})


def galldiks(
    params: AminoPetParams, tracer: str, setting: str, tbr_mean: float | None, ttp_min: float | None
) -> Assessment:
    """FET, glioma: TBRmean >= 2.0 or time-to-peak < 45 min favours tumour."""
    quantities = {
        "tbr_mean": None if tbr_mean is None else q(tbr_mean),
        "ttp_min": None if ttp_min is None else q(ttp_min),
    }
    return evaluate(params, "fet_galldiks", tracer, setting, quantities,
                    {k: f(v) for k, v in quantities.items()})


def horky(
    params: AminoPetParams, tracer: str, setting: str,
    l1: float, gm1: float, l2: float, gm2: float, reference: str = "grey_matter",
) -> Assessment:
    """Dual-phase FDG: index (L2/GM2 - L1/GM1) / (L1/GM1); white matter has its own cut-off."""
    early, late = ratio(q(l1), q(gm1)), ratio(q(l2), q(gm2))
    index = (late - early) / early if early and late is not None else None
    name = "fdg_dual_phase_horky_wm" if reference == "white_matter" else "fdg_dual_phase_horky"
    return evaluate(params, name, tracer, setting, {"index": index},
                    {"l_gm_early": f(early), "l_gm_delayed": f(late), "index": f(index)})


def lizarraga(
    params: AminoPetParams, tracer: str, setting: str,
    lesion_suv: float, normal_brain_suv: float, striatum_suv: float, statistic: str = "max",
) -> Assessment:
    """FDOPA, brain metastases: L/N and L/S ratios (max or mean); no numeric cut-off published."""
    l_n, l_s = ratio(q(lesion_suv), q(normal_brain_suv)), ratio(q(lesion_suv), q(striatum_suv))
    a = evaluate(params, "fdopa_lizarraga_ratios", tracer, setting, {"l_n": l_n, "l_s": l_s},
                 {"l_n": f(l_n), "l_s": f(l_s)})
    return Assessment(a.criterion, a.citation, a.category, numbers=a.numbers, evaluable=a.evaluable,
                      reasons=a.reasons, flags=a.flags, details=a.details | {"statistic": statistic},
                      classified=a.classified)


def visual_score(params: AminoPetParams, lesion_vs_striatum: str) -> Assessment:
    """The reader's 4-point FDOPA scale against the striatum (1 none ... 4 greater)."""
    scale = params.visual_scale
    key = lesion_vs_striatum.lower()
    if key not in scale.scores:
        raise ValueError(f"lesion_vs_striatum must be one of {', '.join(scale.scores)}")
    score = scale.scores[key]
    cite = scale.citation.to_citation()
    if scale.positive_min_score is None:
        return Assessment(CRITERION, cite, "no_cutoff", numbers={"score": float(score)}, classified=False,
                          reasons=(f"visual score {score} ({key} vs striatum); positive score not set by the site",))
    positive = score >= scale.positive_min_score
    category = "positive" if positive else "negative"
    return Assessment(CRITERION, cite, category, numbers={"score": float(score)},
                      reasons=(f"visual score {score} {'>=' if positive else '<'} {scale.positive_min_score}: "
                               f"{category}",))
