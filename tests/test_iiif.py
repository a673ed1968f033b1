"""The IIIF downloader against a real local HTTP server that injects the failures a museum
image server produces: slow answers, 500s, 429s, 404s, cut-off bodies, HTML, huge bodies."""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from artsim.errors import ImageLoadError
from artsim.sources.iiif import (
    FetchReport,
    cache_key,
    cached_path,
    fetch_image,
    fetch_images,
    iiif_image_url,
)

# /<mode>/iiif/<objectid>/full/!W,H/0/default.jpg
PATH = re.compile(
    r"/(?P<mode>[a-z0-9]+)/iiif/(?P<oid>\d+)/full/!(?P<w>\d+),(?P<h>\d+)/0/default\.jpg"
)
FAST = {"backoff": 0.01, "progress": False}


class IIIFServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, images: Path):
        super().__init__(("127.0.0.1", 0), Handler)
        self.images = images
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.rendered: dict[tuple[str, int, int], bytes] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, mode: str, oid: int | str, size: int = 256) -> str:
        return iiif_image_url(f"{self.base}/{mode}/iiif/{oid}", size, size)

    def jpeg(self, oid: str, w: int, h: int) -> bytes:
        key = (oid, w, h)
        if key not in self.rendered:
            with Image.open(self.images / f"{oid}.jpg") as im:
                im = im.convert("RGB")
                im.thumbnail((w, h))
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=85)
            self.rendered[key] = buf.getvalue()
        return self.rendered[key]

    def handle_error(self, request, client_address):  # clients hang up on purpose here
        pass


