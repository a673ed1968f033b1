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
and kept beside them as ``votes-<fingerprint>.faiss``. At the end of an index run the paintings
it lacks are added to it (its lists and codebooks as trained: cheap, and a new acquisition
gets its votes at once); it is built again once the store is twice what it was trained for
(its lists would grow too long), and when adding would pass the budget. A query
serves with an index covering nine tenths (one that computes missing features on demand adds
a few paintings, which only miss their votes until the next index run). ``max_keypoints`` is
the memory budget: beyond it each painting keeps fewer of its keypoints (about 200 MB at the
default 8 million).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artsim.catalog.store import writer_gone, writer_tag

if TYPE_CHECKING:
    from artsim.catalog.local import LocalFeatures, LocalStore

MAX_KEYPOINTS = 8_000_000  # the index's memory budget: 24 bytes a keypoint
MIN_PAINTINGS = 200  # below this the global shortlist already holds most of the catalog
NEIGHBOURS = 8  # catalog keypoints each query keypoint votes through
NPROBE = 16
PQ_CODES = 32  # 4 bits each: 16 bytes a keypoint
TRAIN_SAMPLE = 60_000
# keypoints read, made float32 and handed to FAISS at a time: 25 MB each (200,000 made an
# index run's peak memory 0.5 GB higher at 5,000 paintings: docs/benchmarks.md, session 34)
CHUNK = 50_000
STALE_SHARE = 0.9  # an index built for at least this share of the store's paintings serves
# an index run adds the paintings it lacks to an index trained for at least this share of
# the store; beyond, its lists (sized for the paintings it was trained for) grow too long
# for fast votes, and it is built again: at most once per doubling of the catalog
EXTEND_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class VoteIndex:
    """The FAISS index over catalog keypoints; its ids are positions in ``item_ids``."""

    index: Any  # faiss.IndexIVFPQFastScan
    item_ids: list[str]
    per_painting: int  # keypoints kept per painting (all of them under the budget)
    # paintings its lists were sized and trained for (0: as many as it holds); an index run
    # adds paintings to it until the catalog is twice that (`EXTEND_SHARE`)
    trained_for: int = 0

    @property
    def trained_items(self) -> int:
        return self.trained_for or len(self.item_ids)

    def _tally(
        self, query: LocalFeatures, neighbours: int, parts: Sequence[np.ndarray] | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Votes and voters per painting (arrays over ``item_ids``), for each of ``parts``
        (indices of the query's keypoints; None: one part, all of them), from one search of
        the index."""
        parts = [np.arange(len(query))] if parts is None else parts
        n_items = len(self.item_ids)
        if not len(query) or not n_items:
            return [(np.zeros(n_items), np.zeros(n_items, np.intp)) for _ in parts]
        dist, ids = self.index.search(query.unit_desc(), neighbours)
        # a keypoint's vote counts by how much nearer its neighbour is than its last one: in
        # a repeated texture (moire, a wall, a frame's ornament) they are all about as far
        # and it votes little; a clear match votes fully. On the seeded gallery photos and
        # the screen probe this put the target in the top 20 more often (docs/photos.md).
        # The last *found* neighbour: FAISS pads missing ones with id -1 and a dummy distance
        last = np.max(np.where(ids >= 0, dist, 0.0), axis=1, keepdims=True)
        weight = np.clip(1.0 - dist / np.maximum(last, 1e-6), 0.0, 1.0)
        # each keypoint votes once per painting, with its best weight (0: no vote): the
        # (keypoint, painting) pairs sorted by key, best weight first, the first of each kept
        found = ids.ravel() >= 0
        key = (np.repeat(np.arange(len(ids), dtype=np.int64), ids.shape[1]) * n_items)[found]
        key += ids.ravel()[found]
        w = weight.ravel()[found]
        order = np.lexsort((-w, key))
        key, w = key[order], w[order]
        first = np.ones(len(key), bool)
        first[1:] = key[1:] != key[:-1]
        key, w = key[first], w[first]
        key, w = key[w > 0], w[w > 0]  # its last neighbour, or a tie with it: no vote
        voter, painting = key // n_items, key % n_items
        out = []
        for part in parts:
            chosen = np.zeros(len(ids), bool)
            chosen[np.asarray(part, np.intp)] = True
            mine = chosen[voter]
            # bincount adds in keypoint order, as summing vote by vote would
            score = np.bincount(
                painting[mine], weights=w[mine].astype(np.float64), minlength=n_items
            )
            count = np.bincount(painting[mine], minlength=n_items)
            out.append((score, count))
        return out

    def votes(self, query: LocalFeatures, *, neighbours: int | None = None) -> dict[str, float]:
        """Painting id -> its votes: each of the query's keypoints votes once for every
        painting owning one of its ``neighbours`` nearest catalog keypoints, with the weight
        1 - d / d_last (d: the distance to the nearest keypoint of that painting, d_last: to
        the last neighbour; a vote of weight 0 is none)."""
        score, count = self._tally(query, NEIGHBOURS if neighbours is None else neighbours)[0]
        return {self.item_ids[p]: float(score[p]) for p in np.flatnonzero(count)}

    def top(
        self,
        query: LocalFeatures,
        n: int,
        *,
        keep: Callable[[str], bool] = lambda item_id: True,
        min_votes: int = 2,
    ) -> list[tuple[str, float]]:
        """The ``n`` paintings with the most votes that at least ``min_votes`` keypoints
        voted for and that ``keep``."""
        return self.top_of_parts(query, None, n, keep=keep, min_votes=min_votes)[0]

    def top_of_parts(
        self,
        query: LocalFeatures,
        parts: Sequence[np.ndarray] | None,
        n: int,
        *,
        keep: Callable[[str], bool] = lambda item_id: True,
        min_votes: int = 2,
    ) -> list[list[tuple[str, float]]]:
        """`top` for each of ``parts`` (indices of the query's keypoints, e.g. those of each
        painting in a photo; None: all of them), from one search of the index."""
        out = []
        for score, count in self._tally(query, NEIGHBOURS, parts):
            voted = np.flatnonzero(count >= max(1, min_votes))
            ranked = voted[np.argsort(-score[voted], kind="stable")]
            best: list[tuple[str, float]] = []
            for p in ranked.tolist():  # ``keep`` only until n are found: it may be slow
                if len(best) >= n:
                    break
                if keep(self.item_ids[p]):
                    best.append((self.item_ids[p], float(score[p])))
            out.append(best)
        return out


def fingerprint(store: LocalStore, max_keypoints: int) -> str:
    """Of the store's parts (append-only, so their names say what they hold) and the budget."""
    h = hashlib.sha1(str(max_keypoints).encode())
    for name in sorted(store.part_names()):
        h.update(name.encode())
    return h.hexdigest()[:16]


def _unit(desc: np.ndarray) -> np.ndarray:
    d = desc.astype(np.float32)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)  # in place: no third copy
    return d


def _keypoints(
    store: LocalStore, item_ids: list[str], per: int, chunk: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(unit descriptors, positions in ``item_ids``) in chunks of about ``chunk`` keypoints
    (None: ``CHUNK``), ``per`` a painting at most; paintings the store gained since
    ``item_ids`` was taken are left out (their votes come with the next build)."""
    chunk = chunk or CHUNK
    pos = {item: i for i, item in enumerate(item_ids)}
    descs: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    size = 0
    for ids, desc, n in store.blocks(per):
        keep = np.array([i in pos for i in ids], bool)
        if not keep.any():
            continue
        desc, n = desc[keep], n[keep]
        valid = np.arange(desc.shape[1])[None, :] < n[:, None]
        own = np.array([pos[i] for i, k in zip(ids, keep, strict=True) if k], np.int64)
        descs.append(_unit(desc[valid]))
        owners.append(np.broadcast_to(own[:, None], valid.shape)[valid])
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

    item_ids = store.ids()  # one snapshot for every pass: the store may grow meanwhile
    per = int(min(store.n_features, max(8, max_keypoints // max(1, len(item_ids)))))
    # sizes the lists and the training sample; paintings added since the snapshot make it
    # a slight overcount, which changes neither
    total = store.keypoint_count(per)
    # IVF lists of a few thousand keypoints; k-means on a sample (40x the lists at least)
    nlist = int(min(4096, max(16, 2 ** round(np.log2(max(1.0, total / 2000))))))
    rng = np.random.default_rng(0)
    want = min(total, max(TRAIN_SAMPLE, 40 * nlist))
    sample: list[np.ndarray] = []
    for d, _ in _keypoints(store, item_ids, per):
        take = rng.random(len(d)) < want / max(1, total)
        sample.append(d[take])
    train = np.concatenate(sample) if sample else np.zeros((0, 128), np.float32)
    # 4-bit fast-scan PQ: trains in a second (8-bit PQ codebooks took minutes) and scans
    # in SIMD registers
    index = faiss.index_factory(128, f"IVF{nlist},PQ{PQ_CODES}x4fs")
    if len(train) < max(nlist, 256):
        # too few keypoints to train lists and codebooks: one list, exact codes
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(128), 128, 1)
        train = np.concatenate([d for d, _ in _keypoints(store, item_ids, per)] or [train])
    index.train(train)
    done = 0
    for d, owner in _keypoints(store, item_ids, per):
        index.add_with_ids(d, owner)
        done += len(d)
        progress(done, total)
    faiss.extract_index_ivf(index).nprobe = NPROBE
    return VoteIndex(index, item_ids, per)


def extend_vote_index(
    vi: VoteIndex,
    store: LocalStore,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> VoteIndex:
    """``vi`` (writable: read without mmap) with the store's paintings it lacks added, as many
    keypoints a painting as it keeps, under its trained lists and codebooks. The ids it
    holds keep their positions; the new ones follow. progress(keypoints added, to add)."""
    known = set(vi.item_ids)
    new_ids = [i for i in store.ids() if i not in known]
    item_ids = [*vi.item_ids, *new_ids]
    start = len(vi.item_ids)
    total = store.keypoint_count(vi.per_painting, ids=set(new_ids))
    done = 0
    for d, owner in _keypoints(store, new_ids, vi.per_painting):
        vi.index.add_with_ids(d, owner + start)
        done += len(d)
        progress(done, total)
    return VoteIndex(vi.index, item_ids, vi.per_painting, vi.trained_items)


def _lacking(vi: VoteIndex, store: LocalStore) -> int:
    """How many of the store's paintings the index has no keypoints of."""
    return len(set(store.ids()) - set(vi.item_ids))


def saved_summary(folder: Path) -> dict[str, int] | None:
    """What the newest saved vote index in ``folder`` covers, from its metadata alone (no
    index read): paintings, keypoints, paintings it was trained for, and its file's bytes.
    None when there is none (built by the next index run or the first photo query)."""
    for meta_file in sorted(folder.glob("votes-*.json"), key=_mtime, reverse=True):
        try:
            meta = json.loads(meta_file.read_text())
            size = (folder / meta["index_file"]).stat().st_size
            return {
                "paintings": len(meta["item_ids"]),
                "keypoints": int(meta["keypoints"]),
                "trained_for": int(meta.get("trained_for") or len(meta["item_ids"])),
                "bytes": size,
            }
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced or damaged: the next one
    return None


def _mtime(f: Path) -> float:
    try:
        return f.stat().st_mtime
    except OSError:  # removed meanwhile by another process's newer index
        return 0.0


def _read(
    meta_file: Path, max_keypoints: int, min_items: int, *, writable: bool = False
) -> VoteIndex | None:
    """The index a metadata file names (each names its own index file, written before it,
    so two processes writing at once never pair one's ids with the other's index). Mapped
    from disk, read-only, unless ``writable``."""
    import faiss

    try:
        meta = json.loads(meta_file.read_text())
        if meta["max_keypoints"] != max_keypoints or len(meta["item_ids"]) < min_items:
            return None
        flags = 0 if writable else faiss.IO_FLAG_MMAP
        index = faiss.read_index(str(meta_file.parent / meta["index_file"]), flags)
        if index.ntotal != meta["keypoints"]:
            return None
    except (OSError, RuntimeError, ValueError, KeyError, TypeError):
        return None  # missing, damaged or being replaced: the next candidate, else built
    faiss.extract_index_ivf(index).nprobe = NPROBE
    return VoteIndex(index, meta["item_ids"], meta["per_painting"], int(meta.get("trained_for", 0)))


def load_or_build(
    store: LocalStore,
    *,
    max_keypoints: int = MAX_KEYPOINTS,
    progress: Callable[[int, int], None] = lambda done, total: None,
    extend: bool = False,
) -> VoteIndex | None:
    """The store's vote index: read from disk when one covers most of the store, else built
    and written. None when the store holds too few paintings for votes to matter.
    extend (the end of an index run): an older index trained for at least `EXTEND_SHARE` of
    the store's paintings gets those it lacks (`extend_vote_index`) and is written as the
    store's own."""
    if len(store) < MIN_PAINTINGS or store.keypoint_count() == 0:
        return None  # too few paintings for votes to matter, or nothing to vote for
    key = fingerprint(store, max_keypoints)
    # this store's own index, else one built before a few paintings were added (a query
    # that computes missing features on demand adds a part: rebuilding for each would cost
    # seconds a query; paintings the index lacks only miss their votes)
    own = store.votes_folder / f"votes-{key}.json"
    older = sorted(store.votes_folder.glob("votes-*.json"), key=_mtime, reverse=True)
    vi = None
    for meta_file in [own, *older]:
        # an index run takes any index trained for enough of the store (below), a query
        # one that covers nearly all of it
        found = _read(
            meta_file,
            max_keypoints,
            0 if extend else int(STALE_SHARE * len(store)),
            writable=extend and meta_file != own,  # the store's own is used as it is
        )
        if found is None:
            continue
        if not extend or meta_file == own:
            return found
        lacking = _lacking(found, store)
        if not lacking:
            return found
        within_budget = (len(found.item_ids) + lacking) * found.per_painting <= max_keypoints
        if within_budget and found.trained_items >= EXTEND_SHARE * len(store):
            vi = extend_vote_index(found, store, progress=progress)
        break  # else: trained for too few paintings, or fewer keypoints a painting: built again
    if vi is None:
        vi = build_vote_index(store, max_keypoints=max_keypoints, progress=progress)
    try:
        _write(vi, store, key, max_keypoints)
    except (OSError, RuntimeError) as e:  # read-only catalog (faiss raises RuntimeError)
        logging.getLogger(__name__).warning(
            "the keypoint-vote index could not be saved in %s (%s); it is rebuilt by every "
            "process that needs it",
            store.votes_folder,
            e,
        )
    return vi


def _write(vi: VoteIndex, store: LocalStore, key: str, budget: int) -> None:
    """The index under a name of its own, then the metadata naming it (renamed into place:
    it commits the index); then older indexes and stale temporary files are removed."""
    import faiss

    folder = store.votes_folder
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{np.random.default_rng().integers(1 << 30)}"
    idx_file = folder / f"votes-{key}-{tag}.faiss"
    meta_file = folder / f"votes-{key}.json"
    by = writer_tag()
    tmp_idx, tmp_meta = Path(f"{idx_file}.{by}.tmp"), Path(f"{meta_file}.{tag}.{by}.tmp")
    try:
        faiss.write_index(vi.index, str(tmp_idx))
        os.replace(tmp_idx, idx_file)
        meta = {
            "index_file": idx_file.name,
            "item_ids": vi.item_ids,
            "per_painting": vi.per_painting,
            "trained_for": vi.trained_items,
            "keypoints": int(vi.index.ntotal),
            "max_keypoints": budget,
        }
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, meta_file)
    except BaseException:
        idx_file.unlink(missing_ok=True)
        raise
    finally:
        tmp_idx.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    now = time.time()
    for old in folder.glob("votes-*"):
        if old.name in (idx_file.name, meta_file.name):
            continue
        # another process's temporary file may be in use for an hour; its index a reader
        # may have just opened (it reads the metadata, then the index: a miss re-reads)
        if old.name.endswith(".tmp") and now - _mtime(old) < 3600 and not writer_gone(old.name):
            continue
        old.unlink(missing_ok=True)


def vote_index(
    store: LocalStore,
    *,
    max_keypoints: int = MAX_KEYPOINTS,
    extend: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> VoteIndex | None:
    """The vote index of this open store, loaded or built once per store object, and again
    only when the store has grown by over a tenth (or the budget changed). A failure is
    logged once and leaves the store without votes until it changes. extend (the end of an
    index run): every painting of the store gets its votes (`load_or_build`).
    progress(keypoints done, total): called while an index is built or extended."""
    with store.lock:  # the server's threads share a store
        key = fingerprint(store, max_keypoints)
        cached = getattr(store, "_votes", None)
        # (a query may have kept a stale index under this key: an index run completes it)
        stale = extend and cached is not None and cached[1] is not None
        if cached is not None and cached[0] == key and not (stale and _lacking(cached[1], store)):
            return cached[1]
        if (
            not extend
            and cached is not None
            and cached[1] is not None
            and cached[2] == max_keypoints
            and len(cached[1].item_ids) >= STALE_SHARE * len(store)
        ):
            store._votes = (key, cached[1], max_keypoints)  # type: ignore[attr-defined]
            return cached[1]
        try:
            vi = load_or_build(store, max_keypoints=max_keypoints, extend=extend, progress=progress)
        except (OSError, RuntimeError, MemoryError, ValueError) as e:
            logging.getLogger(__name__).warning(
                "no keypoint votes for photo queries: the vote index of %s failed (%s: %s)",
                store.folder,
                type(e).__name__,
                e,
            )
            vi = None
        store._votes = (key, vi, max_keypoints)  # type: ignore[attr-defined]
        return vi
