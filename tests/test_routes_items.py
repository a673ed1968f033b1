"""Browsing: /api/items, /api/items/{id} and thumbnails (artsim.server.routes.items)."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.server.app import create_app
from tests.server_support import FakeCatalog


def test_item_detail(client):
    r = client.get("/api/items/img3.jpg")
    assert r.status_code == 200
    body = r.json()
    assert (
        body["metadata"]["year"] == 1630 and body["title"] == "Study 3" and body["date"] == "1630"
    )
    assert body["faces"] is None and body["poses"] is None  # aspects absent
    assert "image" not in body


def test_items_listing(client):
    page = client.get("/api/items", params={"offset": 2, "limit": 5}).json()
    assert page["total"] == 14 and page["offset"] == 2 and len(page["items"]) == 5
    filtered = client.get("/api/items", params={"where": "artist==Carla Fresco"}).json()
    assert filtered["total"] == 4 and all(x["artist"] == "Carla Fresco" for x in filtered["items"])
    assert client.get("/api/items", params={"where": "nonsense"}).status_code == 400
    assert client.get("/api/items", params={"limit": 0}).status_code == 422


def test_thumbnails_cached_and_clamped(client, real_catalog):
    r = client.get("/api/items/img4.jpg/thumbnail", params={"size": 5})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(r.content)).size) == 32
    cached = list((real_catalog / "cache" / "thumbs" / "32").glob("*.jpg"))
    assert len(cached) == 1 and re.fullmatch(r"[0-9a-f]{64}\.jpg", cached[0].name)
    mtime = cached[0].stat().st_mtime_ns
    assert client.get("/api/items/img4.jpg/thumbnail", params={"size": 20}).content == r.content
    assert cached[0].stat().st_mtime_ns == mtime  # served from the cache
    big = client.get("/api/items/img4.jpg/thumbnail", params={"size": 10**9})
    assert big.status_code == 200 and max(Image.open(io.BytesIO(big.content)).size) <= 1024
    assert client.get("/api/items/img4.jpg/thumbnail", params={"size": "big"}).status_code == 422
    assert "max-age" in r.headers["cache-control"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/items/../../etc/passwd",
        "/api/items/..%2F..%2Fetc%2Fpasswd",
        "/api/items/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/items/%252e%252e%252fetc%252fpasswd",
        "/api/items/..%2F..%2Fetc%2Fpasswd/thumbnail",
        "/api/items/%2e%2e/%2e%2e/etc/passwd/thumbnail",
        "/api/items/%2Fetc%2Fpasswd/thumbnail",
        "/api/items//etc/passwd/thumbnail",
        "/api/items/..%5C..%5Cetc%5Cpasswd/thumbnail",
        "/api/items/img3.jpg%00/thumbnail",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_path_traversal_is_404(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "root:" not in r.text and r.headers["content-type"].startswith("application/json")
    assert "error" in r.json()


def test_thumbnail_of_missing_image_file(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=3)
    fake._items[fake.ids[0]] = {**fake._items[fake.ids[0]], "image": str(tmp_path / "gone.jpg")}
    with TestClient(create_app(fake.path, catalog=fake)) as c:
        r = c.get(f"/api/items/{fake.ids[0]}/thumbnail")
        assert r.status_code == 404 and "unavailable" in r.json()["error"]
        assert str(tmp_path) not in r.text


def test_item_detail_lists_faces_and_poses(fake_client, fake):
    body = fake_client.get(f"/api/items/{fake.ids[2]}").json()
    assert (
        len(body["faces"]) == 1
        and body["faces"][0]["id"] == f"{fake.ids[2]}#f0"
        and len(body["faces"][0]["box"]) == 4
    )
    assert len(body["poses"]) == 1 and len(body["poses"][0]["keypoints"]) == 33
