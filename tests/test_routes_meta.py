"""The page, /healthz, /api/info and /api/facets (artsim.server.routes.meta)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from artsim.server.app import create_app
from tests.server_support import FakeCatalog


def test_healthz_info_facets(client):
    assert client.get("/healthz").json() == {"status": "ok", "items": 14}
    info = client.get("/api/info").json()
    assert (
        info["items"] == 14
        and info["aspects"] == ["global", "local"]  # a new catalog's default
        and info["search_aspects"] == ["global"]
    )
    assert info["limits"]["max_upload_bytes"] == 20_000_000
    assert "path" not in info and "/" not in info["name"]  # no server folders
    facets = client.get("/api/facets").json()
    assert {a["name"]: a["count"] for a in facets["artists"]} == {
        "Alice Painter": 5,
        "Bob Limner": 5,
        "Carla Fresco": 4,
    }
    assert facets["years"] == {"min": 1600, "max": 1730}


def test_page_and_static_files_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200
        assert not re.search(r"https?://", r.text), f"{asset} refers to another site"
    assert not re.search(r"(src|href)=\"https?://", page.text)
    assert client.head("/").status_code == 200


def test_aspect_missing_in_fake(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=5)
    fake.aspects = ["global", "pose"]
    with TestClient(create_app(fake.path, catalog=fake)) as c:
        assert c.get("/api/info").json()["search_aspects"] == ["global", "pose", "fused"]
        r = c.get("/api/search", params={"id": fake.ids[0], "aspect": "face"})
        assert r.status_code == 404 and "no 'face' aspect" in r.json()["error"]
        assert c.get(f"/api/items/{fake.ids[0]}").json()["faces"] is None