class Handler(BaseHTTPRequestHandler):
    server: IIIFServer

    def log_message(self, format, *args):
        pass

    def send(self, status: int, body: bytes, ctype: str = "image/jpeg", **headers) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(headers.pop("length", len(body))))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def drip(self, data: bytes) -> None:
        try:
            for i in range(400):
                self.wfile.write(data[i % len(data) : i % len(data) + 1])
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:  # the client gave up, as it should
            pass
        self.close_connection = True

    def do_GET(self):
        path = unquote(self.path)
        with self.server.lock:
            self.server.counts[path] += 1
            count = self.server.counts[path]
        match = PATH.fullmatch(path)
        if match is None:
            self.send(404, b"no such path", "text/plain")
            return
        mode, oid = match["mode"], match["oid"]
        if not (self.server.images / f"{oid}.jpg").is_file():
            self.send(404, b"<html>not found</html>", "text/html")
            return
        body = self.server.jpeg(oid, int(match["w"]), int(match["h"]))
        if mode == "ok":
            self.send(200, body)
        elif mode == "slow":
            time.sleep(1.0)
            self.send(200, body)
        elif mode == "latency":
            time.sleep(0.2)
            self.send(200, body)
        elif mode == "flaky":  # two 500s, then the image
            if count <= 2:
                self.send(500, b"<html>oops</html>", "text/html")
            else:
                self.send(200, body)
        elif mode == "down":
            self.send(503, b"<html>down</html>", "text/html")
        elif mode == "busy":  # one 429 with a short Retry-After, then the image
            if count == 1:
                self.send(429, b"slow down", "text/plain", Retry_After="0")
            else:
                self.send(200, body)
        elif mode == "busylong":
            self.send(429, b"slow down", "text/plain", Retry_After="3600")
        elif mode == "missing":
            self.send(404, b"<html>not found</html>", "text/html")
        elif mode == "heic":  # a phone photo's format, encoded without Pillow's HEIF opener
            import pillow_heif

            buf = io.BytesIO()
            pillow_heif.from_pillow(Image.open(io.BytesIO(body))).save(buf, quality=80)
            self.send(200, buf.getvalue(), "image/heic")
        elif mode == "truncated":  # announces the whole image, sends half and hangs up
            self.send(200, body[: len(body) // 2], length=len(body))
            self.close_connection = True
        elif mode == "cutjpeg":  # a complete HTTP body holding half a JPEG
            self.send(200, body[: len(body) // 2])
        elif mode == "html":
            self.send(200, b"<html><body>Sign in</body></html>", "text/html; charset=utf-8")
        elif mode == "mislabelled":
            self.send(200, b"<html><body>Sign in</body></html>", "image/jpeg")
        elif mode == "huge":  # announced size over the limit
            self.send(200, body, length=10_000_000)
            self.close_connection = True
        elif mode == "endless":  # no Content-Length, streams until the client gives up
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            try:
                for _ in range(2000):
                    self.wfile.write(b"\xff" * 65536)
            except OSError:
                pass
            self.close_connection = True
        elif mode == "trickle":  # headers at once, then a byte every 0.1 s for 40 s
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.drip(body)
        elif mode == "slowheaders":  # the header lines themselves, a byte every 0.1 s
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self.drip(b"Content-Type: image/jpeg\r\n" * 100)
        elif mode == "tofile":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send(400, b"unknown mode", "text/plain")


@pytest.fixture
def server(data_dir: Path, monkeypatch):
    # a proxy from the environment must not intercept 127.0.0.1
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    srv = IIIFServer(data_dir / "nga" / "images")
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()]


def requests_for(server: IIIFServer, url: str) -> int:
    return server.counts[unquote(url.split(server.base, 1)[1])]


def test_iiif_image_url():
    base = "https://api.nga.gov/iiif/7bbcfd01-e774-46e7-96d1-a3b03598cd8a"
    assert iiif_image_url(base + "/", 1024, 768) == base + "/full/!1024,768/0/default.jpg"
    with pytest.raises(ValueError):
        iiif_image_url(base, 0, 10)


def test_fetch_and_resume(server: IIIFServer, tmp_path: Path):
    urls = [server.url("ok", oid) for oid in (1, 5, 6, 19)]
    report = fetch_images([*urls, urls[0]], tmp_path, **FAST)  # a duplicate is fetched once
    assert isinstance(report, FetchReport)
    assert (report.fetched, report.cached, report.failed) == (4, 0, 0)
    assert report.bytes_fetched > 0
    for url in urls:
        path = report.paths[url]
        assert path.suffix == ".jpg" and path.name.startswith(cache_key(url))
        with Image.open(path) as im:
            assert max(im.size) <= 256
        assert requests_for(server, url) == 1
    # a second run finds everything in the cache and asks the server nothing
    again = fetch_images(urls, tmp_path, **FAST)
    assert (again.fetched, again.cached, again.failed) == (0, 4, 0)
    assert again.paths == {u: report.paths[u] for u in urls}
    assert all(requests_for(server, u) == 1 for u in urls)
    # a different size is a different URL, hence a different cache entry
    bigger = server.url("ok", 1, 512)
    assert fetch_images([bigger], tmp_path, **FAST).fetched == 1


def test_retries_500_then_succeeds(server: IIIFServer, tmp_path: Path):
    url = server.url("flaky", 1)
    report = fetch_images([url], tmp_path, retries=3, **FAST)
    assert report.fetched == 1 and report.failures == {}
    assert requests_for(server, url) == 3


def test_gives_up_after_retries(server: IIIFServer, tmp_path: Path):
    url = server.url("down", 1)
    report = fetch_images([url], tmp_path, retries=2, **FAST)
    assert "HTTP 503" in report.failures[url] and "3 attempts" in report.failures[url]
    assert requests_for(server, url) == 3
    assert leftovers(tmp_path) == []


def test_429_respects_short_retry_after(server: IIIFServer, tmp_path: Path):
    url = server.url("busy", 5)
    report = fetch_images([url], tmp_path, retries=3, **FAST)
    assert report.fetched == 1
    assert requests_for(server, url) == 2


def test_429_with_long_retry_after_fails_fast(server: IIIFServer, tmp_path: Path):
    url = server.url("busylong", 5)
    started = time.monotonic()
    report = fetch_images([url], tmp_path, retries=3, max_retry_after=30, **FAST)
    assert time.monotonic() - started < 5
    assert "HTTP 429" in report.failures[url] and "3600" in report.failures[url]
    assert requests_for(server, url) == 1


def test_404_is_not_retried(server: IIIFServer, tmp_path: Path):
    url = server.url("missing", 1)
    report = fetch_images([url], tmp_path, retries=3, **FAST)
    assert report.failures[url].startswith("HTTP 404")
    assert requests_for(server, url) == 1


def test_timeout(server: IIIFServer, tmp_path: Path):
    url = server.url("slow", 1)
    started = time.monotonic()
    report = fetch_images([url], tmp_path, timeout=0.3, retries=1, **FAST)
    assert "timed out" in report.failures[url]
    assert requests_for(server, url) == 2
    assert time.monotonic() - started < 2.0  # did not wait for the 1 s answers
    assert leftovers(tmp_path) == []


def test_truncated_body_is_retried_then_fails(server: IIIFServer, tmp_path: Path):
    url = server.url("truncated", 1)
    report = fetch_images([url], tmp_path, retries=1, **FAST)
    assert "incomplete" in report.failures[url]
    assert requests_for(server, url) == 2
    assert leftovers(tmp_path) == []  # no half image, no .part file


def test_truncated_image_is_rejected(server: IIIFServer, tmp_path: Path):
    url = server.url("cutjpeg", 1)
    report = fetch_images([url], tmp_path, **FAST)
    assert "truncated" in report.failures[url]
    assert requests_for(server, url) == 1  # a broken file is not a transient error
    assert leftovers(tmp_path) == []


def test_html_is_not_an_image(server: IIIFServer, tmp_path: Path):
    url = server.url("html", 1)
    assert fetch_images([url], tmp_path, **FAST).failures[url] == "not an image (text/html)"
    url = server.url("mislabelled", 1)
    assert fetch_images([url], tmp_path, **FAST).failures[url] == "not an image (image/jpeg)"
    assert leftovers(tmp_path) == []


def test_oversized_bodies_are_aborted(server: IIIFServer, tmp_path: Path):
    announced = server.url("huge", 1)
    streamed = server.url("endless", 1)
    report = fetch_images([announced, streamed], tmp_path, max_bytes=1_000_000, **FAST)
    assert "too large" in report.failures[announced] and "announced" in report.failures[announced]
    assert "too large" in report.failures[streamed] and "aborted" in report.failures[streamed]
    assert requests_for(server, streamed) == 1
    assert leftovers(tmp_path) == []


def test_max_pixels(server: IIIFServer, tmp_path: Path):
    url = server.url("ok", 1, 512)
    report = fetch_images([url], tmp_path, max_pixels=10_000, **FAST)
    assert "over max_pixels 10,000" in report.failures[url]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/hostname",
        "ftp://example.org/image.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
        "/etc/passwd",
        "javascript:alert(1)",
        "http:///no-host.jpg",
    ],
)
def test_refused_urls(url: str, tmp_path: Path):
    report = fetch_images([url], tmp_path / "cache", **FAST)
    assert report.failed == 1 and report.paths == {}
    reason = report.failures[url]
    assert "refused URL scheme" in reason or "not a URL" in reason or "no host" in reason
    with pytest.raises(ImageLoadError) as err:
        fetch_image(url, tmp_path / "cache")
    assert url in str(err.value)


def test_redirect_to_a_local_file_is_refused(server: IIIFServer, tmp_path: Path):
    url = server.url("tofile", 1)
    report = fetch_images([url], tmp_path, **FAST)
    assert "refused" in report.failures[url]
    assert leftovers(tmp_path) == []


def test_partial_file_is_not_a_cache_hit(server: IIIFServer, tmp_path: Path):
    url = server.url("ok", 19)
    key = cache_key(url)
    # what a killed run leaves behind: a temporary file, never the final name
    (tmp_path / key[:2]).mkdir()
    (tmp_path / key[:2] / f".{key}.abc123.part").write_bytes(b"\xff\xd8 half an image")
    assert cached_path(url, tmp_path) is None
    report = fetch_images([url], tmp_path, **FAST)
    assert report.fetched == 1 and report.cached == 0
    with Image.open(report.paths[url]) as im:
        im.load()


def test_fetch_image_single(server: IIIFServer, tmp_path: Path):
    url = server.url("ok", 5)
    path = fetch_image(url, tmp_path)
    assert path.is_file() and cached_path(url, tmp_path) == path
    assert fetch_image(url, tmp_path) == path
    assert requests_for(server, url) == 1
    missing = server.url("missing", 5)
    with pytest.raises(ImageLoadError, match="HTTP 404"):
        fetch_image(missing, tmp_path, retries=2)
    assert requests_for(server, missing) == 1


def test_a_heic_image_is_fetched_cached_and_found_again(server: IIIFServer, tmp_path: Path):
    from artsim.images import open_image

    url = server.url("heic", 5)
    path = fetch_image(url, tmp_path)
    assert path.suffix == ".heic" and cached_path(url, tmp_path) == path
    assert fetch_image(url, tmp_path) == path  # found in the cache: not fetched again
    assert requests_for(server, url) == 1
    assert max(open_image(path).image.size) <= 256


def test_concurrent_fetches_overlap(server: IIIFServer, tmp_path: Path, data_dir: Path):
    oids = sorted(int(p.stem) for p in (data_dir / "nga" / "images").glob("*.jpg"))[:16]
    urls = [server.url("latency", oid, 64) for oid in oids]
    for oid in oids:  # render outside the timed part
        server.jpeg(str(oid), 64, 64)
    started = time.monotonic()
    report = fetch_images(urls, tmp_path, workers=8, **FAST)
    elapsed = time.monotonic() - started
    assert report.fetched == 16
    # 16 answers of 0.2 s each: 3.2 s one by one, about 0.4 s eight at a time
    assert elapsed < 1.6


def test_progress_and_summary(server: IIIFServer, tmp_path: Path, capsys):
    urls = [server.url("ok", 1), server.url("missing", 1), "file:///etc/passwd"]
    fetch_images(urls, tmp_path, backoff=0.01, progress=True)
    fetch_images(urls[:1], tmp_path, backoff=0.01, progress=True)
    err = capsys.readouterr().err
    assert "1 fetched, 0 cached, 2 failed" in err
    assert "0 fetched, 1 cached, 0 failed" in err


# --- issue 16: a server that trickles must not hold a request past its deadline ---


@pytest.mark.parametrize("mode", ["trickle", "slowheaders"])
def test_deadline_holds_whatever_the_chunking(server: IIIFServer, tmp_path: Path, mode):
    # every read gets a byte within 0.1 s, so only the whole-request deadline (6 x 0.5 s) can
    # stop it; the server would go on for 40 s (before the fix: until then, or forever)
    started = time.monotonic()
    with pytest.raises(ImageLoadError, match="no complete answer within 3 s"):
        fetch_image(server.url(mode, 1), tmp_path, timeout=0.5, retries=0)
    assert time.monotonic() - started < 15
    assert leftovers(tmp_path) == []


def test_a_trickling_url_does_not_hold_the_others(server: IIIFServer, tmp_path: Path):
    urls = [server.url("trickle", 1), server.url("ok", 5), server.url("ok", 6)]
    started = time.monotonic()
    report = fetch_images(urls, tmp_path, timeout=0.5, retries=0, workers=2, **FAST)
    assert time.monotonic() - started < 15
    assert set(report.paths) == set(urls[1:])
    assert "no complete answer within 3 s" in report.failures[urls[0]]


INTERRUPTED_FETCH = """
import sys
from artsim.sources.iiif import fetch_images
print("started", flush=True)
try:
    fetch_images(sys.argv[2:], sys.argv[1], workers=4, timeout=20, retries=0, progress=False)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise SystemExit(130)
"""


def test_ctrl_c_stops_downloads_promptly(server: IIIFServer, tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys

    # 4 workers each stuck on a trickling server whose deadline is 120 s away
    urls = [server.url("trickle", oid) for oid in (1, 5, 6, 19, 0, 10)] + [server.url("ok", 1)]
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_FETCH, str(tmp_path), *urls],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
        # a runner started in the background (nohup, &) ignores SIGINT and children inherit
        # that; the user's Ctrl-C is what is tested, so the child gets the default back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while sum(n for p, n in server.counts.items() if "/trickle/" in p) < 4:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert out.strip().splitlines()[-1] == "interrupted"
    assert took < 5, f"took {took:.1f} s to stop"
    assert not [p for p in leftovers(tmp_path) if p.suffix == ".part"]


@pytest.mark.slow
def test_ctrl_c_while_indexing_urls_stops_and_keeps_the_catalog(
    server: IIIFServer, tmp_path: Path, data_dir: Path
):
    import os
    import shutil
    import signal
    import subprocess
    import sys

    from artsim.catalog import Catalog

    for oid in ("1", "5"):
        shutil.copy(data_dir / "nga" / "images" / f"{oid}.jpg", tmp_path / f"{oid}.jpg")
    rows = ["id,image", "local1,1.jpg", "local5,5.jpg"]
    (tmp_path / "first.csv").write_text("\n".join(rows) + "\n")
    assert Catalog.create(tmp_path / "cat").add(tmp_path / "first.csv").added == 2
    rows += [f'slow{oid},"{server.url("trickle", oid)}"' for oid in (6, 19, 0, 10)]
    (tmp_path / "second.csv").write_text("\n".join(rows) + "\n")
    args = ["index", str(tmp_path / "second.csv"), "--catalog", str(tmp_path / "cat")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "artsim.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as above
    )
    try:
        deadline = time.monotonic() + 120
        while sum(n for p, n in server.counts.items() if "/trickle/" in p) < 4:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert took < 10, f"took {took:.1f} s to stop"
    cat = Catalog.open(tmp_path / "cat")
    assert sorted(cat.ids) == ["local1", "local5"]


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as real servers: /ok answers at once, anything else sends
    its status line and then trickles header bytes, one every 0.1 s for 30 s."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/ok"):
            buf = io.BytesIO()
            Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, "JPEG")
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(buf.getvalue())))
            self.end_headers()
            self.wfile.write(buf.getvalue())
            return
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        try:
            for _ in range(300):
                self.wfile.write(b"X")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:  # the client gave up, as it should
            pass
        self.close_connection = True


def test_deadline_holds_on_a_connection_the_previous_download_used(tmp_path: Path, monkeypatch):
    # review of issue 16: the watchdog learnt a reused keep-alive socket only once the answer's
    # headers were in, so headers trickled on the second request of a connection ran for 30 s
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        started = time.monotonic()
        report = fetch_images(
            [f"{base}/ok.jpg", f"{base}/slow.jpg"], tmp_path, timeout=0.5, retries=0, workers=1,
            **FAST,
        )  # fmt: skip
        assert time.monotonic() - started < 15
    finally:
        srv.shutdown()
        srv.server_close()
    assert report.fetched == 1
    assert "no complete answer within 3 s" in report.failures[f"{base}/slow.jpg"]
