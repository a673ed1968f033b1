"""Uploaded images are analysed off the event loop, in a standard executor with its own limits.

By default a `concurrent.futures.ProcessPoolExecutor`: each worker process opens the catalog and
loads the encoder once (its initializer), runs at a lower CPU priority (nice +5) so that
searches by id answer first, and exits when the server dies. Worker processes are started with
"spawn": a script that creates the app must do so under `if __name__ == "__main__":`, the
usual rule of multiprocessing (`artsim serve` and uvicorn's command line do).

Uploads never take one of AnyIO's threads while they wait: the route awaits the executor's
future. Admission is decided up front, from the measured service time, so that an accepted
upload is expected to be answered within a sixth of `answer_within` (and is answered, result
or 503, within `answer_within`); the others get 503 with a Retry-After at once, instead of queueing until the client gives up. A worker that dies breaks the pool
(BrokenProcessPool): a new pool is built and the upload is tried once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

if TYPE_CHECKING:
    from artsim.catalog import Catalog
    from artsim.search.options import SearchOptions

log = logging.getLogger("artsim.server")

ANSWER_WITHIN_S = 5.0  # an accepted upload is answered (result or 503) within this
# admission aims far below that hard limit: an upload is accepted only when its expected answer
# time is within a sixth of it (0.83 s at 5 s), so that under a burst answered uploads stay
# fast and the rest get 503 at once; the hard limit still covers a machine that is slow
ADMIT_SHARE = 1 / 6
COLD_TIMEOUT_S = 180.0  # until a worker has answered once: models are loading
WAITING_PER_PROCESS = 16  # never more queued than this, whatever the estimate (memory)


class UploadExecutor:
    """Runs upload analyses on an executor made by `make_pool`, `processes` at a time."""

    def __init__(
        self,
        make_pool: Callable[[], Executor],
        processes: int,
        *,
        max_waiting: int | None = None,
        answer_within: float = ANSWER_WITHIN_S,
        cold_timeout: float = COLD_TIMEOUT_S,
        warm_task: Callable[[], tuple[int, float, Any]] | None = None,
    ) -> None:
        self._make_pool = make_pool
        self._warm_task = warm_task
        self.processes = max(1, processes)
        self.max_waiting = (
            WAITING_PER_PROCESS * self.processes if max_waiting is None else max_waiting
        )
        self.answer_within = answer_within
        self.cold_timeout = cold_timeout
        self._lock = threading.Lock()
        self._pool: Executor | None = None
        self._generation = 0
        self._inflight = 0  # submitted and not finished: queued, running, or timed out but running
        # moving average of the seconds one analysis takes, measured in the worker
        self._service_s: float | None = None
        self._warm_workers: set[int] = set()

    # ------------------------------------------------------------------ construction
    @classmethod
    def in_processes(cls, catalog_path: Path, processes: int, **kwargs: Any) -> UploadExecutor:
        import multiprocessing

        processes = max(1, processes)
        cores = os.cpu_count() or 2
        threads = max(1, cores // processes - (1 if cores > 2 else 0))
        make = functools.partial(
            ProcessPoolExecutor,
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(str(catalog_path), threads, os.getpid()),
        )
        warm = functools.partial(warm_worker, str(catalog_path))
        return cls(make, processes, warm_task=warm, **kwargs)

    @classmethod
    def in_threads(cls, catalog: Any, threads: int, **kwargs: Any) -> UploadExecutor:
        """For an injected catalog object (tests, notebooks): analysed in this process."""
        make = functools.partial(
            ThreadPoolExecutor,
            max_workers=max(1, threads),
            thread_name_prefix="artsim-upload",
            initializer=_load_encoder,
            initargs=(catalog, threading.Lock()),  # one load, not one per racing thread
        )
        return cls(make, threads, **kwargs)

    def _current(self) -> tuple[Executor, int]:
        with self._lock:
            if self._pool is None:
                self._pool = self._make_pool()
                self._warm_workers = set()
            return self._pool, self._generation

    def _replace(self, generation: int) -> None:
        """A worker died: the pool is broken for good. Build a new one (once per breakage)."""
        with self._lock:
            if generation != self._generation or self._pool is None:
                return
            old, self._pool = self._pool, None
            self._generation += 1
        log.error("an upload worker died (out of memory?); starting a new pool")
        old.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ admission
    @property
    def warm(self) -> bool:
        """A job has finished on this pool: its models are loaded and its speed is known.
        (Until then the time limit is cold_timeout, and only max_waiting limits the queue.)"""
        return bool(self._warm_workers)

    @property
    def inflight(self) -> int:
        return self._inflight

    def stats(self) -> dict[str, Any]:
        """For /api/info: workers, uploads in flight, measured seconds per analysis."""
        service = self._service_s
        return {
            "workers": self.processes,
            "in_flight": self._inflight,
            "max_waiting": self.max_waiting,
            "seconds_per_upload": round(service, 3) if service is not None else None,
            "answer_within_s": self.answer_within,
        }

    def retry_after(self) -> str:
        """Seconds until a worker is likely free again: a client that waits this long finds a
        place (a longer wait would leave the workers idle while refused clients sleep)."""
        service = self._service_s if self._service_s is not None else 1.0
        return str(max(1, min(30, math.ceil(service / self.processes))))

    def expected_wait(self, ahead: int) -> float:
        """Seconds until a new upload with `ahead` uploads before it is answered."""
        service = self._service_s if self._service_s is not None else 1.0
        return math.ceil((ahead + 1) / self.processes) * service

    def admit(self) -> Reservation:
        """A place for one upload, or 503 with Retry-After at once: past the queue limit, or
        when the uploads ahead would not leave it time to be answered within answer_within.
        Called before the request body is read, so that refusing costs next to nothing."""
        with self._lock:
            ahead = self._inflight
            full = ahead >= self.processes + self.max_waiting or (
                ahead >= self.processes
                and self.warm
                and self.expected_wait(ahead) > ADMIT_SHARE * self.answer_within
            )
            if not full:
                self._inflight += 1
                return Reservation(self)
        raise HTTPException(
            503,
            "too many uploads in progress; try again in a moment",
            headers={"Retry-After": self.retry_after()},
        )

    def _finished(self, reservation: Reservation, fut: Future) -> None:
        reservation.release()  # runs before the awaiting route resumes (callback order)
        if fut.cancelled() or fut.exception() is not None:
            return
        worker, seconds, _ = fut.result()
        with self._lock:
            self._warm_workers.add(worker)
            prev = self._service_s
            self._service_s = seconds if prev is None else 0.8 * prev + 0.2 * seconds

    # ------------------------------------------------------------------ running
    async def run(self, fn: Callable[..., tuple[int, float, Any]], *args: Any) -> Any:
        """admit() then run_admitted()."""
        started = time.monotonic()
        return await self.run_admitted(self.admit(), fn, *args, started=started)

    async def run_admitted(
        self,
        reservation: Reservation,
        fn: Callable[..., tuple[int, float, Any]],
        *args: Any,
        started: float | None = None,
    ) -> Any:
        """fn(*args) on the executor; fn returns (worker, seconds it took, result). 503 when it
        is not answered in time (counted from `started`, time.monotonic() when the request
        came in), or when the worker died twice. The reservation is released when the job
        ends (a job past its time still holds its place while it runs)."""
        started = time.monotonic() if started is None else started
        try:
            for attempt in (1, 2):
                pool, generation = self._current()
                reservation.acquire()
                try:
                    fut = pool.submit(fn, *args)
                except (BrokenProcessPool, RuntimeError):  # broken or shut down since
                    reservation.release()
                    self._replace(generation)
                    continue
                fut.add_done_callback(functools.partial(self._finished, reservation))
                # 90 %: what is left of the time goes to the reply and the network
                budget = 0.9 * self.answer_within if self.warm else self.cold_timeout
                try:
                    _, _, result = await asyncio.wait_for(
                        asyncio.wrap_future(fut), max(0.1, budget - (time.monotonic() - started))
                    )
                    return result
                except BrokenProcessPool:
                    self._replace(generation)
                    if attempt == 1:
                        log.warning("retrying an upload on a new worker pool")
                        continue
                    raise HTTPException(
                        503, "the image analysis worker failed; try again",
                        headers={"Retry-After": "2"},
                    ) from None  # fmt: skip
                except TimeoutError:
                    raise HTTPException(
                        503, "the server is too busy to analyse this image now; try again",
                        headers={"Retry-After": self.retry_after()},
                    ) from None  # fmt: skip
        finally:
            if not reservation.submitted:
                reservation.release()
        raise HTTPException(
            503, "the image analysis workers could not start", headers={"Retry-After": "5"}
        )

    def warm_up(self) -> None:
        """Load every worker's models now (blocking; run from a background thread)."""
        if self._warm_task is None:
            return
        pool, _ = self._current()
        futures = [pool.submit(self._warm_task) for _ in range(self.processes)]
        for f in futures:
            with contextlib.suppress(Exception):
                pid, _, _ = f.result(timeout=self.cold_timeout)
                with self._lock:
                    self._warm_workers.add(pid)


