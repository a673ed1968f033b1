"""Load test of the artsim web server.

Starts `artsim serve`'s app on 127.0.0.1 in a subprocess, then runs closed-loop clients (each sends
its next request as soon as the previous one answers, no think time) for --duration seconds:
--id-clients against GET /api/search?id=<random catalog id>, and --upload-clients POSTing random
sample images to /api/search. Reports requests/s, p50/p95/p99 latency, errors, and the server's
peak RSS (psutil, sampled every 0.2 s). Uploads refused with 503 + Retry-After (load shed by the
server) are counted apart from errors, and every upload answer, 200 or 503, is timed: `answered_
within_s` is the share answered within --answer-within seconds (issue 16 targets 5 s).

    .venv/bin/python benchmarks/bench_server.py                      # 60 s, 50 + 10 clients
    .venv/bin/python benchmarks/bench_server.py --duration 10 --id-clients 10 --upload-clients 2
    .venv/bin/python benchmarks/bench_server.py --duration 30 --id-clients 0 --upload-clients 50

The catalog defaults to catalogs/nga-sample (the NGA sample, built with `artsim nga index` when
missing). Client and server share the machine: on 2 cores the clients take CPU from the server,
so the numbers are a floor for a server on its own machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("ARTSIM_DATA", REPO.parent / "shared" / "data")).resolve()


def ensure_catalog(path: Path) -> None:
    if (path / "manifest.json").is_file():
        return
    data = data_root() / "nga"
    print(f"building the NGA sample catalog at {path} ...", flush=True)
    cli = [sys.executable, "-c", "from artsim.cli import main; main()"]
    subprocess.run(
        [
            *cli,
            "nga",
            "index",
            str(data / "opendata"),
            "--images-dir",
            str(data / "images"),
            "--catalog",
            str(path),
            "--aspects",
            "global",  # as every earlier run of this benchmark (docs/benchmarks.md)
        ],
        check=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(
    catalog: Path, http: str = "auto", start_timeout: float = 120.0
) -> Iterator[tuple[subprocess.Popen, str]]:
    """This script's server process on a free port, up and answering /healthz; stopped on exit."""
    import httpx

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-only", "--catalog", str(catalog),
         "--port", str(port), "--http", http]
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + start_timeout
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.25)
        yield server, base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def catalog_ids(base: str) -> list[str]:
    """Every item id the server lists, page by page."""
    import httpx

    ids: list[str] = []
    while True:
        page = httpx.get(
            base + "/api/items", params={"offset": len(ids), "limit": 500}, timeout=30
        ).json()
        ids += [it["id"] for it in page["items"]]
        if len(ids) >= page["total"] or not page["items"]:
            return ids


def sample_images(n: int) -> list[bytes]:
    """n NGA sample images (seeded order), as the bytes an upload client sends."""
    files = sorted((data_root() / "nga" / "images").glob("*.jpg"))
    random.Random(0).shuffle(files)
    return [p.read_bytes() for p in files[:n]]


