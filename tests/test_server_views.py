"""The JSON shapes the routes share (artsim.server.views): cards, results, rows, facets."""

from __future__ import annotations

from artsim.records import SearchResult
from artsim.server.views import aspect_rows, facets, item_card, result_json, thumb_url
from tests.server_support import FakeCatalog


def test_thumb_url_quotes_the_whole_id():
    assert thumb_url("img3.jpg") == "/api/items/img3.jpg/thumbnail"
    assert thumb_url("sub/a b?.jpg") == "/api/items/sub%2Fa%20b%3F.jpg/thumbnail"


def test_item_card_is_built_once_per_painting(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=3)
    cache: dict = {}
    card = item_card(fake, fake.ids[1], cache)
    assert card["id"] == fake.ids[1] and card["title"] == "Fake 1"
    assert card["width"] == 200 and card["height"] == 150
    assert card["thumbnail"] == thumb_url(fake.ids[1])
    fake._items[fake.ids[1]]["metadata"]["title"] = "changed"
    assert item_card(fake, fake.ids[1], cache) is card  # served from the cache
    assert item_card(fake, fake.ids[1])["title"] == "changed"  # no cache: read again


def test_result_json_never_sends_the_image_path(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=3)
    item = fake.item(fake.ids[0])
    r = SearchResult(fake.ids[0], 0.5, item["image"], item["metadata"], "global")
    out = result_json(fake, r)
    assert "image" not in out and out["id"] == fake.ids[0] and out["score"] == 0.5
    assert out["title"] == "Fake 0" and out["thumbnail"].startswith("/api/items/")
    assert "image" not in result_json(fake, {**r.to_dict()})  # dicts from worker processes too


def test_aspect_rows_leave_out_server_paths(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=3)
    fake._aspects["face"].info[0]["chip"] = "/srv/cat/cache/chips/a.jpg"
    rows = aspect_rows(fake, "face", fake.ids[0])
    assert [r["id"] for r in rows] == [f"{fake.ids[0]}#f0"]
    assert "chip" not in rows[0] and len(rows[0]["box"]) == 4


def test_facets_count_artists_and_span_years():
    meta = [
        {"artist": "B", "year": 1620},
        {"artist": ["A", "B"], "year": "1650", "year_end": 1655},
        {"artist": "", "year": "undated"},
        {},
    ]
    out = facets(meta)
    assert out["items"] == 4
    assert out["artists"] == [{"name": "B", "count": 2}, {"name": "A", "count": 1}]
    assert out["years"] == {"min": 1620, "max": 1655}
    assert facets([{"title": "x"}])["years"] is None
