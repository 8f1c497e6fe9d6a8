"""How the commands print a number: 3 decimals (or as asked), 'n/a' when undefined; p-values."""

from __future__ import annotations

import math
from typing import Any


def number(value: Any, digits: int = 3) -> str:
    """A number for a table or a line, 'n/a' when undefined (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def p_value(value: Any) -> str:
    """A p-value: 4 decimals, scientific below 0.001, 'n/a' when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.4f}"
