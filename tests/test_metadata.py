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


# ------------------------------------------------------------------ typed field columns
import json  # noqa: E402

from artsim.catalog import Catalog, store  # noqa: E402
from artsim.catalog.metadata import FIELDS_MARK, typed_columns  # noqa: E402
from artsim.search.filters import fields_mask  # noqa: E402


def test_typed_columns_hold_what_filters_compare():
    cols = typed_columns(
        ['{"style": ["Baroque", "Tenebrism"], "year": "1650-1660", "flag": true}', "", "{}"]
    )
    assert cols[FIELDS_MARK].to_pylist() == [True, True, True]
    assert cols["text:style"].to_pylist() == [["baroque", "tenebrism"], None, None]
    assert cols["num:year"].to_pylist() == [1650.0, None, None]
    assert cols["num:flag"].to_pylist() == [None, None, None]  # a boolean is not a number
    assert cols["text:flag"].to_pylist() == [["true"], None, None]


def _items(ids, metas, typed):
    texts = [json.dumps(m) for m in metas]
    extra = typed_columns(texts) if typed else {}
    return pa.table(
        {
            "id": ids,
            "image": [f"{i}.jpg" for i in ids],
            "width": pa.array([10] * len(ids), pa.int32()),
            "height": pa.array([10] * len(ids), pa.int32()),
            "metadata": texts,
            **extra,
        }
    )


def _catalog(tmp_path):
    path = tmp_path / "cat"
    store.atomic_write_json(
        path / "manifest.json",
        {"format_version": 1, "model": {"name": "m", "dim": 4}, "aspects": {}, "counts": {}},
    )
    # an old part (no typed columns), a new one, and a re-written row that overrides the first
    metas = [{"artist": "Rembrandt", "year": 1650}, {"artist": "Vermeer", "year": 1665}]
    store.atomic_write_table(
        path / "items" / "part-000001.parquet", _items(["a", "b"], metas, False)
    )
    metas2 = [{"artist": "Hals", "style": ["Baroque"], "year": 1640}, {"artist": "Rembrandt"}]
    store.atomic_write_table(
        path / "items" / "part-000002.parquet", _items(["c", "a"], metas2, True)
    )
    return path


@pytest.mark.parametrize(
    "where",
    ["artist=rembrandt", "year=1600..1660", "year>1600", "style==baroque", "artist!=hals"],
)
def test_catalog_filters_mix_old_and_new_parts(tmp_path, where):
    cat = Catalog.open(_catalog(tmp_path))
    assert cat.ids == ["b", "c", "a"]
    want = filter_mask([cat.metadata(i) for i in cat.ids], parse_where(where))
    assert fields_mask(cat.fields, parse_where(where)).tolist() == want.tolist()


def test_opening_reads_no_typed_column(tmp_path, monkeypatch):
    path = _catalog(tmp_path)
    seen = []
    real = store.read_part

    def spy(p, columns=None):
        seen.append(columns)
        return real(p, columns)

    monkeypatch.setattr(store, "read_part", spy)
    cat = Catalog.open(path)
    assert seen and all(c is not None and not any(":" in x for x in c) for c in seen)
    fields_mask(cat.fields, parse_where("year>1600"))
    assert any(c and "num:year" in c for c in seen)  # read when a filter first names it


def test_parts_merged_away_after_opening_fall_back_to_the_json(tmp_path):
    path = _catalog(tmp_path)
    cat = Catalog.open(path)
    want = filter_mask([cat.metadata(i) for i in cat.ids], parse_where("year<1660")).tolist()
    # a writer merges both parts into a new one after this reader opened the catalog
    store.compact_parts(path / "items", key="id", max_parts=0)
    assert [p.name for p in store.list_parts(path / "items")] == ["part-000003.parquet"]
    assert fields_mask(cat.fields, parse_where("year<1660")).tolist() == want
