"""Worker processes for the per-image detectors of the face and pose aspects.

MediaPipe, MTCNN and dlib's landmark fitting handle one image at a time on one core, so a
catalog run would leave the other cores idle. `DetectorPool` spreads a batch of images over
worker processes (`artsim.workers.process_pool`: a standard ProcessPoolExecutor, spawned, not
forked, since MediaPipe and torch keep threads), each loading its models once, on first use.
Workers exit when the indexing process dies, even by kill -9 or the out-of-memory killer.
Small batches run in-process: starting a worker costs a few seconds.

Results are the same as in-process (the same functions on the same pixels; each worker runs
torch on one thread, as the detectors already do); tests check it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from artsim.errors import ArtsimError
from artsim.workers import process_pool

T = TypeVar("T")

MIN_IMAGES_FOR_WORKERS = 4  # fewer images than this in a batch: not worth a process start
# each worker holds its own models: ~1 GB peak RSS measured (faces+poses 1.1)
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """One worker per CPU this process may use, at most MAX_DEFAULT_WORKERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


class DetectorPool:
    """`map(fn, items)` over worker processes, started on first use; `close()` stops them."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        if self.workers <= 1 or (self._pool is None and len(items) < MIN_IMAGES_FOR_WORKERS):
            return [fn(x) for x in items]
        if self._pool is None:
            # the death signal is safe here: workers start from the thread that calls map,
            # the indexing thread, which outlives the pool (Catalog.add closes it)
            self._pool = process_pool(self.workers, _init_worker, death_signal=True)
        try:
            # chunksize 1: detection time varies a lot between images (0 to many faces)
            return list(self._pool.map(fn, items))
        except BrokenProcessPool as exc:
            self._pool = None
            raise ArtsimError(
                f"a detector worker process died ({exc}); most often the machine ran out of "
                f"memory: each of the {self.workers} workers holds ~1 GB of models. Re-run with "
                "fewer (--detector-workers 1 keeps detection in the main process); the catalog "
                "is valid and the run resumes where it stopped"
            ) from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> DetectorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
