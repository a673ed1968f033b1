"""Painting metadata: the items' Arrow column of JSON strings, parsed on access, and typed
columns of the fields that `--where` filters read, so that a filter never parses JSON.

Opening a catalog used to parse every painting's metadata into a dict: 19 s of a 1M-row
catalog's opening (bench_million). `LazyMetadata` is a read-only sequence of dicts over the
column: `catalog.metadata(id)` parses one row.

Filters read `FieldColumns` instead. Each items part is written with, per metadata key,
`text:KEY` (the values as lower-cased strings, a list per row: list fields such as style
hold several) and `num:KEY` (the value as a number, or null), computed from the very JSON
stored beside them by the same two functions the filter semantics are defined with
(`field_texts`, `field_number`), plus a `fields` marker column. Only the columns a filter
names are read, once per open catalog. Rows of parts written before these columns existed
(or by a tool that does not write them) have no marker: their fields are computed from the
JSON, which is slow at a million rows but gives the same answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIELDS_MARK = "fields"  # true in rows written with typed field columns
TEXT_PREFIX = "text:"
NUMBER_PREFIX = "num:"
MAX_CACHED_MASKS = 64
_LEADING_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def field_texts(meta: dict[str, Any], key: str) -> list[str]:
    """A field's values as text, as a text filter compares them (a list field gives each
    element; missing or null gives none)."""
    v = meta.get(key)
    if v is None:
        return []
    if isinstance(v, list | tuple):
        return [str(x) for x in v]
    return [str(v)]


def field_number(value: Any) -> float | None:
    """A field's value as a number, as a numeric filter reads it: numbers as they are, text by
    its leading number ('1650-1660' is 1650; 'c. 1650' is none); booleans are not numbers."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    m = _LEADING_NUMBER.match(str(value))
    return float(m.group(1)) if m else None


def text_column(key: str) -> str:
    return TEXT_PREFIX + key


def number_column(key: str) -> str:
    return NUMBER_PREFIX + key


def typed_columns(texts: Sequence[str]) -> dict[str, pa.Array]:
    """The typed field columns of a batch of metadata JSON strings (written beside them in an
    items part). Computed from the JSON itself, so a value json.dumps changed (a tuple, a
    numpy int written as text) is typed as a reader of the JSON sees it."""
    metas = [json.loads(t) if t else {} for t in texts]
    keys = sorted({k for m in metas for k in m})
    out: dict[str, pa.Array] = {FIELDS_MARK: pa.array([True] * len(metas), pa.bool_())}
    for key in keys:
        out[text_column(key)] = _texts_array(metas, key)
        out[number_column(key)] = _numbers_array(metas, key)
    return out


def _texts_array(metas: Sequence[dict[str, Any]], key: str) -> pa.Array:
    return pa.array(
        [[s.lower() for s in field_texts(m, key)] if key in m else None for m in metas],
        pa.list_(pa.string()),
    )


def _numbers_array(metas: Sequence[dict[str, Any]], key: str) -> pa.Array:
    return pa.array([field_number(m.get(key)) for m in metas], pa.float64())


class LazyMetadata(Sequence[dict[str, Any]]):
    """Sequence[dict] over an Arrow string column of JSON objects ('' or null: {})."""

    __slots__ = ("_column", "_parsed")

    def __init__(self, column: pa.ChunkedArray | pa.Array) -> None:
        self._column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        self._parsed: dict[int, dict[str, Any]] = {}

    @property
    def arrow(self) -> pa.Array:
        """The JSON strings, for vectorised filters (pyarrow compute, DuckDB)."""
        return self._column

    def __len__(self) -> int:
        return len(self._column)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self._column)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        meta = self._parsed.get(i)
        if meta is None:
            text = self._column[i].as_py()
            meta = json.loads(text) if text else {}
            self._parsed[i] = meta
        return meta

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # one to_pylist beats a million Arrow scalars (8 s against 13 s at 1M rows)
        parsed = self._parsed
        for i, text in enumerate(self._column.to_pylist()):
            meta = parsed.get(i)
            if meta is None:
                meta = parsed[i] = json.loads(text) if text else {}
            yield meta


