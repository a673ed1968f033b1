"""The HTTP API: every route, every refusal (size, type, pixels, paths, URLs), CORS and errors.

Two catalogs: a real one of 14 generated images (global aspect only; uploads run the real
encoder), and FakeCatalog, an in-memory stand-in with face and pose rows, used for the aspects
the real test catalog lacks and for a 5,000-painting map (also imported by test_browser.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.catalog import AspectData, Catalog
from artsim.errors import ArtsimError, ImageLoadError
from artsim.records import SearchResult, SourceItem
from artsim.server.app import create_app
from tests.images_factory import gradient, write_awkward_set

ARTISTS = ["Alice Painter", "Bob Limner", "Carla Fresco"]


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def real_catalog(tmp_path_factory) -> Path:
    """14 generated paintings with metadata; two ids contain '/'."""
    root = tmp_path_factory.mktemp("server")
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    items = []
    for i in range(14):
        path = src / ("sub" if i < 2 else "") / f"img{i}.jpg"
        gradient(160 + 8 * i, 120, seed=i).save(path, quality=90)
        item_id = f"sub/img{i}.jpg" if i < 2 else f"img{i}.jpg"
        meta = {"title": f"Study {i}", "artist": ARTISTS[i % 3], "year": 1600 + 10 * i}
        items.append(SourceItem(item_id, str(path), meta))
    cat = Catalog.create(root / "cat")
    cat.add(items)
    return root / "cat"


def _upload_workers() -> list:
    import psutil

    return [
        p for p in psutil.Process().children(recursive=True)
        if "spawn_main" in " ".join(p.cmdline())
    ]  # fmt: skip


@pytest.fixture(scope="module")
def client(real_catalog) -> TestClient:
    # answer_within: the shared 2-core test machine can take seconds per upload; the time
    # limit itself is tested on the executor (test_an_upload_that_takes_too_long_is_503)
    with TestClient(create_app(real_catalog, upload_answer_within=120)) as c:
        yield c
    # uploads were analysed in a worker subprocess, which stops with the app
    assert not [p for p in _upload_workers() if p.is_running() and p.status() != "zombie"]


def jpeg_bytes(w: int = 120, h: int = 90, seed: int = 3) -> bytes:
    buf = io.BytesIO()
    gradient(w, h, seed=seed).save(buf, "JPEG", quality=90)
    return buf.getvalue()


class FakeCatalog:
    """The part of Catalog the server uses, in memory: n paintings with one face and one figure
    each, results computed from vectors. Records the options each search received."""

    def __init__(
        self,
        path: Path,
        n: int = 40,
        images: list[Path] | None = None,
        dim: int = 16,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.model_name = "fake"
        if images is None:
            images = []
            for i in range(4):
                p = self.path / f"fake{i}.jpg"
                gradient(200, 150, seed=100 + i).save(p, quality=90)
                images.append(p)
        self._ids = [f"fake/{i:05d}" for i in range(n)]
        self._pos = {i: n for n, i in enumerate(self._ids)}
        self._items = {}
        for k, item_id in enumerate(self._ids):
            img = images[k % len(images)]
            with Image.open(img) as im:
                w, h = im.size
            meta = {"title": f"Fake {k}", "artist": ARTISTS[k % 3], "year": 1500 + (k % 300)}
            self._items[item_id] = {
                "id": item_id,
                "image": str(img),
                "width": w,
                "height": h,
                "metadata": meta,
            }
        vec = rng.normal(size=(n, dim)).astype(np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        self._aspects = {
            "global": AspectData(
                "global",
                "fake",
                list(self._ids),
                list(self._ids),
                [{} for _ in self._ids],
                {"global": vec},
            ),
            "face": AspectData(
                "face",
                "fake-face",
                list(self._ids),
                [f"{i}#f0" for i in self._ids],
                [
                    {
                        "box": [
                            0.2 * self._items[i]["width"],
                            0.1 * self._items[i]["height"],
                            0.3 * self._items[i]["width"],
                            0.35 * self._items[i]["height"],
                        ],
                        "score": 0.99,
                    }
                    for i in self._ids
                ],
                {"face": vec},
            ),
            "pose": AspectData(
                "pose",
                "fake-pose",
                list(self._ids),
                [f"{i}#p0" for i in self._ids],
                [
                    {
                        "keypoints": _skeleton(self._items[i]["width"], self._items[i]["height"]),
                        "visibility": [1.0] * 33,
                        "box": [0, 0, 10, 10],
                    }
                    for i in self._ids
                ],
                {"pose": vec},
            ),
        }
        self.aspects = ["global", "face", "pose"]
        self.calls: list[dict[str, Any]] = []
        self.fail_with: Exception | None = None

    @property
    def ids(self) -> list[str]:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def item(self, item_id: str) -> dict[str, Any]:
        if item_id not in self._items:
            raise ArtsimError(f"no item with id {item_id!r}")
        return self._items[item_id]

    def aspect_names(self) -> list[str]:
        return list(self.aspects)

    def aspect(self, name: str) -> AspectData:
        if name not in self.aspects:
            raise ArtsimError(f"catalog {self.path} has no '{name}' aspect")
        return self._aspects[name]

    def search(
        self, query: Any, *, k: int = 10, aspect: str = "global", where=None, **options: Any
    ) -> list[SearchResult]:
        self.calls.append({"query": query, "k": k, "aspect": aspect, "where": where, **options})
        if self.fail_with is not None:
            raise self.fail_with
        from artsim.search.filters import filter_mask, parse_where

        vec = self._aspects["global"].vectors["global"]
        qid = getattr(query, "item_id", None)
        qv = vec[self._pos[qid]] if qid is not None else vec[0]
        scores = vec @ qv
        mask = filter_mask([self._items[i]["metadata"] for i in self._ids], parse_where(where))
        order = [
            int(j) for j in np.argsort(-scores) if self._ids[j] != qid and (mask is None or mask[j])
        ][:k]
        out = []
        for j in order:
            item_id = self._ids[j]
            extra: dict[str, Any] = {}
            if aspect == "face":
                extra = {
                    "box": tuple(self._aspects["face"].info[j]["box"]),
                    "face_id": f"{item_id}#f0",
                }
            elif aspect == "pose":
                extra = {
                    "keypoints": self._aspects["pose"].info[j]["keypoints"],
                    "pose_id": f"{item_id}#p0",
                    "box": (0, 0, 10, 10),
                }
            elif aspect == "fused":
                extra = {"scores": {"global": float(scores[j])}}
            out.append(
                SearchResult(
                    item_id,
                    float(scores[j]),
                    self._items[item_id]["image"],
                    self._items[item_id]["metadata"],
                    aspect,
                    **extra,
                )
            )
        return out


def _skeleton(w: float, h: float) -> list[list[float]]:
    """33 plausible keypoints of a standing figure inside a w x h painting."""
    cx = w / 2
    pts = [[cx, 0.15 * h]] * 11  # face points around the head
    body = {
        11: (-0.1, 0.3), 12: (0.1, 0.3), 13: (-0.15, 0.45), 14: (0.15, 0.45), 15: (-0.17, 0.6), 16: (0.17, 0.6),
        17: (-0.18, 0.62), 18: (0.18, 0.62), 19: (-0.17, 0.63), 20: (0.17, 0.63), 21: (-0.16, 0.62), 22: (0.16, 0.62),
        23: (-0.07, 0.6), 24: (0.07, 0.6), 25: (-0.08, 0.75), 26: (0.08, 0.75), 27: (-0.08, 0.9), 28: (0.08, 0.9),
        29: (-0.09, 0.93), 30: (0.09, 0.93), 31: (-0.05, 0.94), 32: (0.05, 0.94),
    }  # fmt: skip
    pts = [list(p) for p in pts] + [[cx + dx * w, dy * h] for _, (dx, dy) in sorted(body.items())]
    return pts


@pytest.fixture
def fake(tmp_path) -> FakeCatalog:
    return FakeCatalog(tmp_path / "fake", n=40)


@pytest.fixture
def fake_client(fake) -> TestClient:
    with TestClient(create_app(fake.path, catalog=fake), raise_server_exceptions=False) as c:
        yield c


# ---------------------------------------------------------------------- meta routes
def test_healthz_info_facets(client):
    assert client.get("/healthz").json() == {"status": "ok", "items": 14}
    info = client.get("/api/info").json()
    assert (
        info["items"] == 14
        and info["aspects"] == ["global"]
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


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    for route in (
        "/api/search",
        "/api/items/{item_id}",
        "/api/items/{item_id}/thumbnail",
        "/api/map",
        "/api/facets",
        "/healthz",
    ):
        assert route in spec["paths"], route
    assert "post" in spec["paths"]["/api/search"] and "get" in spec["paths"]["/api/search"]
    assert client.get("/docs").status_code == 200


def test_security_headers_everywhere(client):
    r = client.get("/api/info")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


# ---------------------------------------------------------------------- search by id
def test_search_by_id(client):
    r = client.get("/api/search", params={"id": "img5.jpg", "k": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == {"id": "img5.jpg"} and body["aspect"] == "global" and body["count"] == 4
    ids = [x["id"] for x in body["results"]]
    assert len(ids) == 4 and "img5.jpg" not in ids
    scores = [x["score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True)
    first = body["results"][0]
    assert "image" not in first  # server paths are never sent
    assert first["title"].startswith("Study ") and first["artist"] in ARTISTS and first["date"]
    assert first["width"] > 0 and first["thumbnail"].startswith("/api/items/")


def test_search_where_repeatable_and_semicolons(client):
    r = client.get(
        "/api/search", params=[("id", "img5.jpg"), ("k", "20"), ("where", "artist==Alice Painter")]
    )
    got = r.json()["results"]
    assert got and all(x["artist"] == "Alice Painter" for x in got)
    both = client.get(
        "/api/search", params={"id": "img5.jpg", "k": 20, "where": "artist=alice;year=1600..1650"}
    )
    years = [x["metadata"]["year"] for x in both.json()["results"]]
    assert years and all(1600 <= y <= 1650 for y in years)
    assert all(x["artist"] == "Alice Painter" for x in both.json()["results"])
    bad = client.get("/api/search", params={"id": "img5.jpg", "where": "year>=soon"})
    assert bad.status_code == 400 and "not a number" in bad.json()["error"]


def test_where_splitting_keeps_joined_names():
    from artsim.search.filters import split_where as _split_where

    assert _split_where(["artist==Puccio di Simone; Allegretto Nuzi"]) == [
        "artist==Puccio di Simone; Allegretto Nuzi"
    ]
    assert _split_where(["artist=alice;year=1600..1650", " style=baroque ; "]) == [
        "artist=alice", "year=1600..1650", "style=baroque"]  # fmt: skip


def test_ids_with_slashes(client):
    r = client.get("/api/search", params={"id": "sub/img1.jpg", "k": 3})
    assert r.status_code == 200 and "sub/img1.jpg" not in [x["id"] for x in r.json()["results"]]
    assert client.get("/api/items/sub/img1.jpg").json()["id"] == "sub/img1.jpg"
    assert client.get("/api/items/sub%2Fimg1.jpg").json()["id"] == "sub/img1.jpg"
    thumb = client.get("/api/items/sub%2Fimg1.jpg/thumbnail?size=64")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"id": "nope.jpg"}, 404, "no painting"),
        ({"id": "/etc/passwd"}, 404, "no painting"),  # never read as a server file
        ({"id": "img3.jpg", "aspect": "colour"}, 400, "unknown aspect"),
        ({"id": "img3.jpg", "aspect": "face"}, 404, "no 'face' aspect"),
        ({"id": "img3.jpg", "aspect": "pose"}, 404, "no 'pose' aspect"),
        ({"id": "img3.jpg", "aspect": "fused", "weights": "global=1,face=2"}, 404, "face"),
        ({"id": "img3.jpg", "k": 0}, 400, "k 0: must be from 1 to 100"),
        ({"id": "img3.jpg", "k": 10_000}, 400, "k 10000"),
        ({"id": "img3.jpg", "k": "many"}, 400, "k 'many': expected a whole number"),
        ({"id": "http://example.org/a.jpg"}, 400, "does not fetch URLs"),
        ({"id": "HTTPS://example.org/a.jpg"}, 400, "does not fetch URLs"),
        ({"id": "file:///etc/passwd"}, 400, "does not fetch URLs"),
        ({"url": "http://127.0.0.1:22/"}, 400, "does not fetch URLs"),
        ({"id": "img3.jpg", "url": "http://example.org/x.jpg"}, 400, "does not fetch URLs"),
        ({}, 400, "catalog id"),
    ],
)
def test_search_refusals(client, params, status, fragment):
    r = client.get("/api/search", params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and fragment in body["error"]
    assert "Traceback" not in r.text


def test_missing_aspect_message_does_not_leak_paths(client, real_catalog):
    r = client.get("/api/search", params={"id": "img3.jpg", "aspect": "face"})
    assert str(real_catalog.parent) not in r.text


# ---------------------------------------------------------------------- uploads
def test_upload_search(client):
    data = jpeg_bytes()
    # the first upload starts the worker process that analyses images
    r = client.post(
        "/api/search", files={"file": ("holiday.jpg", data, "image/jpeg")}, data={"k": "3"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["upload"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["query"]["upload"]["width"] == 120 and body["count"] == 3
    assert "holiday" not in r.text  # the client's file name is not used for anything
    assert len(_upload_workers()) == 1


def test_upload_params_from_query_string_and_form(client):
    data = jpeg_bytes(seed=5)
    r = client.post(
        "/api/search?k=2&where=artist%3Dbob", files={"file": ("x.png", data, "image/png")}
    )
    assert r.status_code == 200 and r.json()["count"] == 2
    assert all(x["artist"] == "Bob Limner" for x in r.json()["results"])
    r = client.post("/api/search?k=2", files={"file": ("x", data)}, data={"k": "5"})  # form wins
    assert r.json()["count"] == 5
    bad = client.post("/api/search?k=zero", files={"file": ("x", data)})
    assert bad.status_code == 400 and "k 'zero'" in bad.json()["error"]
    url = client.post(
        "/api/search", files={"file": ("x", data)}, data={"url": "http://example.org/a.jpg"}
    )
    assert url.status_code == 400


def test_upload_file_name_never_touches_disk(client, real_catalog):
    before = {p.relative_to(real_catalog) for p in real_catalog.rglob("*")}
    r = client.post(
        "/api/search",
        files={"file": ("../../../../tmp/evil.jpg", jpeg_bytes(seed=9), "image/jpeg")},
    )
    assert r.status_code == 200
    after = {p.relative_to(real_catalog) for p in real_catalog.rglob("*")}
    assert not any("evil" in str(p) for p in after - before)
    assert not Path("/tmp/evil.jpg").exists()


def test_upload_too_large_is_413(real_catalog):
    app = create_app(real_catalog, max_upload_bytes=50_000)
    noise = Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    )
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    big = buf.getvalue()
    assert len(big) > 50_000
    with TestClient(app) as c:
        r = c.post("/api/search", files={"file": ("big.png", big, "image/png")})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        # a Content-Length that announces too much is refused before any byte is read
        r = c.post(
            "/api/search",
            content=b"x" * 10,
            headers={
                "content-length": "900000000",
                "content-type": "multipart/form-data; boundary=zz",
            },
        )
        assert r.status_code == 413

        # no Content-Length (chunked): counted as it streams
        def chunks():
            yield b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
            for _ in range(400):
                yield b"\0" * 1024

        r = c.post(
            "/api/search",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=zz"},
        )
        assert r.status_code == 413 and r.json()["error"]
        # under the limit, the body gets through to the image checks (415 for text, not 413)
        small = c.post("/api/search", files={"file": ("s.txt", b"hello " * 1000, "text/plain")})
        assert small.status_code == 415


def test_upload_not_an_image_is_415(client, tmp_path):
    files = write_awkward_set(tmp_path / "awk")
    r = client.post(
        "/api/search", files={"file": ("notes.jpg", files["notes.jpg"].read_bytes(), "image/jpeg")}
    )
    assert r.status_code == 415 and "not an image" in r.json()["error"]
    r = client.post(
        "/api/search", files={"file": ("c.png", files["corrupt.png"].read_bytes(), "image/png")}
    )
    assert r.status_code in (400, 415)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    r = client.post("/api/search", files={"file": ("x.eps", eps, "application/postscript")})
    assert r.status_code == 415  # formats with external decoders are never opened
    r = client.post("/api/search", files={"file": ("e.jpg", b"", "image/jpeg")})
    assert r.status_code == 400 and "empty" in r.json()["error"]
    r = client.post("/api/search", data={"k": "3"})
    assert r.status_code == 422 and "file" in r.json()["error"]


def test_upload_truncated_image_is_400(client, tmp_path):
    files = write_awkward_set(tmp_path / "awk")
    r = client.post(
        "/api/search", files={"file": ("t.jpg", files["truncated.jpg"].read_bytes(), "image/jpeg")}
    )
    assert r.status_code == 400 and "Traceback" not in r.text
    assert str(tmp_path) not in r.text


def test_pixel_bomb_is_refused(client, real_catalog, tmp_path):
    bomb = write_awkward_set(tmp_path / "awk")["bomb.png"].read_bytes()  # claims 20000 x 20000
    r = client.post("/api/search", files={"file": ("b.png", bomb, "image/png")})
    assert r.status_code == 413 and "pixels" in r.json()["error"]
    with TestClient(create_app(real_catalog, max_pixels=5_000)) as c:
        r = c.post("/api/search", files={"file": ("s.jpg", jpeg_bytes(120, 90), "image/jpeg")})
        assert r.status_code == 413
        assert "10,800 pixels" in r.json()["error"] and "5,000" in r.json()["error"]


# ---------------------------------------------------------------------- items and thumbnails
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


# ---------------------------------------------------------------------- map
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


# ---------------------------------------------------------------------- aspects (fake catalog)
def test_face_pose_fused_with_fake_catalog(fake_client, fake):
    info = fake_client.get("/api/info").json()
    assert info["search_aspects"] == ["global", "face", "pose", "fused"]
    face = fake_client.get(
        "/api/search",
        params={"id": fake.ids[3], "aspect": "face", "k": 3, "face": 1, "identity": "false"},
    )
    assert face.status_code == 200, face.text
    res = face.json()["results"]
    assert len(res) == 3 and all(len(x["box"]) == 4 and x["face_id"] for x in res)
    assert (
        fake.calls[-1]["face"] == 1
        and fake.calls[-1]["identity"] is False
        and fake.calls[-1]["box"] is None
    )
    box = fake_client.get(
        "/api/search", params={"id": fake.ids[3], "aspect": "face", "box": "1,2,30,40"}
    )
    assert box.status_code == 200 and fake.calls[-1]["box"] == (1.0, 2.0, 30.0, 40.0)
    pose = fake_client.get(
        "/api/search", params={"id": fake.ids[3], "aspect": "pose", "mirror": "true", "figure": 0}
    )
    kp = pose.json()["results"][0]["keypoints"]
    assert len(kp) == 33 and fake.calls[-1]["mirror"] is True and fake.calls[-1]["figure"] == 0
    assert fake.calls[-1]["min_score"] == 0.0
    fake_client.get("/api/search", params={"id": fake.ids[3], "aspect": "pose", "min_score": 0.4})
    assert fake.calls[-1]["min_score"] == 0.4
    bad = fake_client.get(
        "/api/search", params={"id": fake.ids[3], "aspect": "pose", "min_score": 2}
    )
    assert bad.status_code in (400, 422)
    fused = fake_client.get(
        "/api/search",
        params={"id": fake.ids[3], "aspect": "fused", "weights": "global=1,face=2,pose=0.5"},
    )
    assert fused.status_code == 200 and fake.calls[-1]["weights"] == {
        "global": 1.0,
        "face": 2.0,
        "pose": 0.5,
    }
    # options of other aspects are not passed through
    fake_client.get("/api/search", params={"id": fake.ids[3], "aspect": "global", "mirror": "true"})
    assert set(fake.calls[-1]) == {"query", "k", "aspect", "where"}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"aspect": "fused", "weights": "global=1,colour=2"}, "unknown aspect"),
        ({"aspect": "fused", "weights": "global=x"}, "expected"),
        ({"aspect": "fused", "weights": "global=0,face=0"}, "positive"),
        ({"aspect": "fused", "weights": "global=-1"}, ">= 0"),
        ({"aspect": "face", "box": "1,2,3"}, "x,y,w,h"),
        ({"aspect": "face", "box": "1,2,0,4"}, "positive"),
    ],
)
def test_bad_aspect_options_are_400(fake_client, fake, params, fragment):
    r = fake_client.get("/api/search", params={"id": fake.ids[0], **params})
    assert r.status_code == 400 and fragment in r.json()["error"]


def test_item_detail_lists_faces_and_poses(fake_client, fake):
    body = fake_client.get(f"/api/items/{fake.ids[2]}").json()
    assert (
        len(body["faces"]) == 1
        and body["faces"][0]["id"] == f"{fake.ids[2]}#f0"
        and len(body["faces"][0]["box"]) == 4
    )
    assert len(body["poses"]) == 1 and len(body["poses"][0]["keypoints"]) == 33


def test_aspect_missing_in_fake(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=5)
    fake.aspects = ["global", "pose"]
    with TestClient(create_app(fake.path, catalog=fake)) as c:
        assert c.get("/api/info").json()["search_aspects"] == ["global", "pose", "fused"]
        r = c.get("/api/search", params={"id": fake.ids[0], "aspect": "face"})
        assert r.status_code == 404 and "no 'face' aspect" in r.json()["error"]
        assert c.get(f"/api/items/{fake.ids[0]}").json()["faces"] is None


def test_search_errors_from_the_engine(fake_client, fake):
    fake.fail_with = ArtsimError(f"no face found in the query image of catalog {fake.path}")
    r = fake_client.get("/api/search", params={"id": fake.ids[0], "aspect": "face"})
    assert r.status_code == 400 and "no face found" in r.json()["error"]
    assert str(fake.path) not in r.text
    fake.fail_with = ModuleNotFoundError("No module named 'artsim.search.faces'")
    r = fake_client.get("/api/search", params={"id": fake.ids[0], "aspect": "face"})
    assert r.status_code == 501
    fake.fail_with = RuntimeError("secret internals /root/.ssh")
    r = fake_client.get("/api/search", params={"id": fake.ids[0]})
    assert r.status_code == 500
    assert r.json() == {"error": "internal server error (details are in the server log)"}
    assert "secret" not in r.text and "Traceback" not in r.text


def test_unknown_routes_and_methods_are_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = client.delete("/api/search")
    assert r.status_code == 405 and "error" in r.json()


# ---------------------------------------------------------------------- CORS
def test_cors_off_by_default(client):
    r = client.get("/api/info", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    pre = client.options(
        "/api/search",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in pre.headers


def test_cors_when_configured(real_catalog):
    app = create_app(real_catalog, cors_origins=["https://museum.example"])
    with TestClient(app) as c:
        r = c.get("/api/info", headers={"Origin": "https://museum.example"})
        assert r.headers["access-control-allow-origin"] == "https://museum.example"
        other = c.get("/api/info", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        pre = c.options(
            "/api/search",
            headers={"Origin": "https://museum.example", "Access-Control-Request-Method": "POST"},
        )
        assert (
            pre.status_code == 200
            and pre.headers["access-control-allow-origin"] == "https://museum.example"
        )


def test_bad_catalog_path_fails_early(tmp_path):
    with pytest.raises(ArtsimError, match="no artsim catalog"):
        create_app(tmp_path / "nothing-here")


# ---------------------------------------------------------------------- CLI commands
def test_cli_commands_registered(real_catalog, tmp_path):
    import typer
    from typer.testing import CliRunner

    from artsim.server.commands import register

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    register(app)
    runner = CliRunner()
    help_text = runner.invoke(app, ["serve", "--help"]).output
    assert "--host" in help_text and "127.0.0.1" in help_text and "--cors-origin" in help_text
    out = tmp_path / "sheet.png"
    r = runner.invoke(app, ["sheet", str(real_catalog), "img2.jpg", "-o", str(out), "-k", "3"])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size[0] > 200
    html = tmp_path / "map.html"
    r = runner.invoke(app, ["map", str(real_catalog), "-o", str(html)])
    assert r.exit_code == 0, r.output
    assert "data:image/jpeg;base64," in html.read_text()


# ---------------------------------------------------------------------- issue 16 regressions
def test_bad_number_in_a_filter_is_400_naming_it(client):
    # item 7: `year>=12abc` was a 500 on GET and POST /api/search and on /api/items
    message = "bad filter 'year>=12abc': '12abc' is not a number"
    r = client.get("/api/search", params={"id": "img5.jpg", "where": "year>=12abc"})
    assert r.status_code == 400 and r.json() == {"error": message}
    r = client.post(
        "/api/search", files={"file": ("x.jpg", jpeg_bytes(), "image/jpeg")},
        data={"where": "year>=12abc"},
    )  # fmt: skip
    assert r.status_code == 400 and r.json() == {"error": message}
    r = client.get("/api/items", params={"where": "year>=12abc"})
    assert r.status_code == 400 and r.json() == {"error": message}


def test_ellipsis_in_a_filter_is_text(client):
    # item 12: `title=Wait...` was refused as a range
    r = client.get("/api/items", params={"where": "title=Wait..."})
    assert r.status_code == 200 and r.json()["total"] == 0
    r = client.get("/api/search", params={"id": "img5.jpg", "where": "title!=Wait..."})
    assert r.status_code == 200 and r.json()["count"] == 12


def test_missing_image_error_shows_no_server_path(tmp_path):
    # item 9: the error for a missing image file named its absolute path
    fake = FakeCatalog(tmp_path / "f", n=3)
    gone = tmp_path / "elsewhere" / "images" / "gone.jpg"
    fake.fail_with = ImageLoadError(f"{gone}: cannot open (No such file or directory)")
    with TestClient(create_app(fake.path, catalog=fake)) as c:
        r = c.get("/api/search", params={"id": fake.ids[0], "aspect": "face", "box": "1,1,9,9"})
    assert r.status_code == 400
    assert r.json() == {"error": "gone.jpg: cannot open (No such file or directory)"}


def test_only_allowed_host_names_are_answered(tmp_path):
    # item 9: any Host header was accepted (DNS rebinding)
    fake = FakeCatalog(tmp_path / "f", n=3)
    app = create_app(fake.path, catalog=fake, allowed_hosts=["localhost", "127.0.0.1"])
    with TestClient(app, base_url="http://localhost:8000") as c:
        assert c.get("/api/info").status_code == 200
        assert c.get("/api/info", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        evil = c.get("/api/info", headers={"Host": "evil.example:8000"})
        assert evil.status_code == 400 and "x-content-type-options" in evil.headers


def test_serve_allowed_hosts_default_to_localhost_on_loopback():
    from artsim.server.commands import allowed_host_names

    assert {"localhost", "127.0.0.1", "::1"} <= set(allowed_host_names("127.0.0.1", None))
    assert "localhost" in allowed_host_names("::1", None)
    assert allowed_host_names("0.0.0.0", None) is None  # only the operator knows the public name
    assert allowed_host_names("0.0.0.0", ["art.example,www.art.example"]) == [
        "art.example", "www.art.example"]  # fmt: skip
    assert allowed_host_names("127.0.0.1", ["*"]) is None


# ---------------------------------------------------------------------- upload executor
def test_upload_after_a_worker_was_killed(client):
    import signal

    first = client.post("/api/search", files={"file": ("a.jpg", jpeg_bytes(seed=11))})
    assert first.status_code == 200
    workers = _upload_workers()
    assert workers
    for w in workers:
        w.send_signal(signal.SIGKILL)
        w.wait(10)
    again = client.post("/api/search", files={"file": ("a.jpg", jpeg_bytes(seed=11))})
    assert again.status_code == 200, again.text
    assert again.json()["results"] == first.json()["results"]
    assert {w.pid for w in _upload_workers()}.isdisjoint({w.pid for w in workers})


def _executor(**kwargs):
    from concurrent.futures import ThreadPoolExecutor

    from artsim.server.uploads import UploadExecutor

    return UploadExecutor(lambda: ThreadPoolExecutor(max_workers=1), 1, **kwargs)


def _blocked(gate, value):
    import threading

    gate.wait(30)
    return threading.get_ident(), 0.01, value


def test_uploads_over_the_queue_limit_get_503_at_once():
    import asyncio
    import threading

    from fastapi import HTTPException

    ex = _executor(max_waiting=1)
    gate = threading.Event()

    async def scenario():
        running = asyncio.ensure_future(ex.run(_blocked, gate, "a"))
        queued = asyncio.ensure_future(ex.run(_blocked, gate, "b"))
        await asyncio.sleep(0.05)
        with pytest.raises(HTTPException) as refused:
            await ex.run(_blocked, gate, "c")
        gate.set()
        return refused.value, await running, await queued

    try:
        refused, a, b = asyncio.run(scenario())
    finally:
        gate.set()
        ex.close()
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert (a, b) == ("a", "b")


def test_an_upload_that_takes_too_long_is_503():
    import asyncio
    import threading

    from fastapi import HTTPException

    ex = _executor(answer_within=0.2, cold_timeout=0.2)
    gate = threading.Event()
    try:
        with pytest.raises(HTTPException) as err:
            asyncio.run(ex.run(_blocked, gate, "slow"))
    finally:
        gate.set()
        ex.close()
    assert err.value.status_code == 503 and "Retry-After" in err.value.headers


def test_a_busy_server_refuses_uploads_before_reading_them(tmp_path):
    from fastapi import HTTPException

    fake = FakeCatalog(tmp_path / "f", n=3)
    app = create_app(fake.path, catalog=fake, max_concurrent_uploads=1)
    uploads = app.state.artsim.uploads
    held = []
    with pytest.raises(HTTPException):
        while len(held) < 1000:
            held.append(uploads.admit())
    assert len(held) == 1 + uploads.max_waiting
    with TestClient(app) as c:
        r = c.post("/api/search", files={"file": ("x.txt", b"not an image")})
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        for h in held:
            h.release()
        r = c.post("/api/search", files={"file": ("x.txt", b"not an image")})
        assert r.status_code == 415
        assert uploads.inflight == 0  # a refused upload gives its place back
