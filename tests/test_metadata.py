"""LazyMetadata: a sequence of dicts parsed on access from the items' JSON column."""

from __future__ import annotations

import pyarrow as pa
import pytest

from artsim.catalog.metadata import LazyMetadata
from artsim.search.filters import filter_mask, parse_where


def test_parses_on_access_and_behaves_like_a_list():
    col = pa.chunked_array(
        [['{"artist": "Rembrandt", "year": 1650}', ""], [None, '{"year": 1700}']]
    )
    meta = LazyMetadata(col)
    assert len(meta) == 4 and meta._parsed == {}
    assert meta[0] == {"artist": "Rembrandt", "year": 1650}
    assert list(meta._parsed) == [0]  # only what was asked for
    assert meta[1] == {} and meta[2] == {} and meta[-1] == {"year": 1700}
    assert meta[1:3] == [{}, {}]
    assert list(meta) == [{"artist": "Rembrandt", "year": 1650}, {}, {}, {"year": 1700}]
    with pytest.raises(IndexError):
        meta[4]
    assert meta.arrow.to_pylist()[0].startswith("{")


def test_filters_see_the_same_rows():
    rows = ['{"artist": "Rembrandt", "year": 1650}', '{"artist": "Vermeer", "year": 1665}', ""]
    mask = filter_mask(LazyMetadata(pa.array(rows)), parse_where(["year=1640..1660"]))
    assert mask.tolist() == [True, False, False]
