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
