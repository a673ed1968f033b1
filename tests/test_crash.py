"""Crash consistency: kill -9 the indexer at random points while readers (and would-be second
writers) use the catalog; after every kill the catalog must open, hold exactly the paintings
that have vectors, each once, and be searchable; a final re-run must complete it exactly.

The writer and the reader are processes forked from a forkserver that has imported artsim
once, and index with a tiny deterministic encoder (mean colours on a 4x4 grid): the model is
beside the point here, the files on disk are the point, and this keeps 20+ kills in seconds.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
import traceback
from pathlib import Path

import pyarrow.compute
import pyarrow.dataset  # noqa: F401 - imported once in the forkserver, not in every writer
import pytest
import torch
import torch.nn.functional as F

import artsim.encoders
from artsim.catalog import Catalog, store
from artsim.catalog.check import check_catalog
from artsim.encoders.base import Encoder, Preprocess
from artsim.errors import CatalogError
from tests.images_factory import gradient

pytestmark = pytest.mark.slow

N_IMAGES = 900
BATCH = 3
MIN_KILLS = 20  # kills that land after the run wrote something
SEED = 1616


class TinyEncoder(Encoder):
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 4).flatten(1)


def tiny_encoder(*args, **kwargs) -> Encoder:
    return TinyEncoder(
        name="tiny-test",
        dim=48,
        preprocess=Preprocess(32, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), view="whole"),
        weights_hash="0" * 64,
        model=torch.nn.Identity(),
        channels_last=False,
    )


def _writer(path: str, src: str, limit: int | None = None, done=None) -> None:
    """Index `src` (its first `limit` images); `done` (shared) counts images as batches land."""
    artsim.encoders.load_encoder = tiny_encoder

    def report(n: int, total: int) -> None:
        done.value = n

    for _ in range(200):
        try:
            Catalog.open(path).add(
                src, batch_size=BATCH, limit=limit, workers=1, progress=report if done else False
            )
            return
        except CatalogError as exc:  # the reader's write attempt holds the lock: wait
            if "another artsim process" not in str(exc):
                raise
            time.sleep(0.01)
    raise AssertionError("the writer lock was never free")


def _reader(path: str, errors: str, stop, ready) -> None:
    """Open, check, search in a loop; now and then try to write too (must be refused or work)."""
    artsim.encoders.load_encoder = tiny_encoder
    rng = random.Random(os.getpid())
    loops = refused = 0
    try:
        while not stop.is_set():
            cat = Catalog.open(path)
            ids = cat.ids
            data = cat.aspect("global")
            assert len(set(ids)) == len(ids), "duplicate paintings"
            assert sorted(data.row_ids) == sorted(ids), "a painting without its vector"
            if len(ids) > 1:
                assert cat.search(rng.choice(ids), k=3)
            cat.info()
            ready.set()
            if loops % 20 == 0:
                try:
                    cat.add([], batch_size=BATCH)  # a second writer: refused while one runs
                except CatalogError as exc:
                    assert "another artsim process" in str(exc), exc
                    refused += 1
            loops += 1
    except BaseException:
        Path(errors).write_text(traceback.format_exc())
        raise
    Path(errors).with_suffix(".loops").write_text(f"{loops} {refused}")


def _check(path: Path, before: set[str]) -> set[str]:
    cat = Catalog.open(path)
    ids = cat.ids
    assert len(set(ids)) == len(ids)
    data = cat.aspect("global")
    assert sorted(data.row_ids) == sorted(ids)  # every painting has exactly one global row
    table = store.read_parts(path / "vectors" / "global" / "tiny-test")
    on_disk = set(table.column("item_id").to_pylist()) if table is not None else set()
    assert set(ids) <= on_disk  # stray rows (item row not yet written) are allowed, not shown
    assert set(ids) >= before, "a painting was lost"
    if len(ids) > 5:
        hits = cat.search(ids[-1], k=5)
        assert len(hits) == 5 and ids[-1] not in {h.id for h in hits}
    report = check_catalog(path)
    assert report.ok, report.problems
    assert cat.info()["aspects"]["global"]["items_done"] == len(ids)
    return set(ids)


def test_kill_the_indexer_at_random_points(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(N_IMAGES):
        gradient(48, 40, seed=i).save(src / f"p{i:04d}.jpg", quality=80)
    path = tmp_path / "cat"
    monkeypatch.setattr(artsim.encoders, "load_encoder", tiny_encoder)
    Catalog.create(path)

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.test_crash"])
    errors = tmp_path / "reader-errors.txt"
    stop, ready = ctx.Event(), ctx.Event()
    reader = ctx.Process(target=_reader, args=(str(path), str(errors), stop, ready))
    reader.start()
    assert ready.wait(120), "the reader did not start"

    rng = random.Random(SEED)
    seen: set[str] = set()
    kills = finished = mid_run = 0
    counts = []
    try:
        for run in range(5 * MIN_KILLS):
            if mid_run >= MIN_KILLS:
                break
            # every fourth run has a few images to do and may complete (merging parts while
            # the reader reads); the others index the whole folder and are killed
            limit = len(seen) + rng.randint(3, 9) if run % 4 == 3 else None
            done = ctx.Value("i", 0)
            writer = ctx.Process(target=_writer, args=(str(path), str(src), limit, done))
            writer.start()
            # the kill point: after a random number of images (0: during start-up), then a
            # random fraction of a batch, so that it lands in decoding, encoding or a write;
            # counted in images rather than seconds, so that a busy machine moves nothing
            target = 0 if rng.random() < 0.15 else rng.randint(1, 15)
            waited = time.monotonic()
            while writer.is_alive() and done.value < target and time.monotonic() - waited < 60:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.06))
            killed = writer.is_alive()
            if killed:
                os.kill(writer.pid, signal.SIGKILL)
                kills += 1
            writer.join()
            assert writer.exitcode in (0, -signal.SIGKILL), f"writer failed: {writer.exitcode}"
            finished += writer.exitcode == 0
            seen = _check(path, seen)
            counts.append(len(seen))
            mid_run += killed and done.value > 0  # killed after the run wrote some
    finally:
        stop.set()
        reader.join(30)
        if reader.is_alive():
            reader.kill()
    assert not errors.exists(), errors.read_text()
    assert reader.exitcode == 0
    reader_loops, refused = map(int, errors.with_suffix(".loops").read_text().split())
    assert kills >= MIN_KILLS and reader_loops > kills
    assert mid_run >= MIN_KILLS  # kills that interrupted real work, not start-up

    _writer(str(path), str(src))  # the final re-run, to completion
    final = _check(path, seen)
    print(
        f"\ncrash test: {kills} kills ({mid_run} after some writes), {finished} completed runs, "
        f"reader {reader_loops} loops ({refused} write attempts refused), paintings after each "
        f"run {counts}, final {len(final)}"
    )
    assert len(final) == N_IMAGES
    assert finished >= 1  # some runs completed, merging parts while the reader read
    assert not list(path.rglob("*.tmp"))
    assert len(store.list_parts(path / "items")) <= 32  # 100+ batches were merged on the way
