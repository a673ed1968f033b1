from __future__ import annotations

import numpy as np
import pytest

from artsim.errors import ArtsimError
from artsim.search.filters import filter_mask, parse_where

META = [
    {"artist": "Rembrandt van Rijn", "year": 1650, "style": ["Baroque"], "school": ["Dutch"]},
    {"artist": "Johannes Vermeer", "year": 1660, "year_end": 1665, "style": ["Baroque"]},
    {"artist": "Fra Angelico", "year": 1430, "date": "c. 1430"},
    {"title": "Unknown"},
]


@pytest.mark.parametrize(
    ("clauses", "expected"),
    [
        (["artist=rembrandt"], [1, 0, 0, 0]),
        (["artist==johannes vermeer"], [0, 1, 0, 0]),
        (["artist!=rembrandt"], [0, 1, 1, 1]),
        (["style=baroque"], [1, 1, 0, 0]),
        (["year=1600..1655"], [1, 0, 0, 0]),
        (["year=1663..1700"], [0, 1, 0, 0]),  # overlaps 1660-1665
        (["year=..1500"], [0, 0, 1, 0]),
        (["year>=1650"], [1, 1, 0, 0]),
        (["year<1650"], [0, 0, 1, 0]),
        (["style=baroque", "year>1655"], [0, 1, 0, 0]),
        ("school=dutch;year=1600..1700", [1, 0, 0, 0]),
    ],
)
def test_filters(clauses, expected):
    mask = filter_mask(META, parse_where(clauses))
    assert mask.tolist() == [bool(x) for x in expected]


def test_no_filter_is_none():
    assert filter_mask(META, parse_where(None)) is None


@pytest.mark.parametrize("bad", ["artist", "=x", "year>=abc", "year=a..b", "artist="])
def test_bad_filters_are_user_errors(bad):
    with pytest.raises(ArtsimError, match="bad filter"):
        parse_where([bad])


def test_mask_dtype():
    assert filter_mask(META, parse_where(["year>0"])).dtype == np.bool_


def test_numbers_are_read_whole():
    # issue 16 item 7: '12abc' was accepted as 12 by the check, then float('12abc') failed
    for bad in ("year>=12abc", "year<1.5.2", "year=12abc..1650", "year=1600..16x0"):
        with pytest.raises(ArtsimError, match=r"bad filter .*is not a number"):
            parse_where([bad])
    assert filter_mask(META, parse_where(["year>=1650.0"])).tolist() == [True, True, False, False]


def test_ellipsis_is_text_not_a_range():
    # issue 16 item 12: 'title=Wait...' was read as the range 'Wait'..'.'
    meta = [{"title": "Wait... what?"}, {"title": "Waiting"}, {"title": "1600..1650"}]
    assert filter_mask(meta, parse_where(["title=Wait..."])).tolist() == [True, False, False]
    assert filter_mask(meta, parse_where(["title!=wait..."])).tolist() == [False, True, True]
    with pytest.raises(ArtsimError, match="at least one end"):
        parse_where(["year=.."])


def test_semicolons_split_only_before_a_condition():
    assert [str(c) for c in parse_where("artist==Puccio di Simone; Allegretto Nuzi")] == [
        "artist==Puccio di Simone; Allegretto Nuzi"
    ]
    assert [str(c) for c in parse_where(["artist=alice;year=1600..1650", "style=x ;"])] == [
        "artist=alice", "year=1600..1650", "style=x"]  # fmt: skip


def test_where_splitting_keeps_joined_names():
    from artsim.search.filters import split_where as _split_where

    assert _split_where(["artist==Puccio di Simone; Allegretto Nuzi"]) == [
        "artist==Puccio di Simone; Allegretto Nuzi"
    ]
    assert _split_where(["artist=alice;year=1600..1650", " style=baroque ; "]) == [
        "artist=alice", "year=1600..1650", "style=baroque"]  # fmt: skip


# ------------------------------------------------------------------ compiled filters
# fields_mask (pyarrow compute over typed columns) must answer as filter_mask (the reference,
# one Python call per row) on any metadata and any condition.
import json  # noqa: E402
import random  # noqa: E402

import pyarrow as pa  # noqa: E402

from artsim.catalog.metadata import FIELDS_MARK, FieldColumns, LazyMetadata, typed_columns  # noqa: E402
from artsim.search.filters import FilterError, fields_mask  # noqa: E402

WORDS = ["Rembrandt", "van", "Rijn", "VERMEER", "Baroque", "Dutch", "Åsa", "Straße", "İznik", ""]
KEYS = ["artist", "year", "year_end", "style", "school", "title", "date", "Artist"]


