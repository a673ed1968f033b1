"""GET and POST /api/search (artsim.server.routes.search): searches by id and by upload, every
refusal (ids, URLs, options, image type, size and pixels), and engine errors as JSON.

The real catalog (tests/conftest.py: real_catalog, client) has the global aspect only; face,
pose and fused searches go to FakeCatalog (fake, fake_client), which records its options."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.errors import ArtsimError, ImageLoadError
from artsim.server.app import create_app
from tests.images_factory import write_awkward_set
from tests.server_support import ARTISTS, FakeCatalog, jpeg_bytes, upload_workers


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
    assert len(upload_workers()) == 1


def _heic_without_its_opener(monkeypatch) -> bytes:
    """A HEIC photo (encoded by pillow-heif directly), with Pillow's HEIF opener taken out of
    its registry for the test, as in a process that has not registered it."""
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.open(io.BytesIO(jpeg_bytes()))).save(buf, quality=85)
    Image.init()
    monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
    monkeypatch.setattr(Image, "ID", [f for f in Image.ID if f != "HEIF"])
    return buf.getvalue()


def test_upload_of_a_phone_photo_in_heic(client, monkeypatch):
    from artsim.images import register_heif

    heic = _heic_without_its_opener(monkeypatch)
    # a server process that has opened no image yet: check_image registers the opener itself
    register_heif.cache_clear()
    r = client.post(
        "/api/search",
        files={"file": ("IMG_0001.HEIC", heic, "image/heic")},
        data={"k": "2"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["query"]["upload"]["width"] == 120 and r.json()["count"] == 2
    register_heif.cache_clear()  # the registry is restored: let the next caller register again


def test_a_heic_upload_without_pillow_heif_is_415_with_the_remedy(monkeypatch):
    from fastapi import HTTPException

    import artsim.images as images
    from artsim.server.routes.search import check_image

    heic = _heic_without_its_opener(monkeypatch)
    monkeypatch.setattr(images, "register_heif", lambda: False)
    with pytest.raises(HTTPException) as err:
        check_image(heic, 1_000_000)
    assert err.value.status_code == 415 and "pip install pillow-heif" in err.value.detail
    with pytest.raises(HTTPException) as err:  # and no KeyError for other files either
        check_image(b"%!PS-Adobe-3.0 EPSF-3.0\n", 10_000)
    assert err.value.status_code == 415


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


def test_check_image_reads_the_header_only():
    from fastapi import HTTPException

    from artsim.server.routes.search import check_image

    assert check_image(jpeg_bytes(120, 90), 1_000_000) == (120, 90, "JPEG")
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg_bytes(120, 90))).save(buf, "AVIF", quality=80)
    assert check_image(buf.getvalue(), 1_000_000) == (120, 90, "AVIF")
    with pytest.raises(HTTPException) as err:
        check_image(jpeg_bytes(120, 90), 10_000)
    assert err.value.status_code == 413 and "120x90 = 10,800 pixels" in err.value.detail
    with pytest.raises(HTTPException) as err:
        check_image(b"GIF87a" + b"\0" * 10, 10_000)
    assert err.value.status_code == 415
    with pytest.raises(HTTPException) as err:
        check_image(b"%!PS-Adobe-3.0 EPSF-3.0\n", 10_000)
    assert err.value.status_code == 415 and "JPEG, PNG" in err.value.detail


def test_parse_options_defaults_k_to_12_and_caps_it():
    from artsim.search.options import OptionError
    from artsim.server.routes.search import MAX_K, parse_options

    assert parse_options({}).k == 12
    assert parse_options({"k": str(MAX_K)}).k == MAX_K
    with pytest.raises(OptionError, match=f"k {MAX_K + 1}"):
        parse_options({"k": str(MAX_K + 1)})
