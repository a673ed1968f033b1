"""Indexing on a Ray cluster (`artsim index SRC --catalog C --engine ray`).

The driver does what `Catalog.add` does around the models: scan the source, skip what the
catalog already holds, download URL images (into the catalog's cache, which workers must be
able to read: a shared path on a real cluster), and write the results. Decoding and every
aspect's models run in Ray Data `map_batches` actors (`EmbedActor`, one model load per
actor, CPU or GPU). Each actor returns, per painting, either its aspect rows or the reason
it could not be read; the driver writes items and rows as atomic Parquet parts batch by
batch, exactly as the in-process pipeline does. So the resume rules are the same:

- a painting whose rows exist is skipped on the next run;
- `kill -9` of the driver loses at most the batches not yet written (the catalog stays
  valid: parts are renamed into place); a re-run finishes the job;
- a worker that dies mid-batch is restarted by Ray and the batch re-run
  (`max_restarts`/`max_task_retries`), so nothing is lost;
- unreadable images go to failures.csv through the same log.
"""

from __future__ import annotations

import logging
import pickle
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray

from artsim.analysis import analyse_batch
from artsim.catalog import (
    MANIFEST,
    Catalog,
    IndexInterrupted,
    IndexSummary,
    _load_one,
    _progress,
    _scan,
    store,
)
from artsim.catalog.aspects import AspectRow
from artsim.catalog.local import indexer_params
from artsim.errors import ArtsimError, ImageLoadError
from artsim.images import DEFAULT_MAX_PIXELS
from artsim.records import SourceItem
from artsim.sources import SourceScan

RAY_CONNECT_TIMEOUT_S = 5.0
ACTOR_RESTARTS = 3  # a worker killed mid-batch is restarted this often, its batch retried


class EmbedActor:
    """Ray Data actor: opens the catalog's models once, then decodes and embeds batches.

    Input rows: id, image, metadata (JSON), aspects (comma-separated, those still to do).
    Output rows: id, payload (pickled {"size": (w, h), "rows": {aspect: [AspectRow]}} or
    {"error": reason})."""

    def __init__(self, catalog_path: str, aspects: Sequence[str], max_pixels: int) -> None:
        path = Path(catalog_path)
        self.catalog = Catalog(path, store.read_json(path / MANIFEST))
        self.catalog.require_int8_network()  # never fp32 vectors into an int8 catalog
        self.indexers = self.catalog.indexers(list(aspects))
        self.max_side = max(ix.max_side for ix in self.indexers)
        self.max_pixels = max_pixels

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import json

        items = [
            SourceItem(i, img, json.loads(m) if m else {})
            for i, img, m in zip(batch["id"], batch["image"], batch["metadata"], strict=True)
        ]
        todo = {
            it.id: set(str(a).split(",")) for it, a in zip(items, batch["aspects"], strict=True)
        }
        payload: dict[str, dict[str, Any]] = {}
        ok = []
        for it in items:
            loaded = _load_one(it, self.max_side, self.max_pixels)
            if isinstance(loaded, ImageLoadError):
                payload[it.id] = {"error": str(loaded)}
            else:
                ok.append((it, loaded))
                payload[it.id] = {"size": loaded.original_size, "rows": {}}
        # the same analysis stage as Catalog.add: one analysis per painting, then rows
        wanted = [todo[it.id] for it, _ in ok]
        analyses = analyse_batch(
            [li for _, li in ok],
            wanted,
            encoder=self.catalog.encoder,
            local_params=indexer_params(self.indexers),
        )
        for ix in self.indexers:
            for (it, _), an, want in zip(ok, analyses, wanted, strict=True):
                if ix.aspect in want:
                    for row in ix.rows(it, an):
                        payload[row.item_id]["rows"].setdefault(ix.aspect, []).append(row)
        return {
            "id": [it.id for it in items],
            "payload": [pickle.dumps(payload[it.id]) for it in items],
        }


