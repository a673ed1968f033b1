"""IIIF image URLs and a cautious, resumable, concurrent image downloader.

The downloader is meant for a whole museum collection (NGA: ~130,000 images) fetched from a
server we do not control, so it:
- fetches only http(s) URLs, never a local file through a URL (file://, ftp://, data: refused);
- keeps a cache keyed by a hash of the URL (an IIIF URL carries the size, so two sizes are
  two entries) and never fetches a cached URL again, so an interrupted run resumes;
- writes each image to a temporary `.part` file and renames it into place only once it is
  complete and decodes, so a killed run never leaves a half image in the cache;
- retries 429, 408 and 5xx answers, timeouts and dropped connections with exponential
  backoff (a short Retry-After is respected), never other 4xx;
- aborts bodies over max_bytes while streaming and deletes images over max_pixels;
- gives each request a whole deadline (6x the timeout, from connecting to the last byte),
  however the server chunks its answer: a watchdog shuts the socket down when it passes, so a
  server trickling a byte every few seconds cannot hold a worker past it;
- stops promptly on Ctrl-C: the sockets in flight are shut down, queued URLs are dropped and
  what was downloaded stays in the cache for the next run.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from artsim.errors import ImageLoadError
from artsim.images import DEFAULT_MAX_PIXELS, register_heif

ALLOWED_SCHEMES = frozenset({"http", "https"})
USER_AGENT = (
    "artsim/0.1 (museum image similarity; +https://github.com/NationalGalleryOfArt/opendata)"
)
# Pillow format -> file suffix of the cached copy; the first is what IIIF's default.jpg gives
_SUFFIXES = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "GIF": ".gif",
    "BMP": ".bmp",
    "JPEG2000": ".jp2",
    "AVIF": ".avif",
    "HEIF": ".heic",
}
_CACHE_SUFFIXES = tuple(dict.fromkeys(_SUFFIXES.values()))
_CHUNK = 64 * 1024
# Content types that are never an image: refuse before reading the body
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml")


def iiif_image_url(base: str, width: int, height: int) -> str:
    """IIIF Image API URL of the whole image scaled to fit in a width x height box."""
    if width <= 0 or height <= 0:
        raise ValueError(f"IIIF box must be positive, got {width}x{height}")
    return f"{base.rstrip('/')}/full/!{width},{height}/0/default.jpg"


@dataclass(slots=True)
class FetchReport:
    """What fetch_images did: the local path of every image it has, and why the others failed."""

    paths: dict[str, Path] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    fetched: int = 0
    cached: int = 0
    failed: int = 0
    bytes_fetched: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        mb = self.bytes_fetched / 1e6
        return (
            f"{self.fetched} fetched, {self.cached} cached, {self.failed} failed "
            f"({mb:.1f} MB in {self.seconds:.1f} s)"
        )


@dataclass(frozen=True, slots=True)
class _Options:
    timeout: float
    max_bytes: int
    max_pixels: int
    retries: int
    backoff: float
    max_retry_after: float


class _Failure(Exception):
    """One URL could not be fetched; reason is what the user sees."""

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class _Watch:
    """The sockets a fetch has opened, so that a deadline or Ctrl-C can cut a blocked read.

    Reads block in the socket for up to the per-read timeout, and a thread blocked there does
    not see a flag; shutting its socket down wakes it at once with an error."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def add(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._lock:
                self._sockets.add(sock)

    def cancel(self) -> None:
        """Stop every request in flight; later attempts fail at once."""
        self.cancelled.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def refusal(url: str) -> str | None:
    """Why url will not be fetched (not http/https, no host), or None if it is fetchable."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        return f"malformed URL ({exc})"
    scheme = parts.scheme.lower()
    if not scheme:
        return "not a URL (no http:// or https:// scheme)"
    if scheme not in ALLOWED_SCHEMES:
        return f"refused URL scheme '{scheme}:' (only http and https URLs are fetched)"
    if not host:
        return "URL has no host"
    return None


def cache_key(url: str) -> str:
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()


def cached_path(url: str, cache_dir: str | Path) -> Path | None:
    """The cached image of url, if a complete one is there."""
    key = cache_key(url)
    shard = Path(cache_dir) / key[:2]
    for suffix in _CACHE_SUFFIXES:
        path = shard / f"{key}{suffix}"
        if path.is_file():
            return path
    return None


def fetch_images(
    urls: Iterable[str],
    cache_dir: str | Path,
    *,
    workers: int = 8,
    timeout: float = 20.0,
    max_bytes: int = 50_000_000,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    retries: int = 3,
    progress: bool = True,
    backoff: float = 0.5,
    max_retry_after: float = 60.0,
) -> FetchReport:
    """Download urls into cache_dir, workers at a time; cached URLs are not fetched again.

    timeout: seconds for connecting and for each read; a whole request, from connecting to
    the last byte, gets 6x that however the server chunks its answer.
    retries: extra attempts after a retryable failure (429, 408, 5xx, timeout, dropped
    connection), waiting backoff * 2**attempt seconds or the server's Retry-After when it is
    at most max_retry_after. Never raises for one bad URL: see report.failures.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    opts = _Options(timeout, max_bytes, max_pixels, max(0, retries), backoff, max_retry_after)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    report = FetchReport()
    started = time.monotonic()
    todo: list[str] = []
    for url in dict.fromkeys(urls):
        reason = refusal(url)
        if reason is not None:
            report.failures[url] = reason
            continue
        hit = cached_path(url, cache)
        if hit is not None:
            report.paths[url] = hit
            report.cached += 1
        else:
            todo.append(url)

    with _progress(progress) as bar:
        task = bar.add_task("images", total=len(todo) + report.cached + len(report.failures))
        bar.advance(task, report.cached + len(report.failures))
        if todo:
            with _client(workers, timeout) as client:
                _run_pool(client, todo, cache, opts, workers, report, lambda: bar.advance(task))
    report.failed = len(report.failures)
    report.seconds = time.monotonic() - started
    if progress:
        _console().print(f"[bold]images:[/bold] {report.summary()}")
    return report


