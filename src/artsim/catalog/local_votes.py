"""A shortlist of a photo query from local features: each of the photo's RootSIFT keypoints
votes for the paintings that own its nearest catalog keypoints.

The global vector finds a painting in a photo only when localisation hands it a good view of
it: a painting cut along a strong edge inside it, a steep perspective or a crowded wall leave
the right painting out of the global shortlist, and verification never sees it. Votes do not
depend on localisation (the inverted file of classic instance retrieval), so the photo search
adds the paintings with the most votes to the global shortlist, and verification decides.

The index is FAISS ``IVF,PQ`` (L2 on unit RootSIFT, 4-bit fast-scan PQ: 16 bytes and an 8-byte id a
keypoint) over
the catalog's stored local features (`artsim.catalog.local`), built from them on first use
and kept beside them as ``votes-<fingerprint>.faiss``. It is built again when the store
holds over a tenth more paintings than it covers (a query that computes missing features on
demand adds a few; paintings it lacks only miss their votes). ``max_keypoints`` is the memory budget: beyond it each
painting keeps fewer of its keypoints (about 200 MB at the default 8 million).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from artsim.catalog.local import LocalFeatures, LocalStore

MAX_KEYPOINTS = 8_000_000  # the index's memory budget: 24 bytes a keypoint
MIN_PAINTINGS = 200  # below this the global shortlist already holds most of the catalog
NEIGHBOURS = 8  # catalog keypoints each query keypoint votes through
NPROBE = 16
PQ_CODES = 32  # 4 bits each: 16 bytes a keypoint
TRAIN_SAMPLE = 60_000
STALE_SHARE = 0.9  # an index built for at least this share of the store's paintings serves


@dataclass(frozen=True, slots=True)
class VoteIndex:
    """The FAISS index over catalog keypoints; its ids are positions in ``item_ids``."""

    index: Any  # faiss.IndexIVFPQFastScan
    item_ids: list[str]
    per_painting: int  # keypoints kept per painting (all of them under the budget)

    def votes(self, query: LocalFeatures, *, neighbours: int = NEIGHBOURS) -> dict[str, float]:
        """Painting id -> how many of the query's keypoints have one of their ``neighbours``
        nearest catalog keypoints in it (a keypoint votes once per painting)."""
        if not len(query) or not self.item_ids:
            return {}
        _, ids = self.index.search(query.unit_desc(), neighbours)
        out: dict[str, float] = {}
        for row in ids:
            for p in set(row[row >= 0].tolist()):
                item = self.item_ids[p]
                out[item] = out.get(item, 0.0) + 1.0
        return out

    def top(
        self,
        query: LocalFeatures,
        n: int,
        *,
        keep: Callable[[str], bool] = lambda item_id: True,
        min_votes: float = 2.0,
    ) -> list[tuple[str, float]]:
        """The ``n`` paintings with the most votes (at least ``min_votes``) that ``keep``."""
        ranked = sorted(self.votes(query).items(), key=lambda kv: -kv[1])
        return [(i, v) for i, v in ranked if v >= min_votes and keep(i)][:n]


def fingerprint(store: LocalStore, max_keypoints: int) -> str:
    """Of the store's parts (append-only, so their names say what they hold) and the budget."""
    h = hashlib.sha1(str(max_keypoints).encode())
    for name in sorted(store.part_names()):
        h.update(name.encode())
    return h.hexdigest()[:16]


def _unit(desc: np.ndarray) -> np.ndarray:
    d = desc.astype(np.float32)
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)


