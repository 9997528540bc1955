"""Brain-metastasis prognostic scores: RPA (RTOG), Yamamoto's RPA II subclasses, GPA,
DS-GPA (lung, melanoma, breast), SIR and BSBM.

A points score is data (rules/prognostic.yaml): each factor gives points by band or by
category, the total picks a class with its seed median survival.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from daemon.criteria.assessment import Assessment
from daemon.criteria.params import Factor, PointsScore, PrognosticParams

CRITERION = "prognostic score"

Value = bool | int | float | str | None


def _number(name: str, value: Value) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name}: a number is needed, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise ValueError(f"{name}: a number is needed, got {value!r}")
    return number


def _category(value: Value) -> str:
    return str(value).lower()


def _points(name: str, factor: Factor, value: Value) -> Decimal:
    if factor.categories:
        lookup = {k.lower(): v for k, v in factor.categories.items()}
        key = _category(value)
        if key not in lookup:
            raise ValueError(f"{name}: {value!r} is not one of {', '.join(factor.categories)}")
        return lookup[key]
    x = _number(name, value)
    for band in factor.bands:
        if band.holds(x):
            return band.points
    raise ValueError(f"{name}: {value!r} is in no band of the score")


def points_score(params: PrognosticParams, name: str, inputs: Mapping[str, Value]) -> Assessment:
    """Score `name` of rules/prognostic.yaml on the patient's `inputs`."""
    spec: PointsScore = params.scores[name]
    cite = spec.citation.to_citation()
    for key, want in spec.requires.items():
        if _category(inputs.get(key, want)) != want.lower():
            return Assessment(CRITERION, cite, "not_applicable", evaluable=False,
                              details={"reason": f"{name} applies only when {key} is {want}"},
                              reasons=(f"{name} applies only when {key} is {want}",))
    numbers: dict[str, float | None] = {}
    total = Decimal(0)
    for key, factor in spec.factors.items():
        if key not in inputs:
            raise ValueError(f"{key}: missing (needed by {name})")
        pts = _points(key, factor, inputs[key])
        numbers[f"points_{key}"] = float(pts)
        total += pts
    numbers["score"] = float(total)
    details: dict[str, str] = {"score_name": name}
    reasons = [f"{name}: " + ", ".join(f"{k} {inputs[k]!r} -> {numbers[f'points_{k}']:g}" for k in spec.factors)
               + f"; total {total.normalize():f}"]
    category = f"{total.normalize():f}"
    for cls in spec.classes:
        if cls.holds(total):
            category = str(cls.label)
            if isinstance(cls.label, int):
                numbers[spec.class_key] = float(cls.label)
            else:
                details[spec.class_key] = category
            median = cls.median_os_months
            if isinstance(median, dict):
                which = _category(inputs.get(spec.median_by or ""))
                median = next((v for k, v in median.items() if k.lower() == which), None)
            numbers["median_os_months_seed"] = None if median is None else float(median)
            reasons.append(f"{spec.class_key} {category}")
            break
    return Assessment(CRITERION, cite, category, numbers=numbers, details=details, reasons=tuple(reasons))


def rpa(params: PrognosticParams, kps: Value, age: Value, primary_controlled: bool,
        extracranial_mets: bool) -> Assessment:
    """RTOG RPA: I = KPS >= 70, age < 65, controlled primary, no extracranial metastases;
    III = KPS < 70; II = all others."""
    p = params.rpa_rtog
    k, a = _number("kps", kps), _number("age", age)
    young = a <= p.age_class1_max_exclusive if p.age_inclusive else a < p.age_class1_max_exclusive
    if k < p.kps_min:
        cls, why = "III", f"KPS {k} < {p.kps_min}"
    elif young and primary_controlled and not extracranial_mets:
        cls, why = "I", f"KPS {k} >= {p.kps_min}, age {a}, controlled primary, no extracranial metastases"
    else:
        cls, why = "II", f"KPS {k} >= {p.kps_min} but not all class I conditions"
    median = p.median_os_months.get(cls)
    return Assessment(CRITERION, p.citation.to_citation(), cls,
                      numbers={"median_os_months_seed": None if median is None else float(median)},
                      details={"score_name": "rpa_rtog", "class": cls}, reasons=(f"RPA class {cls}: {why}",))