def fetch_image(
    url: str,
    cache_dir: str | Path,
    *,
    timeout: float = 20.0,
    max_bytes: int = 50_000_000,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    retries: int = 3,
    backoff: float = 0.5,
    max_retry_after: float = 60.0,
) -> Path:
    """Download one image (or find it in the cache); ImageLoadError names the URL and reason."""
    reason = refusal(url)
    if reason is not None:
        raise ImageLoadError(f"{url}: {reason}")
    hit = cached_path(url, cache_dir)
    if hit is not None:
        return hit
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    opts = _Options(timeout, max_bytes, max_pixels, max(0, retries), backoff, max_retry_after)
    watch = _Watch()
    with _client(1, timeout) as client:
        try:
            path, _size = _fetch(client, url, Path(cache_dir), opts, watch)
        except _Failure as exc:
            raise ImageLoadError(f"{url}: {exc.reason}") from None
        except BaseException:  # Ctrl-C: cut the read
            watch.cancel()
            raise
    return path


def _run_pool(
    client: httpx.Client,
    todo: list[str],
    cache: Path,
    opts: _Options,
    workers: int,
    report: FetchReport,
    tick,
) -> None:
    # Keep at most 2*workers futures alive: a 130,000-URL list never becomes 130,000 futures.
    # Ctrl-C cuts the downloads in flight (their sockets are shut down) and drops the queue,
    # without waiting on a stuck server; what was downloaded stays in the cache.
    pending: dict[Future, str] = {}
    queue = iter(todo)
    watch = _Watch()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="artsim-fetch")
    finished = False
    try:
        while True:
            while len(pending) < 2 * workers:
                url = next(queue, None)
                if url is None:
                    break
                pending[pool.submit(_fetch, client, url, cache, opts, watch)] = url
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                url = pending.pop(future)
                try:
                    path, size = future.result()
                except _Failure as exc:
                    report.failures[url] = exc.reason
                except Exception as exc:  # a bug or an OS error must not lose the other results
                    report.failures[url] = f"unexpected error ({type(exc).__name__}: {exc})"
                else:
                    report.paths[url] = path
                    report.fetched += 1
                    report.bytes_fetched += size
                tick()
        finished = True
    finally:
        if not finished:  # Ctrl-C or an error here: stop the workers rather than wait for them
            watch.cancel()
        pool.shutdown(wait=finished, cancel_futures=True)


def _fetch(
    client: httpx.Client, url: str, cache: Path, opts: _Options, watch: _Watch
) -> tuple[Path, int]:
    """Fetch url into the cache with retries; (path, bytes) or _Failure."""
    attempt = 0
    while True:
        try:
            return _attempt(client, url, cache, opts, watch)
        except _Failure as exc:
            if not exc.retryable or attempt >= opts.retries:
                if exc.retryable and opts.retries:
                    raise _Failure(f"{exc.reason} (gave up after {attempt + 1} attempts)") from None
                raise
            delay = opts.backoff * (2**attempt)
            if exc.retry_after is not None:
                if exc.retry_after > opts.max_retry_after:
                    raise _Failure(
                        f"{exc.reason}; server asks to retry after {exc.retry_after:.0f} s, "
                        f"longer than the {opts.max_retry_after:.0f} s we wait"
                    ) from None
                delay = max(delay, exc.retry_after)
            if watch.cancelled.wait(delay):
                raise _Failure("cancelled (interrupted)") from None
            attempt += 1


