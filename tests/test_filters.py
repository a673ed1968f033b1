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