def _random_value(rng: random.Random):
    kind = rng.randrange(11)
    if kind == 0:
        return None
    if kind == 1:
        return rng.randint(-50, 2000)
    if kind == 2:
        return rng.choice([1650.5, -12.25, float("nan"), 1e20, 0.0])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return [
            _random_value(rng) if rng.random() < 0.3 else rng.choice(WORDS)
            for _ in range(rng.randrange(4))
        ]
    if kind == 5:
        return {"nested": rng.choice(WORDS)}
    if kind == 6:
        return rng.choice(["1650-1660", "c. 1650", " 1700", "12abc", "-20", "+5", "1.5.6"])
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 4)))


def _random_meta(rng: random.Random) -> dict:
    return {k: _random_value(rng) for k in KEYS if rng.random() < 0.6}


def _random_condition(rng: random.Random) -> str:
    field = rng.choice(
        ["artist", "year", "style", "school", "title", "date", "missing", "year_end"]
    )
    op = rng.choice(["=", "==", "!=", ">", "<", ">=", "<="])
    if op in (">", "<", ">=", "<="):
        return f"{field}{op}{rng.choice(['1650', '-20', '12.5', '0', '1e3'])}"
    kind = rng.randrange(4)
    if kind == 0:
        lo, hi = rng.choice(["", "1600", "-10"]), rng.choice(["", "1700", "1650.5"])
        return f"{field}{op}{lo}..{hi}"
    if kind == 1:
        return f"{field}{op}{rng.choice(['1650', 'true', 'none', 'nested', 'Wait...'])}"
    word = rng.choice([w for w in WORDS if w])
    return f"{field}{op}{word[: rng.randint(1, len(word))].upper() if rng.random() < 0.3 else word}"


def _fields(texts: list[str], typed_rows: set[int] | None = None) -> FieldColumns:
    """FieldColumns over in-memory rows; rows outside `typed_rows` lack typed columns (as in a
    part written before they existed) and are read from the JSON."""
    table = pa.table(typed_columns(texts)) if texts else pa.table({})
    if typed_rows is not None:
        mark = [i in typed_rows for i in range(len(texts))]
        table = table.set_column(
            0, FIELDS_MARK, pa.array([True if m else None for m in mark], pa.bool_())
        )

    def load(columns: list[str]) -> pa.Table:
        present = [c for c in columns if c in table.column_names]
        return table.select(present) if present else pa.table({"x": pa.nulls(len(texts))})

    return FieldColumns(LazyMetadata(pa.array(texts, pa.string())), load)


@pytest.mark.parametrize("seed", range(8))
def test_compiled_filters_match_the_reference(seed):
    rng = random.Random(seed)
    metas = [_random_meta(rng) for _ in range(300)]
    texts = [json.dumps(m) for m in metas]
    parsed = [json.loads(t) for t in texts]  # the reference sees what a reader of the JSON sees
    typed = _fields(texts)
    mixed = _fields(texts, typed_rows={i for i in range(len(texts)) if rng.random() < 0.5})
    untyped = FieldColumns(LazyMetadata(pa.array(texts)), None)
    checked = 0
    for _ in range(150):
        clauses = [_random_condition(rng) for _ in range(rng.randint(1, 3))]
        try:
            conds = parse_where(clauses)
        except FilterError:
            continue
        want = filter_mask(parsed, conds)
        for fields in (typed, mixed, untyped):
            got = fields_mask(fields, conds)
            assert got is not None and want is not None
            assert got.tolist() == want.tolist(), clauses
        checked += 1
    assert checked > 50


def test_compiled_filters_on_the_examples():
    texts = [json.dumps(m) for m in META]
    for clauses in (["artist=rembrandt"], ["style=baroque", "year>1655"], "year=1663..1700"):
        conds = parse_where(clauses)
        assert fields_mask(_fields(texts), conds).tolist() == filter_mask(META, conds).tolist()
    assert fields_mask(_fields(texts), parse_where(None)) is None


def test_a_repeated_filter_is_computed_once_and_not_shared_for_writing():
    texts = [json.dumps(m) for m in META]
    fields = _fields(texts)
    calls = []
    real_number = fields.number

    def counting(key):
        calls.append(key)
        return real_number(key)

    fields.number = counting  # type: ignore[method-assign]
    first = fields_mask(fields, parse_where("year>=1650"))
    first[:] = False  # the caller's copy: the cached mask is not changed
    again = fields_mask(fields, parse_where("year>=1650"))
    assert again.tolist() == [True, True, False, False]
    assert calls == ["year"]  # the column was read and the mask computed once


def test_an_empty_catalog_filters_to_an_empty_mask():
    fields = FieldColumns(LazyMetadata(pa.array([], pa.string())), None)
    assert fields_mask(fields, parse_where("artist=x")).tolist() == []
    assert fields_mask(fields, parse_where("year=1..2")).tolist() == []