def check_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Fail fast (seconds, not Ray's minute of retries) when the cluster cannot be reached."""
    hostport = address.removeprefix("ray://")
    if address in ("auto", "local") or ":" not in hostport:
        return  # Ray resolves these itself
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise ArtsimError(
            f"cannot reach the Ray cluster at {address} ({exc}); start one with "
            "`ray start --head` and pass the address it prints, or leave out --ray-address "
            "to run a local cluster"
        ) from None


def _connect(address: str | None, num_cpus: int | None, num_gpus: float) -> bool:
    """Connect to (or start) Ray. Returns True when this call started it."""
    if ray.is_initialized():
        return False
    if address:
        check_address(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError) as exc:
            raise ArtsimError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    else:
        ray.init(
            num_cpus=num_cpus,
            # ray types it int; a fraction (--num-gpus 0.5) is passed on as given
            num_gpus=num_gpus or None,  # type: ignore[arg-type]
            log_to_driver=False,
            logging_level=logging.ERROR,
            include_dashboard=False,
        )
    return True


def add_with_ray(
    catalog: Catalog,
    source: str | Path | Sequence[SourceItem] | SourceScan,
    *,
    aspects: Sequence[str] | None = None,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    limit: int | None = None,
    ray_address: str | None = None,
    num_workers: int | None = None,
    num_gpus: float = 0,
    progress: bool | Callable[[int, int], None] = False,
    actor_cls: type = EmbedActor,
) -> IndexSummary:
    """`Catalog.add` with decoding and embedding on a Ray cluster (see the module doc).

    num_workers: embedding actors (default: one per CPU of the cluster, or one per GPU).
    num_gpus: GPUs for the whole job, shared evenly by the actors. aspects: as `Catalog.add`'s
    (None: global + local for a new catalog, else global and those it has for most paintings)."""
    started = time.perf_counter()
    scan, items, summary = _scan(source, limit)
    started_ray = _connect(ray_address, num_workers, num_gpus)
    try:
        with catalog._locked():
            for p in scan.problems:
                catalog._log_failure(p.where, None, p.reason)
            indexers, done, pending = catalog._plan(items, aspects)
            summary.skipped_existing = len(items) - len(pending)
            pending = catalog._resolve_urls(pending, summary, max_pixels)
            catalog._prepare_int8(pending, max_pixels)  # before any worker loads the network
            by_id = {it.id: it for it in pending}
            bar = _progress(progress, len(pending))
            try:
                if pending:
                    _run(
                        catalog, pending, by_id, indexers, done, summary, bar,
                        batch_size=batch_size, max_pixels=max_pixels, num_workers=num_workers,
                        num_gpus=num_gpus, actor_cls=actor_cls,
                    )  # fmt: skip
            except KeyboardInterrupt:
                summary.interrupted = True
            finally:
                bar(None)
                catalog._finish_run(votes=not summary.interrupted and sys.exc_info()[0] is None)
    finally:
        if started_ray:
            ray.shutdown()
    summary.seconds = time.perf_counter() - started
    if summary.interrupted:
        raise IndexInterrupted(summary)
    return summary


def _run(
    catalog: Catalog,
    pending: list[SourceItem],
    by_id: dict[str, SourceItem],
    indexers: list,
    done: dict[str, set[str]],
    summary: IndexSummary,
    bar: Callable[[int | None], None],
    *,
    batch_size: int,
    max_pixels: int,
    num_workers: int | None,
    num_gpus: float,
    actor_cls: type,
) -> None:
    import json

    resources = ray.cluster_resources()
    if num_gpus and resources.get("GPU", 0) < num_gpus:
        raise ArtsimError(
            f"--num-gpus {num_gpus:g}: the Ray cluster has {resources.get('GPU', 0):g} GPUs"
        )
    workers = num_workers or (
        max(1, int(num_gpus)) if num_gpus else max(1, int(resources.get("CPU", 1)))
    )
    ds = ray.data.from_items(
        [
            {
                "id": it.id,
                "image": it.image,
                "metadata": json.dumps(it.metadata, default=str, ensure_ascii=False),
                "aspects": ",".join(ix.aspect for ix in indexers if it.id not in done[ix.aspect]),
            }
            for it in pending
        ],
        override_num_blocks=max(1, min(len(pending) // batch_size, 10 * workers)),
    )
    out = ds.map_batches(
        actor_cls,
        fn_constructor_kwargs={
            "catalog_path": str(catalog.path.resolve()),
            "aspects": [ix.aspect for ix in indexers],
            "max_pixels": max_pixels,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        num_gpus=num_gpus / workers if num_gpus else None,
        max_restarts=ACTOR_RESTARTS,
        max_task_retries=ACTOR_RESTARTS,
    )
    by_ix = {ix.aspect: ix for ix in indexers}
    for batch in out.iter_batches(batch_size=batch_size, batch_format="numpy"):
        ok: list[tuple[SourceItem, _Size]] = []
        rows: dict[str, list[AspectRow]] = {a: [] for a in by_ix}
        for item_id, blob in zip(batch["id"], batch["payload"], strict=True):
            item = by_id[str(item_id)]
            res = pickle.loads(blob)
            if "error" in res:
                catalog._log_failure(item.image, item.id, res["error"])
                summary.failed += 1
                continue
            ok.append((item, _Size(res["size"])))
            for aspect, aspect_rows in res["rows"].items():
                rows[aspect].extend(aspect_rows)
        if ok:
            for aspect, aspect_rows in rows.items():
                if aspect_rows:
                    catalog._write_rows(by_ix[aspect], aspect_rows)
                    summary.aspects[aspect] = summary.aspects.get(aspect, 0) + sum(
                        r.row_id is not None for r in aspect_rows
                    )
            # last, as in Catalog.add: a painting is in the catalog only with all its rows
            catalog._write_items(ok)
            summary.added += len(ok)
        bar(len(batch["id"]))


class _Size:
    """What `Catalog._write_items` reads of a decoded image: its original size."""

    __slots__ = ("original_size",)

    def __init__(self, size: tuple[int, int]) -> None:
        self.original_size = (size[0], size[1])