# reads the named typed columns (and the marker) aligned with the catalog's rows; None when
# they cannot be read (a part merged away since the catalog was opened): the JSON decides
ColumnLoader = Callable[[list[str]], pa.Table | None]


class FieldColumns:
    """The typed fields of an open catalog's items, read one field at a time when a filter
    first names it and kept (with the masks filters computed from them) while it is open."""

    def __init__(self, metadata: LazyMetadata, load: ColumnLoader | None) -> None:
        self._metadata = metadata
        self._load = load
        self._texts: dict[str, tuple[pa.Array, np.ndarray, np.ndarray]] = {}
        self._numbers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._spans: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._masks: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._metadata)

    def text(self, key: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """Every row's lower-cased values of `key`, flattened and dictionary-encoded (a
        filter compares each distinct value once: artists, styles and schools repeat):
        (the distinct values; each value's index among them; the row of each value)."""
        got = self._texts.get(key)
        if got is None:
            col = self._column(text_column(key), pa.list_(pa.string()))
            encoded = pc.dictionary_encode(pc.list_flatten(col))
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            rows = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
            got = (encoded.dictionary, codes, rows.astype(np.int64, copy=False))
            self._texts[key] = got
        return got

    def number(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(every row's `key` as float64, NaN where none; whether the row has a number)."""
        got = self._numbers.get(key)
        if got is None:
            col = self._column(number_column(key), pa.float64())
            valid = col.is_valid().to_numpy(zero_copy_only=False)
            values = col.fill_null(np.nan).to_numpy(zero_copy_only=False)
            got = self._numbers[key] = (values, valid)
        return got

    def span(self, key: str, end_key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, end, has start) of a range field such as year..year_end: NaN where there
        is no start, the end falling back to the start; made once, so a new range costs
        two comparisons over the rows."""
        got = self._spans.get((key, end_key))
        if got is None:
            start, has_start = self.number(key)
            end, has_end = self.number(end_key)
            got = (start, np.where(has_end, end, start), has_start)
            self._spans[(key, end_key)] = got
        return got

    def cached_mask(self, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        """A filter's mask, computed once per open catalog (read-only: callers copy)."""
        mask = self._masks.get(key)
        if mask is None:
            mask = make()
            mask.flags.writeable = False
            if len(self._masks) >= MAX_CACHED_MASKS:
                self._masks.pop(next(iter(self._masks)))
            self._masks[key] = mask
        return mask

    def _column(self, name: str, typ: pa.DataType) -> pa.Array:
        n = len(self._metadata)
        table = self._load([FIELDS_MARK, name]) if self._load is not None else None
        if table is None or table.num_rows != n:
            return self._from_json(name, typ, np.arange(n), pa.nulls(n, typ))
        col = (
            table.column(name).combine_chunks().cast(typ)
            if name in table.column_names
            else pa.nulls(n, typ)
        )
        mark = (
            table.column(FIELDS_MARK).combine_chunks()
            if FIELDS_MARK in table.column_names
            else pa.nulls(n, pa.bool_())
        )
        untyped = np.flatnonzero(~pc.fill_null(mark, False).to_numpy(zero_copy_only=False))
        return self._from_json(name, typ, untyped, col) if untyped.size else col

    def _from_json(self, name: str, typ: pa.DataType, rows: np.ndarray, col: pa.Array) -> pa.Array:
        """`col` with `rows` computed from the JSON (rows written without typed columns)."""
        texts = self._metadata.arrow.take(pa.array(rows, pa.int64())).to_pylist()
        metas = [json.loads(t) if t else {} for t in texts]
        if name.startswith(TEXT_PREFIX):
            fixed = _texts_array(metas, name[len(TEXT_PREFIX) :])
        else:
            fixed = _numbers_array(metas, name[len(NUMBER_PREFIX) :])
        if rows.size == len(col):
            return fixed.cast(typ)
        # scatter: the typed rows as read, the others from the JSON
        values = col.to_pylist()
        for r, v in zip(rows.tolist(), fixed.to_pylist(), strict=True):
            values[r] = v
        return pa.array(values, typ)