def _keypoints(
    store: LocalStore, per: int, chunk: int = 200_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(unit descriptors, painting positions) in chunks of about ``chunk`` keypoints, over
    every painting of the store in ``store.ids()`` order, ``per`` keypoints each at most."""
    pos = {item: i for i, item in enumerate(store.ids())}
    descs: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    size = 0
    for ids, desc, n in store.blocks(per):
        valid = np.arange(desc.shape[1])[None, :] < n[:, None]
        owner = np.broadcast_to(np.array([pos[i] for i in ids], np.int64)[:, None], valid.shape)
        descs.append(_unit(desc[valid]))
        owners.append(owner[valid])
        size += int(valid.sum())
        if size >= chunk:
            yield np.concatenate(descs), np.concatenate(owners)
            descs, owners, size = [], [], 0
    if size:
        yield np.concatenate(descs), np.concatenate(owners)


def build_vote_index(
    store: LocalStore,
    *,
    max_keypoints: int = MAX_KEYPOINTS,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> VoteIndex:
    """Train and fill the index from every painting in the store (see the module docstring)."""
    import faiss

    item_ids = store.ids()
    per = int(min(store.n_features, max(8, max_keypoints // max(1, len(item_ids)))))
    total = store.keypoint_count(per)
    # IVF lists of a few thousand keypoints; k-means on a sample (40x the lists at least)
    nlist = int(min(4096, max(16, 2 ** round(np.log2(max(1.0, total / 2000))))))
    rng = np.random.default_rng(0)
    want = min(total, max(TRAIN_SAMPLE, 40 * nlist))
    sample: list[np.ndarray] = []
    for d, _ in _keypoints(store, per):
        take = rng.random(len(d)) < want / max(1, total)
        sample.append(d[take])
    train = np.concatenate(sample) if sample else np.zeros((0, 128), np.float32)
    # 4-bit fast-scan PQ: trains in a second (8-bit PQ codebooks took minutes) and scans
    # in SIMD registers
    index = faiss.index_factory(128, f"IVF{nlist},PQ{PQ_CODES}x4fs")
    if len(train) < max(nlist, 256):
        # too few keypoints to train lists and codebooks: one list, exact codes
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(128), 128, 1)
        train = np.concatenate([d for d, _ in _keypoints(store, per)] or [train])
    index.train(train)
    done = 0
    for d, owner in _keypoints(store, per):
        index.add_with_ids(d, owner)
        done += len(d)
        progress(done, total)
    faiss.extract_index_ivf(index).nprobe = NPROBE
    return VoteIndex(index, item_ids, per)


def _paths(store: LocalStore, key: str) -> tuple[Path, Path]:
    return store.votes_folder / f"votes-{key}.faiss", store.votes_folder / f"votes-{key}.json"


def _read(meta_file: Path, max_keypoints: int, min_items: int) -> VoteIndex | None:
    import faiss

    idx_file = meta_file.with_suffix(".faiss")
    try:
        meta = json.loads(meta_file.read_text())
        if meta["max_keypoints"] != max_keypoints or len(meta["item_ids"]) < min_items:
            return None
        index = faiss.read_index(str(idx_file), faiss.IO_FLAG_MMAP)
        if index.ntotal != meta["keypoints"]:
            return None
    except (OSError, RuntimeError, ValueError, KeyError, TypeError):
        return None  # missing or damaged: built again
    faiss.extract_index_ivf(index).nprobe = NPROBE
    return VoteIndex(index, meta["item_ids"], meta["per_painting"])


def load_or_build(
    store: LocalStore,
    *,
    max_keypoints: int = MAX_KEYPOINTS,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> VoteIndex | None:
    """The store's vote index: read from disk when one was built for these parts, else built
    and written (atomically: a file renamed into place; older ones removed). None when the
    store holds too few paintings for votes to matter."""

    if len(store) < MIN_PAINTINGS or store.keypoint_count() == 0:
        return None  # too few paintings for votes to matter, or nothing to vote for
    key = fingerprint(store, max_keypoints)
    idx_file, ids_file = _paths(store, key)
    # this store's own index, else one built before a few paintings were added (a query
    # that computes missing features on demand adds a part: rebuilding for each would cost
    # seconds a query; paintings the index lacks only miss their votes)
    older = sorted(store.votes_folder.glob("votes-*.json"), key=lambda f: f.stat().st_mtime)
    for meta_file in [ids_file, *reversed(older)]:
        found = _read(meta_file, max_keypoints, min_items=int(STALE_SHARE * len(store)))
        if found is not None:
            return found
    vi = build_vote_index(store, max_keypoints=max_keypoints, progress=progress)
    try:
        _write(vi, store, idx_file, ids_file, max_keypoints)
    except (OSError, RuntimeError) as e:  # read-only catalog (faiss raises RuntimeError)
        logging.getLogger(__name__).warning(
            "the keypoint-vote index could not be saved in %s (%s); it is rebuilt by every "
            "process that needs it",
            store.votes_folder,
            e,
        )
    return vi


def _write(vi: VoteIndex, store: LocalStore, idx_file: Path, ids_file: Path, budget: int) -> None:
    import faiss

    idx_file.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{np.random.default_rng().integers(1 << 30)}"
    tmp_idx, tmp_ids = Path(f"{idx_file}.{tag}.tmp"), Path(f"{ids_file}.{tag}.tmp")
    try:
        faiss.write_index(vi.index, str(tmp_idx))
        tmp_ids.write_text(
            json.dumps(
                {
                    "item_ids": vi.item_ids,
                    "per_painting": vi.per_painting,
                    "keypoints": int(vi.index.ntotal),
                    "max_keypoints": budget,
                }
            )
        )
        os.replace(tmp_idx, idx_file)  # the index first: the ids file commits it
        os.replace(tmp_ids, ids_file)
    finally:
        tmp_idx.unlink(missing_ok=True)
        tmp_ids.unlink(missing_ok=True)
    for old in store.votes_folder.glob("votes-*"):
        if old.name not in (idx_file.name, ids_file.name) and not old.name.endswith(".tmp"):
            old.unlink(missing_ok=True)


def vote_index(store: LocalStore, *, max_keypoints: int = MAX_KEYPOINTS) -> VoteIndex | None:
    """The vote index of this open store, loaded or built once per store object (and again
    when the store gained parts)."""
    key = fingerprint(store, max_keypoints)
    cached = getattr(store, "_votes", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    vi = load_or_build(store, max_keypoints=max_keypoints)
    store._votes = (key, vi)  # type: ignore[attr-defined]
    return vi
