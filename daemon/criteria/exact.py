"""Exact arithmetic for thresholds: 70.0 / 100.0 is exactly -30 %, never -29.999999.

Every input number is turned into a `Fraction` through its shortest decimal text, so
the worked cases' decimal values compare exactly with the rules files' thresholds.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

Number = int | float | Decimal | Fraction


def q(value: Number) -> Fraction:
    """The exact rational a decimal number denotes (28.1 -> 281/10, not the binary float)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def pct_change(value: Fraction, reference: Fraction) -> Fraction | None:
    """(value - reference) / reference x 100, or None when the reference is 0."""
    if reference == 0:
        return None
    return (value - reference) / reference * 100


def pct_of(value: Fraction, reference: Fraction) -> Fraction:
    """(value - reference) / reference x 100 for a reference already known to be non-zero."""
    return (value - reference) / reference * 100


def ratio(numerator: Fraction, denominator: Fraction) -> Fraction | None:
    """numerator / denominator, or None when the denominator is not positive."""
    if denominator <= 0:
        return None
    return numerator / denominator


def f(value: Fraction | None) -> float | None:
    """The float for reporting (None stays None)."""
    return None if value is None else float(value)


def fmt(value: Fraction | None, unit: str = "", places: int = 2) -> str:
    """A number for a reason sentence: at most `places` decimals, no trailing zeros."""
    if value is None:
        return "undefined"
    text = f"{float(value):.{places}f}".rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return f"{text}{unit}"
