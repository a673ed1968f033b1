"""A CSV manifest of http(s) image URLs, and URL queries, against a real local server."""

from __future__ import annotations

import pytest

from artsim.catalog import Catalog
from artsim.errors import ArtsimError
from tests.test_iiif import IIIFServer, server  # noqa: F401  (fixture)

OIDS = ["1128", "12208", "1115"]


def test_csv_of_urls_is_fetched_cached_and_indexed(server: IIIFServer, tmp_path):  # noqa: F811
    rows = ["id,image,title"] + [
        f'p{oid},"{server.url("ok", oid, 300)}",Painting {oid}' for oid in OIDS
    ]
    rows.append(f'bad,"{server.url("ok", "nope", 300)}",Missing')  # 404 page: listed, not fatal
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    cat = Catalog.create(tmp_path / "cat")
    summary = cat.add(tmp_path / "m.csv")
    assert summary.added == 3 and summary.failed == 1
    item = cat.item("p1128")
    assert item["image"].startswith(str(tmp_path / "cat" / "cache"))
    assert item["metadata"]["image_url"].startswith(server.base)
    assert item["metadata"]["title"] == "Painting 1128"
    assert "nope" in (tmp_path / "cat" / "failures.csv").read_text()
    # a second run fetches nothing again
    before = sum(server.counts.values())
    assert Catalog.open(tmp_path / "cat").add(tmp_path / "m.csv").added == 0
    assert sum(server.counts.values()) - before == 1  # only the failed URL is retried
    # query by URL
    hits = cat.search(server.url("ok", "12208", 300), k=2)
    assert hits[0].id == "p12208" and hits[0].score > 0.98


def test_bad_url_query_is_a_clear_error(server: IIIFServer, tmp_path):  # noqa: F811
    (tmp_path / "m.csv").write_text(f'id,image\na,"{server.url("ok", "1128", 200)}"\n')
    cat = Catalog.create(tmp_path / "cat")
    cat.add(tmp_path / "m.csv")
    with pytest.raises(ArtsimError):
        cat.search(server.url("html", "1128", 200))