def _attempt(
    client: httpx.Client, url: str, cache: Path, opts: _Options, watch: _Watch
) -> tuple[Path, int]:
    if watch.cancelled.is_set():
        raise _Failure("cancelled (interrupted)")
    limit = 6 * opts.timeout
    deadline = time.monotonic() + limit
    key = cache_key(url)
    shard = cache / key[:2]
    sockets: list[socket.socket] = []
    expired = threading.Event()

    def trace(event: str, info: dict) -> None:  # httpx's trace extension: note new sockets
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            sock = info["return_value"].get_extra_info("socket")
            if sock is not None:
                sockets.append(sock)
                watch.add(sock)

    def expire() -> None:  # the deadline passed: wake the read blocked on this request's socket
        expired.set()
        for sock in sockets:
            _shut(sock)

    timer = threading.Timer(limit, expire)
    timer.daemon = True
    timer.start()
    try:
        with client.stream("GET", url.strip(), extensions={"trace": trace}) as response:
            status = response.status_code
            if not 200 <= status < 300:
                retryable = status in (408, 429) or status >= 500
                raise _Failure(
                    f"HTTP {status} {response.reason_phrase}".rstrip(),
                    retryable=retryable,
                    retry_after=_retry_after(response) if retryable else None,
                )
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype.startswith(_TEXT_TYPES):
                raise _Failure(f"not an image ({ctype})")
            length = _parse_length(response.headers.get("content-length"))
            if length is not None and length > opts.max_bytes:
                raise _Failure(
                    f"too large: {length:,} bytes announced, over max_bytes {opts.max_bytes:,}"
                )
            shard.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".part", dir=shard)
            tmp = Path(tmp_name)
            try:
                size = 0
                with os.fdopen(fd, "wb") as out:
                    # no chunk_size: each piece as it arrives, so the checks run however the
                    # server chunks (iter_bytes(64 KiB) waited for 64 KiB of a 1-byte trickle)
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > opts.max_bytes:
                            raise _Failure(
                                f"too large: over max_bytes {opts.max_bytes:,}, download aborted"
                            )
                        if time.monotonic() > deadline or expired.is_set():
                            raise _Failure(_too_slow(limit), retryable=True)
                        if watch.cancelled.is_set():
                            raise _Failure("cancelled (interrupted)")
                        out.write(chunk)
                # the body is in: stop the watchdog before the connection goes back to the
                # pool, where another request may take it
                timer.cancel()
                if size == 0:
                    raise _Failure("empty body")
                suffix = _verify(tmp, ctype, opts.max_pixels)
                final = shard / f"{key}{suffix}"
                os.replace(tmp, final)  # atomic: the cache only ever holds whole images
                return final, size
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
    except _Failure:
        raise
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        # a socket we shut down surfaces as a dropped connection or an OS error: say why
        if watch.cancelled.is_set():
            raise _Failure("cancelled (interrupted)") from None
        if expired.is_set():
            raise _Failure(_too_slow(limit), retryable=True) from None
        raise _transport_failure(exc, shard) from None
    finally:
        timer.cancel()


def _too_slow(limit: float) -> str:
    return f"timed out: no complete answer within {limit:.0f} s (6x the timeout)"


def _transport_failure(exc: Exception, shard: Path) -> _Failure:
    if isinstance(exc, httpx.TimeoutException):
        return _Failure(f"timed out ({type(exc).__name__})", retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError):
        return _Failure(f"connection dropped, body incomplete ({exc})", retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return _Failure(f"refused: redirected to an unsupported URL ({exc})")
    if isinstance(exc, httpx.TooManyRedirects):
        return _Failure(f"too many redirects ({exc})")
    if isinstance(exc, httpx.InvalidURL):
        return _Failure(f"malformed URL ({exc})")
    if isinstance(exc, httpx.TransportError):
        return _Failure(f"network error ({type(exc).__name__}: {exc})", retryable=True)
    if isinstance(exc, OSError):
        return _Failure(f"cannot write to the cache {shard} ({exc.strerror or exc})")
    return _Failure(f"bad answer ({type(exc).__name__}: {exc})")


def _verify(path: Path, ctype: str, max_pixels: int) -> str:
    """Check that path is a whole image within max_pixels; return the cache file suffix."""
    register_heif()  # a HEIC link is read as a HEIC file is
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise _Failure(
                    f"{width}x{height} = {width * height:,} pixels is over max_pixels {max_pixels:,}"
                )
            fmt = im.format or ""
            # decode at 1/8 scale where the format allows: still reads every byte of the stream
            # (not HEIF, whose draft may pick an embedded thumbnail and leave the rest unread)
            if fmt != "HEIF":
                im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            im.load()
    except _Failure:
        raise
    except UnidentifiedImageError:
        raise _Failure(f"not an image ({ctype or 'no content type'})") from None
    except Image.DecompressionBombError as exc:
        raise _Failure(f"over the pixel limit ({exc})") from None
    except (OSError, SyntaxError, ValueError, RuntimeError) as exc:  # RuntimeError: libheif
        raise _Failure(f"corrupt or truncated image ({exc})") from None
    return _SUFFIXES.get(fmt, ".img")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _parse_length(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _client(workers: int, timeout: float) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        # no keep-alive: a reused connection announces no socket before its answer's headers
        # (httpx traces only new ones), so a server trickling those headers could hold a
        # request past its deadline; a new connection per request is always watched
        limits=httpx.Limits(max_connections=workers, max_keepalive_connections=0),
        headers={"User-Agent": USER_AGENT},
    )


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console(),
        disable=not enabled,
    )