def serve(catalog: str, port: int, http: str = "auto") -> None:
    """The server process: the same app `artsim serve` runs."""
    import logging

    import uvicorn

    from artsim.server.app import create_app

    logging.getLogger("uvicorn.access").disabled = True
    uvicorn.run(
        create_app(catalog, warm=True),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http=http,
    )


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                rss = self.proc.memory_info().rss + sum(
                    c.memory_info().rss for c in self.proc.children(recursive=True)
                )
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            time.sleep(self.every)


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time (user + system) of the server process and of its upload workers."""
    import psutil

    proc = psutil.Process(pid)
    t = proc.cpu_times()
    workers = 0.0
    for child in proc.children(recursive=True):
        try:
            ct = child.cpu_times()
            workers += ct.user + ct.system
        except psutil.Error:
            pass
    return {"server": t.user + t.system, "workers": workers}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    i = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[i]


class RawClient:
    """A minimal keep-alive HTTP/1.1 GET client on asyncio streams. httpx costs the client about
    5 ms of CPU per request, twice what the server spends answering it: on a 2-core machine the
    load generator then measures itself. This one costs a fraction of a millisecond."""

    def __init__(self, base: str) -> None:
        hostport = base.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        if b"connection: close" in head.lower():
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def run_load(base: str, ids: list[str], images: list[bytes], args) -> dict:
    import httpx

    stats: dict[str, dict] = {
        kind: {"lat": [], "errors": 0, "error_samples": [], "shed": 0, "all": []}
        for kind in ("id", "upload")
    }
    limits = httpx.Limits(
        max_connections=args.id_clients + args.upload_clients + 4, max_keepalive_connections=None
    )
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:
        deadline = 0.0
        measuring = False

        async def worker(kind: str, seed: int) -> None:
            rng = random.Random(seed)
            raw = RawClient(base) if kind == "id" and args.client == "raw" else None
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status, retry_after = 0, 0.0
                try:
                    if raw is not None:
                        path = "/api/search?" + urlencode({"id": rng.choice(ids), "k": args.k})
                        status, body = await raw.get(path)
                        ok, detail = status == 200, f"HTTP {status}: {body[:120]!r}"
                        retry_after = 1.0
                    else:
                        if kind == "id":
                            r = await client.get(
                                "/api/search", params={"id": rng.choice(ids), "k": args.k}
                            )
                        else:
                            files = {"file": ("query.jpg", rng.choice(images), "image/jpeg")}
                            r = await client.post(
                                "/api/search",
                                files=files,
                                data={
                                    "k": str(args.k),
                                    "aspect": args.upload_aspect,
                                    "photo": args.upload_photo,
                                },
                            )
                        ok, status = r.status_code == 200, r.status_code
                        retry_after = float(r.headers.get("retry-after", 1))
                        detail = f"HTTP {r.status_code}: {r.text[:120]}"
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                    if raw is not None:
                        await raw.close()
                t1 = time.perf_counter()
                if measuring and t1 <= deadline:
                    st = stats[kind]
                    st["all"].append((t1 - t0) * 1000)
                    if ok:
                        st["lat"].append((t1 - t0) * 1000)
                    elif status == 503:
                        st["shed"] += 1
                    else:
                        st["errors"] += 1
                        if len(st["error_samples"]) < 5:
                            st["error_samples"].append(detail)
                if status == 503 and args.honor_retry_after:
                    await asyncio.sleep(retry_after)

        # warm-up (not measured), then the measured run
        deadline = time.perf_counter() + args.warmup
        tasks = [worker("id", i) for i in range(args.id_clients)]
        tasks += [worker("upload", 1000 + i) for i in range(args.upload_clients)]
        if args.warmup > 0:
            await asyncio.gather(*tasks)
            tasks = [worker("id", 2000 + i) for i in range(args.id_clients)]
            tasks += [worker("upload", 3000 + i) for i in range(args.upload_clients)]
        measuring = True
        started = time.perf_counter()
        deadline = started + args.duration
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    # only requests answered before the deadline count; slow uploads still in flight then are
    # waited for (drain) but not counted, so rates are over the nominal duration
    out = {"seconds": args.duration, "drain_seconds": round(elapsed - args.duration, 2)}
    for kind, st in stats.items():
        lat, every = st["lat"], st["all"]
        within = sum(1 for x in every if x <= args.answer_within * 1000)
        out[kind] = {
            "clients": args.id_clients if kind == "id" else args.upload_clients,
            "requests": len(lat),
            "errors": st["errors"],
            "shed_503": st["shed"],
            "answered": len(every),
            "answered_within_s": {
                str(args.answer_within): round(within / len(every), 4) if every else None
            },
            "max_any_ms": round(max(every), 1) if every else None,
            "rps": round(len(lat) / args.duration, 1),
            "p50_ms": round(percentile(lat, 50), 1),
            "p95_ms": round(percentile(lat, 95), 1),
            "p99_ms": round(percentile(lat, 99), 1),
            "max_ms": round(max(lat), 1) if lat else None,
            "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
            "error_samples": st["error_samples"],
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, default=REPO / "catalogs" / "nga-sample")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    ap.add_argument("--id-clients", type=int, default=50)
    ap.add_argument("--upload-clients", type=int, default=10)
    ap.add_argument("-k", type=int, default=12)
    ap.add_argument(
        "--images", type=int, default=20, help="distinct sample images the upload clients send"
    )
    ap.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="raw",
        help="id-search clients: a minimal asyncio HTTP/1.1 client (default: on one 2-core "
        "machine httpx's own CPU use, about 4 ms per request, would be what is measured), or "
        "httpx (uploads always use httpx)",
    )
    ap.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="uvicorn's HTTP parser (auto = httptools when installed, as `artsim serve` does)",
    )
    ap.add_argument("--upload-aspect", default="global", help="aspect of the upload searches")
    ap.add_argument(
        "--upload-photo",
        default="auto",
        choices=("auto", "off"),
        help="photo handling of global uploads (auto: localisation and verification, the "
        "server's default; off: the whole image only)",
    )
    ap.add_argument(
        "--answer-within", type=float, default=5.0, help="report the share answered within this"
    )
    ap.add_argument(
        "--honor-retry-after",
        action="store_true",
        help="upload clients wait Retry-After after a 503 (default: retry at once, the worst case)",
    )
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--serve-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_only:
        serve(str(args.catalog), args.port, args.http)
        return 0

    import httpx

    ensure_catalog(args.catalog)
    with running_server(args.catalog, args.http) as (server, base):
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            ids = catalog_ids(base)
            images = sample_images(args.images)
            # the first upload loads the encoder: not part of the measurement
            httpx.post(
                base + "/api/search",
                files={"file": ("q.jpg", images[0], "image/jpeg")},
                timeout=300,
            )
            rss_before = sampler.peak
            cpu_before = cpu_seconds(server.pid)
            client_cpu = time.process_time()
            result = asyncio.run(run_load(base, ids, images, args))
            client_cpu = time.process_time() - client_cpu
            cpu_after = cpu_seconds(server.pid)
        finally:
            sampler.stop.set()
    import psutil

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.machine()}, {psutil.cpu_count(logical=True)} CPUs, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "catalog": {"path": str(args.catalog), "paintings": len(ids)},
        "k": args.k,
        "id_client": args.client,
        "http_parser": args.http,
        **result,
        "server_rss_mb": {
            "after_warmup": round(rss_before / 2**20, 1),
            "peak": round(sampler.peak / 2**20, 1),
        },
        # CPU the server process and its upload workers used during the measured run: how much
        # of the machine they actually got, and the server's CPU cost per request
        "cpu_seconds": {
            **{k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_after},
            "clients": round(client_cpu, 1),  # warm-up included
        },
        "server_cpu_ms_per_request": round(
            1000
            * (cpu_after["server"] - cpu_before["server"])
            / max(1, result["id"]["requests"] + result["upload"]["requests"]),
            2,
        ),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    errors = result["id"]["errors"] + result["upload"]["errors"]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
