"""Metadata filters (`--where`), evaluated to a boolean mask *before* the nearest-neighbour
search, so that k results come back whenever k items match.

Syntax, one condition per --where (all must hold):
  artist=rembrandt        case-insensitive substring; on list fields (style, school...) any element
  artist==Rembrandt van Rijn   exact (case-insensitive)
  artist!=rembrandt       substring must not occur
  year=1600..1650         the painting's [year, year_end] overlaps the range (either end may be open)
  year>=1600, year<1700   numeric comparisons
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from artsim.errors import ArtsimError

_COND = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|>=|<=|=|>|<)\s*(.*?)\s*$")
RANGE_FIELDS_END = {"year": "year_end"}


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"


def parse_where(clauses: Sequence[str] | str | None) -> list[Condition]:
    if not clauses:
        return []
    if isinstance(clauses, str):
        clauses = [c for c in clauses.split(";") if c.strip()]
    out = []
    for clause in clauses:
        m = _COND.match(clause)
        if not m or not m.group(3):
            raise ArtsimError(
                f"bad filter {clause!r}: expected FIELD=VALUE, FIELD>=N or FIELD=LOW..HIGH "
                "(e.g. artist=rembrandt, year=1600..1650)"
            )
        cond = Condition(m.group(1).lower(), m.group(2), m.group(3))
        if cond.op in (">", "<", ">=", "<=") or ".." in cond.value:
            _check_numeric(cond)
        out.append(cond)
    return out


def _check_numeric(cond: Condition) -> None:
    parts = cond.value.split("..") if ".." in cond.value else [cond.value]
    for p in parts:
        if p.strip() and _to_float(p) is None:
            raise ArtsimError(f"bad filter {cond}: {p!r} is not a number")


def _to_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    m = re.match(r"^\s*(-?\d+(?:\.\d+)?)", str(value))
    return float(m.group(1)) if m else None


def _values(meta: dict[str, Any], field: str) -> list[str]:
    v = meta.get(field)
    if v is None:
        return []
    if isinstance(v, list | tuple):
        return [str(x) for x in v]
    return [str(v)]


def _match(meta: dict[str, Any], cond: Condition) -> bool:
    if ".." in cond.value:
        lo_s, hi_s = cond.value.split("..", 1)
        lo = _to_float(lo_s) if lo_s.strip() else -np.inf
        hi = _to_float(hi_s) if hi_s.strip() else np.inf
        start = _to_float(meta.get(cond.field))
        if start is None:
            return False
        end = _to_float(meta.get(RANGE_FIELDS_END.get(cond.field, "")))
        end = start if end is None else end
        match = start <= hi and end >= lo
        return not match if cond.op == "!=" else match
    if cond.op in (">", "<", ">=", "<="):
        x = _to_float(meta.get(cond.field))
        if x is None:
            return False
        y = float(cond.value)
        return {">": x > y, "<": x < y, ">=": x >= y, "<=": x <= y}[cond.op]
    needle = cond.value.lower()
    values = [v.lower() for v in _values(meta, cond.field)]
    if cond.op == "==":
        return needle in values
    found = any(needle in v for v in values)
    return not found if cond.op == "!=" else found


def filter_mask(
    metadata: Sequence[dict[str, Any]], conditions: Sequence[Condition]
) -> np.ndarray | None:
    """Boolean mask over items; None when there are no conditions (everything passes)."""
    if not conditions:
        return None
    return np.fromiter(
        (all(_match(meta, c) for c in conditions) for meta in metadata),
        dtype=bool,
        count=len(metadata),
    )
