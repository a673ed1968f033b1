"""Peak memory (RSS) of open_image on a huge, highly compressible PNG (issue 16: a 657 KB
13000 x 13000 PNG peaked at 2.96 GB).

Each measurement runs in a fresh process (ru_maxrss is a high-water mark), so the numbers are
the decode's own peak plus the interpreter. --baseline-src points at another checkout's src
(e.g. /work/main/src) to compare in the same run.

    python benchmarks/bench_image_memory.py --side 13000 --baseline-src /work/main/src
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent that made the PNG
CHILD = """
import json, re, sys, time
from artsim.images import open_image
hwm = lambda: int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) / 1024
before = hwm()
t = time.perf_counter()
loaded = open_image(sys.argv[1], max_side=int(sys.argv[2]))
print(json.dumps({"peak_mb": hwm(), "before_mb": before,
                  "seconds": time.perf_counter() - t, "size": loaded.image.size}))
"""


def make_png(path: Path, side: int, mode: str) -> None:
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    band = np.broadcast_to(ramp[None, :], (side, side))
    chans = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = np.ascontiguousarray(np.stack([band] * chans, axis=-1)) if chans > 1 else band
    Image.fromarray(np.ascontiguousarray(arr), mode).save(path, compress_level=6)


def measure(src: str, path: Path, max_side: int) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(max_side)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=13000)
    ap.add_argument("--mode", default="RGB", choices=["RGB", "RGBA", "L"])
    ap.add_argument("--max-side", type=int, default=260)
    ap.add_argument("--baseline-src", default=None)
    args = ap.parse_args()
    here = str(Path(__file__).resolve().parents[1] / "src")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.png"
        make_png(path, args.side, args.mode)
        print(f"{args.side}x{args.side} {args.mode} PNG, {path.stat().st_size / 1e3:.0f} KB")
        runs = [("this tree", here)] + (
            [("baseline", args.baseline_src)] if args.baseline_src else []
        )
        for label, src in runs:
            r = measure(src, path, args.max_side)
            print(
                f"{label:10s} peak RSS {r['peak_mb']:6.0f} MB (after imports {r['before_mb']:.0f})"
                f"  {r['seconds']:5.1f} s  -> {r['size']}"
            )


if __name__ == "__main__":
    main()
