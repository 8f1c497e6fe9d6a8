"""Undefined metric values: NaN plus a reason, announced with a warning class of our own.

An undefined value (no positive case for a grade, a single rater, constant ratings) is never an
exception and never a made-up number: it is NaN, the reason travels with the result, and an
``UndefinedMetricWarning`` is issued so that a caller who does not read the reason still hears
it. Functions returning a plain float return an ``UndefinedValue``: a float NaN that carries
its ``reason`` (``reason_of(x)`` reads it, ``None`` for a defined value); structured results
(``GradeAUC``, ICC tables, DeLong results) carry a ``reason`` field instead.
"""

from __future__ import annotations

import math
import warnings


class UndefinedMetricWarning(UserWarning):
    """A metric could not be computed on these data; the value is NaN and a reason is attached."""


class UndefinedValue(float):
    """A float NaN that remembers why the metric was undefined."""

    __slots__ = ("reason",)

    def __new__(cls, reason: str) -> "UndefinedValue":
        """Make a NaN carrying ``reason``."""
        value = super().__new__(cls, "nan")
        value.reason = reason
        return value

    def __reduce__(self) -> tuple:
        """Pickle (for caches) keeping the reason."""
        return (UndefinedValue, (self.reason,))

    def __repr__(self) -> str:
        """Show the reason next to the NaN."""
        return f"nan ({self.reason})"


def undefined(reason: str, stacklevel: int = 3) -> UndefinedValue:
    """Warn with ``reason`` and return a NaN carrying it, for one metric that cannot be computed."""
    warnings.warn(reason, UndefinedMetricWarning, stacklevel=stacklevel)
    return UndefinedValue(reason)


def reason_of(value: object) -> str | None:
    """The reason attached to an undefined value, a generic one for another NaN, else None."""
    if isinstance(value, UndefinedValue):
        return value.reason
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undefined"
    return None


def is_undefined(value: object) -> bool:
    """True for NaN (with or without a reason) and for None."""
    return value is None or (isinstance(value, float) and math.isnan(value))
