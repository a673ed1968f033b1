"""The ASGI middleware (artsim.server.middleware): body limit, security headers, Host names, CORS."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from artsim.server.app import create_app
from tests.server_support import FakeCatalog


def test_security_headers_everywhere(client):
    r = client.get("/api/info")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


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


def test_only_allowed_host_names_are_answered(tmp_path):
    # item 9: any Host header was accepted (DNS rebinding)
    fake = FakeCatalog(tmp_path / "f", n=3)
    app = create_app(fake.path, catalog=fake, allowed_hosts=["localhost", "127.0.0.1"])
    with TestClient(app, base_url="http://localhost:8000") as c:
        assert c.get("/api/info").status_code == 200
        assert c.get("/api/info", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        evil = c.get("/api/info", headers={"Host": "evil.example:8000"})
        assert evil.status_code == 400 and "x-content-type-options" in evil.headers


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


def test_default_allowed_hosts_only_on_loopback():
    from artsim.server.middleware import default_allowed_hosts

    assert default_allowed_hosts("127.0.0.1") == ["localhost", "127.0.0.1", "::1", "127.0.0.1"]
    assert "127.0.0.2" in default_allowed_hosts("127.0.0.2")
    assert "localhost" in default_allowed_hosts("::1")
    assert default_allowed_hosts("0.0.0.0") is None
    assert default_allowed_hosts("192.168.1.5") is None


def test_a_bad_content_length_is_400_with_the_security_headers(fake_client):
    r = fake_client.post(
        "/api/search",
        content=b"x",
        headers={"content-length": "lots", "content-type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 400 and r.json() == {"error": "invalid Content-Length header"}
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_page_alone_gets_the_content_security_policy(fake_client):
    assert "content-security-policy" in fake_client.get("/").headers
    assert "content-security-policy" in fake_client.get("/static/app.js").headers
    api = fake_client.get("/api/info")
    assert "content-security-policy" not in api.headers
    assert api.headers["referrer-policy"] == "no-referrer"
