"""GET /api/map (artsim.server.routes.maps): computed once, cached on disk, small on the wire."""

from __future__ import annotations

import json

import numpy as np
from fastapi.testclient import TestClient

from artsim.catalog import Catalog
from artsim.server.app import create_app
from tests.server_support import FakeCatalog


def test_map_is_computed_once_and_cached(client, real_catalog, monkeypatch):
    r = client.get("/api/map")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 14 and body["method"] == "pca"  # under 30 paintings: PCA
    assert sorted(body["ids"]) == sorted(Catalog.open(real_catalog).ids)
    xs, ys = np.array(body["x"]), np.array(body["y"])
    assert xs.min() >= 0 and xs.max() <= 1 and ys.min() >= 0 and ys.max() <= 1
    assert len(body["labels"]) == 14 and body["labels"][0]
    assert (real_catalog / "cache" / "map.json").is_file()

    import artsim.visualize.maps as maps

    def boom(*a, **k):
        raise AssertionError("layout recomputed although the cache is valid")

    monkeypatch.setattr(maps, "layout_2d", boom)
    with TestClient(create_app(real_catalog)) as fresh:
        again = fresh.get("/api/map").json()
    assert again["x"] == body["x"] and again["ids"] == body["ids"]


def test_map_of_5000_paintings(tmp_path):
    fake = FakeCatalog(tmp_path / "big", n=5000)
    with TestClient(create_app(fake.path, catalog=fake, map_method="pca")) as c:
        body = c.get("/api/map").json()
    assert body["count"] == 5000 and len(body["x"]) == 5000 and len(set(body["ids"])) == 5000
    assert len(json.dumps(body)) < 600_000  # parallel arrays keep the page's download small