class Reservation:
    """One admitted upload's place in the executor's count, released exactly once per hold."""

    def __init__(self, executor: UploadExecutor) -> None:
        self._executor = executor
        self._held = True  # admit() counted it
        self.submitted = False

    def acquire(self) -> None:
        with self._executor._lock:
            if not self._held:
                self._held = True
                self._executor._inflight += 1
        self.submitted = True

    def release(self) -> None:
        with self._executor._lock:
            if self._held:
                self._held = False
                self._executor._inflight -= 1


# ---------------------------------------------------------------------- in the worker process
@functools.cache
def worker_catalog(catalog_path: str) -> Catalog:
    """The catalog opened once per worker process."""
    from artsim.catalog import Catalog

    return Catalog.open(catalog_path)


def init_worker(catalog_path: str, threads: int, parent_pid: int) -> None:
    """ProcessPoolExecutor initializer: lower priority, torch threads, catalog and encoder."""
    with contextlib.suppress(OSError):
        os.nice(5)  # below the server process: searches by id answer first
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)
    catalog = worker_catalog(catalog_path)
    if "global" in catalog.aspect_names():
        _ = catalog.encoder
        catalog.vector_index("global")


def _exit_with_parent(parent_pid: int) -> None:
    """Workers must not outlive a server that was killed (kill -9, OOM)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def warm_worker(catalog_path: str) -> tuple[int, float, None]:
    """Load the face and pose models too (by searching a blank image, which finds nothing),
    and the keypoint-vote index of photo queries."""
    from PIL import Image

    from artsim.errors import ArtsimError
    from artsim.search import Query

    started = time.perf_counter()
    catalog = worker_catalog(catalog_path)
    blank = Image.new("RGB", (64, 64), (128, 128, 128))
    for aspect in ("face", "pose"):
        if aspect in catalog.aspect_names():
            with contextlib.suppress(ArtsimError, ImportError):
                catalog.search(Query(source=blank, label="warm-up"), k=1, aspect=aspect)
    if "local" in catalog.aspect_names():
        # photo queries' keypoint votes: read (or, for a catalog indexed before they
        # existed, built) now, not by the first uploaded photo
        catalog.load_vote_index()
    return os.getpid(), time.perf_counter() - started, None


def search_upload(
    catalog: Catalog | str, data: bytes, label: str, opts: SearchOptions
) -> tuple[int, float, list[Any]]:
    """One search from uploaded bytes: (worker, seconds, results). `catalog` is a path in a
    worker process (opened once there), or the injected catalog object in a thread."""
    from artsim.search import Query

    started = time.perf_counter()
    in_process = isinstance(catalog, str)
    cat = worker_catalog(catalog) if isinstance(catalog, str) else catalog
    results = cat.search(
        Query(source=data, label=label),
        k=opts.k,
        aspect=opts.aspect,
        where=list(opts.where) or None,
        **opts.aspect_options(),
    )
    # results cross a process boundary as plain dicts
    payload: list[Any] = [r.to_dict() for r in results] if in_process else results
    worker = os.getpid() if in_process else threading.get_ident()
    return worker, time.perf_counter() - started, payload


def _load_encoder(catalog: Any, lock: threading.Lock) -> None:
    if hasattr(catalog, "encoder"):
        with lock:
            _ = catalog.encoder
