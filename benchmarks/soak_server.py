"""Soak test of the artsim web server: mixed load for --minutes, watching memory and errors.

Starts the app `artsim serve` runs (bench_server.py's server process) on 127.0.0.1, then keeps
closed-loop clients busy: --id-clients searching by catalog id, --upload-clients uploading sample
images (they wait Retry-After after a 503, as a browser user would), and one client browsing
(/api/items pages and thumbnails). Every --sample seconds it records the resident memory (RSS,
psutil) of the server process and of its upload workers.

Reports per route: requests, errors, 503s (load shed), p50/p95 latency; and RSS growth from the
end of the warm-up (--warmup-minutes, models and caches loaded) to the end of the run, for the
server, the workers and both together. Issue 16 targets growth <= 10 % over 10 minutes.

    .venv/bin/python benchmarks/soak_server.py                  # 10 minutes
    .venv/bin/python benchmarks/soak_server.py --minutes 2 --json soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import (
    REPO,
    RawClient,
    catalog_ids,
    ensure_catalog,
    percentile,
    running_server,
    sample_images,
)

ROUTES = ("id", "upload", "items", "thumbnail")


class MemorySampler(threading.Thread):
    """RSS of the server and of its worker processes, every `every` seconds."""

    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.samples: list[tuple[float, int, int, int]] = []  # (t, server, workers, n workers)
        self.stop = threading.Event()

    def sample(self) -> None:
        import psutil

        try:
            server = self.proc.memory_info().rss
            workers, n = 0, 0
            for child in self.proc.children(recursive=True):
                try:
                    workers += child.memory_info().rss
                    n += 1
                except psutil.Error:
                    pass
        except psutil.Error:
            return
        self.samples.append((time.time(), server, workers, n))

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()


async def run_load(base: str, ids: list[str], images: list[bytes], args, deadline: float) -> dict:
    import httpx

    stats = {r: {"lat": [], "errors": 0, "shed": 0, "samples": []} for r in ROUTES}

    def record(route: str, t0: float, status: int, detail: str) -> None:
        st = stats[route]
        if status == 200:
            st["lat"].append((time.perf_counter() - t0) * 1000)
        elif status == 503:
            st["shed"] += 1
        else:
            st["errors"] += 1
            if len(st["samples"]) < 5:
                st["samples"].append(detail)

    async def id_client(seed: int) -> None:
        rng, raw = random.Random(seed), RawClient(base)
        while time.time() < deadline:
            t0 = time.perf_counter()
            path = "/api/search?" + urlencode({"id": rng.choice(ids), "k": args.k})
            try:
                status, body = await raw.get(path)
                record("id", t0, status, f"HTTP {status}: {body[:120]!r}")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                record("id", t0, 0, f"{type(exc).__name__}: {exc}")
                await raw.close()
        await raw.close()

    async def upload_client(client: httpx.AsyncClient, seed: int) -> None:
        rng = random.Random(seed)
        while time.time() < deadline:
            t0 = time.perf_counter()
            try:
                files = {"file": ("q.jpg", rng.choice(images), "image/jpeg")}
                r = await client.post("/api/search", files=files, data={"k": str(args.k)})
                record("upload", t0, r.status_code, f"HTTP {r.status_code}: {r.text[:120]}")
                if r.status_code == 503:
                    await asyncio.sleep(float(r.headers.get("retry-after", 1)))
            except httpx.HTTPError as exc:
                record("upload", t0, 0, f"{type(exc).__name__}: {exc}")

    async def browse_client(seed: int) -> None:
        rng, raw = random.Random(seed), RawClient(base)
        while time.time() < deadline:
            t0 = time.perf_counter()
            try:
                offset = rng.randrange(0, max(1, len(ids) - 60))
                status, body = await raw.get(f"/api/items?offset={offset}&limit=60")
                record("items", t0, status, f"HTTP {status}: {body[:120]!r}")
                t0 = time.perf_counter()
                item = rng.choice(ids)
                size = rng.choice((128, 256))
                status, body = await raw.get(
                    f"/api/items/{quote(item, safe='')}/thumbnail?size={size}"
                )
                record("thumbnail", t0, status, f"HTTP {status}")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                record("items", t0, 0, f"{type(exc).__name__}: {exc}")
                await raw.close()
            await asyncio.sleep(0.05)  # a person paging, not a load generator
        await raw.close()

    limits = httpx.Limits(max_connections=args.upload_clients + 2)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:
        tasks = [id_client(i) for i in range(args.id_clients)]
        tasks += [upload_client(client, 1000 + i) for i in range(args.upload_clients)]
        tasks += [browse_client(2000)]
        await asyncio.gather(*tasks)
    out = {}
    for route, st in stats.items():
        lat = st["lat"]
        out[route] = {
            "requests": len(lat),
            "errors": st["errors"],
            "shed_503": st["shed"],
            "p50_ms": round(percentile(lat, 50), 1),
            "p95_ms": round(percentile(lat, 95), 1),
            "error_samples": st["samples"],
        }
    return out


def growth(samples: list[tuple[float, int, int, int]], start_t: float) -> dict:
    after = [s for s in samples if s[0] >= start_t] or samples
    first, last = after[0], after[-1]
    out = {}
    for name, i in (("server", 1), ("workers", 2)):
        out[name] = _growth(first[i], last[i], max(s[i] for s in after))
    out["total"] = _growth(first[1] + first[2], last[1] + last[2], max(s[1] + s[2] for s in after))
    out["worker_processes"] = {"start": first[3], "end": last[3]}
    return out


def _growth(start: int, end: int, peak: int) -> dict:
    mb = 2**20
    return {
        "start_mb": round(start / mb, 1),
        "end_mb": round(end / mb, 1),
        "peak_mb": round(peak / mb, 1),
        "growth_pct": round(100 * (end - start) / start, 2) if start else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, default=REPO / "catalogs" / "nga-sample")
    ap.add_argument("--minutes", type=float, default=10.0, help="measured minutes")
    ap.add_argument(
        "--warmup-minutes",
        type=float,
        default=None,
        help="load before the RSS baseline is taken (default: a tenth of --minutes, at least 0.5)",
    )
    ap.add_argument("--id-clients", type=int, default=4)
    ap.add_argument("--upload-clients", type=int, default=2)
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("-k", type=int, default=12)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()
    warmup = args.warmup_minutes if args.warmup_minutes is not None else max(0.5, args.minutes / 10)

    import psutil

    ensure_catalog(args.catalog)
    with running_server(args.catalog, start_timeout=180) as (server, base):
        ids = catalog_ids(base)
        images = sample_images(args.images)
        sampler = MemorySampler(server.pid, args.sample)
        sampler.sample()
        sampler.start()
        try:
            baseline_t = time.time() + warmup * 60
            deadline = baseline_t + args.minutes * 60
            result = asyncio.run(run_load(base, ids, images, args, deadline))
            sampler.sample()
            alive = server.poll() is None
        finally:
            sampler.stop.set()
    memory = growth(sampler.samples, baseline_t)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.machine()}, {psutil.cpu_count(logical=True)} CPUs, "
        f"{platform.system()} {platform.release()}",
        "catalog": {"path": str(args.catalog), "paintings": len(ids)},
        "minutes": args.minutes,
        "warmup_minutes": warmup,
        "clients": {"id": args.id_clients, "upload": args.upload_clients, "browse": 1},
        "routes": result,
        "rss": memory,
        "server_alive_at_end": alive,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    errors = sum(r["errors"] for r in result.values())
    grew = memory["total"]["growth_pct"]
    return 1 if errors or not alive or (grew is not None and grew > 10) else 0


if __name__ == "__main__":
    sys.exit(main())
