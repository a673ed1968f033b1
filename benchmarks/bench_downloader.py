"""Throughput of artsim.sources.iiif.fetch_images against a local IIIF-style server.

The server runs in its own process (so it does not share the client's GIL), serves the NGA
sample images (shared/data/nga/images: 330 JPEGs, up to 1024 px, ~110 KB on average) under
`/iiif/<objectid>/full/!1024,1024/0/default.jpg`, and waits --latency ms before each answer
to stand in for a remote server. Each setting downloads every image once into a fresh cache
(then a second, all-cached run shows the resume cost). Numbers are for this machine's
loopback, so they are an upper bound for the network part and a fair measure of the client's
own cost (hashing, writing, decoding each image at 1/8 scale to verify it).

    .venv/bin/python benchmarks/bench_downloader.py [--workers 8] [--latency-ms 20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("ARTSIM_DATA", REPO.parent / "shared" / "data")).resolve()


def serve(folder: str, latency: float, port_queue) -> None:
    images = {p.stem: p.read_bytes() for p in Path(folder).glob("*.jpg")}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real IIIF server

        def log_message(self, format, *args):
            pass

        def do_GET(self):
            parts = self.path.split("/")  # ['', 'iiif', oid, 'full', '!W,H', '0', 'default.jpg']
            body = images.get(parts[2]) if len(parts) == 7 and parts[1] == "iiif" else None
            time.sleep(latency)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=data_root() / "nga" / "images")
    parser.add_argument("--workers", type=int, nargs="+", default=[8])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--repeat", type=int, default=2, help="copies of the URL list (distinct URLs)"
    )
    args = parser.parse_args()

    from artsim.sources.iiif import fetch_images, iiif_image_url

    files = sorted(args.images.glob("*.jpg"))
    if not files:
        sys.exit(f"no JPEGs in {args.images} (set ARTSIM_DATA or --images)")
    queue = mp.Queue()
    proc = mp.Process(
        target=serve, args=(str(args.images), args.latency_ms / 1000, queue), daemon=True
    )
    proc.start()
    port = queue.get(timeout=30)
    try:
        # --repeat makes distinct URLs for the same files (a size the server ignores)
        urls = [
            iiif_image_url(f"http://127.0.0.1:{port}/iiif/{p.stem}", 1024 - r, 1024 - r)
            for r in range(args.repeat)
            for p in files
        ]
        total_mb = sum(p.stat().st_size for p in files) * args.repeat / 1e6
        print(
            f"{len(urls)} images ({total_mb:.1f} MB) from {args.images}, "
            f"{args.latency_ms:.0f} ms injected latency, {os.cpu_count()} CPU cores\n"
        )
        print("| workers | images | failed | seconds | images/s | MB/s | resume (all cached) s |")
        print("|---|---|---|---|---|---|---|")
        for workers in args.workers:
            with tempfile.TemporaryDirectory(prefix="artsim-dl-bench-") as cache:
                started = time.perf_counter()
                report = fetch_images(urls, cache, workers=workers, progress=False)
                seconds = time.perf_counter() - started
                started = time.perf_counter()
                again = fetch_images(urls, cache, workers=workers, progress=False)
                resume = time.perf_counter() - started
                assert again.fetched == 0, "resume fetched again"
                print(
                    f"| {workers} | {report.fetched} | {report.failed} | {seconds:.2f} "
                    f"| {report.fetched / seconds:.1f} | {report.bytes_fetched / 1e6 / seconds:.2f} "
                    f"| {resume:.2f} |"
                )
    finally:
        proc.terminate()
        proc.join()


if __name__ == "__main__":
    main()
