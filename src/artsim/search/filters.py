"""Metadata filters (`--where`), evaluated to a boolean mask *before* the nearest-neighbour
search, so that k results come back whenever k items match.

Syntax, one condition per --where (all must hold):
  artist=rembrandt        case-insensitive substring; on list fields (style, school...) any element
  artist==Rembrandt van Rijn   exact (case-insensitive)
  artist!=rembrandt       substring must not occur
  year=1600..1650         the painting's [year, year_end] overlaps the range (either end may be open)
  year>=1600, year<1700   numeric comparisons
A value is a range only with exactly one ".." and no "..." (so `title=Wait...` is text), and
numbers are read whole (`year>=12abc` is an error, not 12). Several conditions may share one
string separated by ";" (a ";" not followed by FIELD<op> stays in the value: "artist==A; B").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow.compute as pc

from artsim.catalog.metadata import FieldColumns, field_number, field_texts
from artsim.errors import ArtsimError

_COND = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|>=|<=|=|>|<)\s*(.*?)\s*$")
# a ';' starts a new condition only when FIELD<op> follows: "artist==A; B" keeps NGA's joined names
_SPLIT = re.compile(r";\s*(?=[A-Za-z_][\w.]*\s*(?:==|!=|>=|<=|=|>|<))")
_NUMBER = re.compile(r"^\s*[-+]?\d+(?:\.\d+)?\s*$")
RANGE_FIELDS_END = {"year": "year_end"}
COMPARISONS = (">", "<", ">=", "<=")


class FilterError(ArtsimError):
    """A --where / where= condition that cannot be read; the message names it."""


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"

    @property
    def is_range(self) -> bool:
        return is_range(self.value) and self.op not in COMPARISONS


def is_range(value: str) -> bool:
    """LOW..HIGH: exactly one '..' and no ellipsis ('Wait...' is text, not a range)."""
    return value.count("..") == 1 and "..." not in value


def split_where(clauses: Sequence[str] | str | None) -> list[str]:
    """Conditions one per item: each string may hold several separated by ';'."""
    if not clauses:
        return []
    if isinstance(clauses, str):
        clauses = [clauses]
    parts = (part.strip(" \t;") for clause in clauses for part in _SPLIT.split(str(clause)))
    return [p for p in parts if p]


def parse_where(clauses: Sequence[str] | str | None) -> list[Condition]:
    """Conditions from --where / where= strings; FilterError (an ArtsimError) naming the bad one."""
    out = []
    for clause in split_where(clauses):
        m = _COND.match(clause)
        if not m or not m.group(3):
            raise FilterError(
                f"bad filter {clause!r}: expected FIELD=VALUE, FIELD>=N or FIELD=LOW..HIGH "
                "(e.g. artist=rembrandt, year=1600..1650)"
            )
        cond = Condition(m.group(1).lower(), m.group(2), m.group(3))
        if cond.op in COMPARISONS or cond.is_range:
            _check_numeric(cond)
        out.append(cond)
    return out


def _check_numeric(cond: Condition) -> None:
    parts = cond.value.split("..") if cond.is_range else [cond.value]
    if cond.is_range and not any(p.strip() for p in parts):
        raise FilterError(f"bad filter {str(cond)!r}: give at least one end of the range")
    for p in parts:
        if (p.strip() or not cond.is_range) and _number(p) is None:
            raise FilterError(f"bad filter {str(cond)!r}: {p.strip()!r} is not a number")


def _number(text: str) -> float | None:
    """A whole number as typed in a filter ('1650', '-20', '12.5'); None for '12abc'."""
    return float(text) if _NUMBER.match(text) else None


_to_float = field_number  # the reference semantics live with the typed columns they define
_values = field_texts


def _match(meta: dict[str, Any], cond: Condition) -> bool:
    if cond.is_range:
        lo_s, hi_s = cond.value.split("..", 1)
        lo = _number(lo_s) if lo_s.strip() else -np.inf
        hi = _number(hi_s) if hi_s.strip() else np.inf
        if lo is None or hi is None:
            return False
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
        y = _number(cond.value)
        if y is None:
            return False
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
    """Boolean mask over items given as dicts, one Python call per row and condition: the
    reference semantics (tests compare `fields_mask` with it) and the path for a few dicts
    in memory. A catalog is filtered by `fields_mask`."""
    if not conditions:
        return None
    return np.fromiter(
        (all(_match(meta, c) for c in conditions) for meta in metadata),
        dtype=bool,
        count=len(metadata),
    )


def fields_mask(fields: FieldColumns, conditions: Sequence[Condition]) -> np.ndarray | None:
    """Boolean mask over a catalog's items (`Catalog.fields`), computed with pyarrow compute
    and numpy over typed columns: the same answers as `filter_mask` on the parsed metadata,
    without a Python call per row. Each condition's mask is kept while the catalog is open,
    so a repeated filter costs one AND. None when there are no conditions."""
    if not conditions:
        return None
    mask: np.ndarray | None = None
    for cond in conditions:
        key = f"{cond.field}\0{cond.op}\0{cond.value}"
        m = fields.cached_mask(key, partial(_compiled, fields, cond))
        mask = m.copy() if mask is None else mask & m
    return mask


def _compiled(fields: FieldColumns, cond: Condition) -> np.ndarray:
    n = len(fields)
    if cond.is_range:
        lo_s, hi_s = cond.value.split("..", 1)
        lo = _number(lo_s) if lo_s.strip() else -np.inf
        hi = _number(hi_s) if hi_s.strip() else np.inf
        if lo is None or hi is None:
            return np.zeros(n, dtype=bool)
        start, end, has_start = fields.span(cond.field, RANGE_FIELDS_END.get(cond.field, ""))
        with np.errstate(invalid="ignore"):  # NaN (no start) compares false: no match
            match = start <= hi
            match &= end >= lo
        return has_start & ~match if cond.op == "!=" else match
    if cond.op in COMPARISONS:
        x, has = fields.number(cond.field)
        y = _number(cond.value)
        if y is None:
            return np.zeros(n, dtype=bool)
        op = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal}
        with np.errstate(invalid="ignore"):
            return has & op[cond.op](x, y)
    values, codes, rows = fields.text(cond.field)
    needle = cond.value.lower()
    hit = pc.equal(values, needle) if cond.op == "==" else pc.match_substring(values, needle)
    hit_np = hit.to_numpy(zero_copy_only=False) if len(values) else np.zeros(0, dtype=bool)
    found = np.zeros(n, dtype=bool)
    found[rows[hit_np[codes]]] = True
    return ~found if cond.op == "!=" else found
