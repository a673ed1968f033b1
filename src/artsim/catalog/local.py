"""Local features of catalog paintings, for geometric verification of photo queries.

Each painting gets up to ``N_FEATURES`` RootSIFT keypoints, found on the image downscaled to
``LOCAL_SIDE`` px: positions as float16 in [0, 1] of the image's width and height, and
descriptors as uint8 (RootSIFT components scaled by 512: 128 bytes a keypoint). That is
at most 256 x (128 + 4) bytes = 33 KB a painting.

They are computed while indexing (the ``local`` aspect: ``artsim index --aspects global,local``,
from the image the analysis stage decoded once for every aspect), on demand (the candidates of
a photo query that have none yet: catalogs indexed without the aspect) or in bulk
(``build_local``), and kept under ``CATALOG/cache/local-<params>/`` as append-only parts
(``part-NNNNNN.ids.json``, ``.xy.npy``, ``.desc.npy``, ``.n.npy``), each written to a
temporary name and renamed, so a crash never leaves a half part. Parts are memory-mapped, so
a 10,000-painting catalog does not hold 330 MB of descriptors in memory. A painting whose
image fails to load gets zero keypoints (it is then never verified, only ranked globally).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from artsim.catalog.store import writer_tag
from artsim.detectors.keypoints import (
    DESC_SCALE,
    LOCAL_DECODE_SIDE,
    LOCAL_SIDE,
    N_FEATURES,
    LocalFeatures,
    extract_local,
)

if TYPE_CHECKING:
    from artsim.analysis import Analysis
    from artsim.catalog import Catalog
    from artsim.catalog.aspects import AspectRow
    from artsim.records import SourceItem

_MODEL = re.compile(r"rootsift-(\d+)-(\d+)")


def model_key(side: int, n_features: int) -> str:
    """The name of one kind of local features: the aspect's model, and its store's folder
    under ``cache/`` with ``local-`` in front."""
    return f"rootsift-{side}-{n_features}"


LOCAL_MODEL = model_key(LOCAL_SIDE, N_FEATURES)  # a new catalog's features
# paintings `LocalStore.blocks` reads at a time: 8 MB of descriptors at 256 keypoints (a part
# holds one index batch, 32 by default, but `--batch-size` may make it far larger)
BLOCK_ROWS = 256

# LocalFeatures and extract_local live in artsim.detectors.keypoints (the analysis stage runs
# them); their names stay importable from here
__all__ = [
    "DESC_SCALE",
    "LOCAL_MODEL",
    "LOCAL_SIDE",
    "N_FEATURES",
    "LocalFeatures",
    "LocalIndexer",
    "LocalStore",
    "build_local",
    "extract_local",
    "indexer_params",
    "local_params",
    "local_store",
    "model_key",
    "stored_bytes",
]


def local_params(catalog: Catalog) -> tuple[int, int]:
    """The side and keypoint count of this catalog's local features: those its ``local``
    aspect was built with, else those of the features it already stores (`build_local`, or
    computed for photo queries), else today's defaults. A catalog keeps one kind, so
    features from before a change of defaults stay in use (and are added to in kind)."""
    manifest = getattr(catalog, "manifest", None) or {}  # a store may be given a bare folder
    recorded = manifest.get("aspects", {}).get("local")
    if recorded and (m := _MODEL.fullmatch(str(recorded.get("model")))):
        return int(m.group(1)), int(m.group(2))
    cache = catalog.path / "cache"
    found = sorted(
        (int(m.group(1)), int(m.group(2)))
        for d in (cache.iterdir() if cache.is_dir() else [])
        if d.name.startswith("local-")
        and (m := _MODEL.fullmatch(d.name.removeprefix("local-")))
        and any(d.glob("part-*.ids.json"))
    )
    if (LOCAL_SIDE, N_FEATURES) in found or not found:
        return LOCAL_SIDE, N_FEATURES
    return found[0]


def indexer_params(indexers: Iterable[object]) -> tuple[int, int] | None:
    """The local features' side and count of an index run's ``local`` indexer, if it has one
    (what `artsim.analysis.analyse_batch` takes as ``local_params``)."""
    return next((ix.params for ix in indexers if isinstance(ix, LocalIndexer)), None)


def no_features() -> LocalFeatures:
    return LocalFeatures(np.zeros((0, 2), np.float16), np.zeros((0, 128), np.uint8), (0, 0))


def features_of_image(
    catalog: Catalog, item_id: str, max_side: int, n_features: int
) -> LocalFeatures | None:
    """RootSIFT of a catalog painting's image at ``max_side`` px; None when it cannot be read."""
    from artsim.errors import ArtsimError
    from artsim.images import open_image

    try:
        image = open_image(catalog.image_of(item_id), max_side=max_side).image
    except (ArtsimError, OSError):
        return None
    return extract_local(image, max_side=max_side, n_features=n_features)


class LocalStore:
    """The catalog's stored local features: look up by id, add missing ones."""

    def __init__(
        self, catalog: Catalog, *, max_side: int | None = None, n_features: int | None = None
    ):
        if max_side is None or n_features is None:
            side, count = local_params(catalog)
            max_side, n_features = max_side or side, n_features or count
        self.catalog = catalog
        self.max_side = max_side
        self.n_features = n_features
        self.folder = catalog.path / "cache" / f"local-{model_key(max_side, n_features)}"
        self.votes_folder = self.folder  # where catalog.local_votes keeps its index
        self.lock = threading.RLock()  # a server's threads share one store
        self._where: dict[str, tuple[int, int]] = {}
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._loaded: set[str] = set()
        self._load()

    def _load(self) -> None:
        """Open the parts not opened yet (another process may have added some)."""
        if not self.folder.is_dir():
            return
        with self.lock:  # a server's threads: a part's place in _parts is its rows' in _where
            for ids_file in sorted(self.folder.glob("part-*.ids.json")):
                stem = str(ids_file)[: -len(".ids.json")]
                if stem in self._loaded:
                    continue
                self._loaded.add(stem)
                try:
                    ids = json.loads(ids_file.read_text())
                    arrays = tuple(
                        np.load(f"{stem}.{k}.npy", mmap_mode="r") for k in ("xy", "desc", "n")
                    )
                except (OSError, ValueError, EOFError):
                    continue  # a part being written by another process: ids recomputed
                p = len(self._parts)
                self._parts.append(arrays)
                for r, item_id in enumerate(ids):
                    self._where[item_id] = (p, r)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, item_id: str) -> LocalFeatures | None:
        at = self._where.get(item_id)
        if at is None:
            return None
        xy, desc, n = self._parts[at[0]]
        k = int(n[at[1]])
        return LocalFeatures(np.asarray(xy[at[1], :k]), np.asarray(desc[at[1], :k]), (0, 0))

    def ids(self) -> list[str]:
        """Every painting with stored features, in a fixed order (part by part)."""
        where = dict(self._where)
        return sorted(where, key=lambda i: where[i])

    def part_names(self) -> list[str]:
        """Names of the parts opened (append-only: the list says what the store holds)."""
        return [Path(stem).name for stem in self._loaded]

    def blocks(self, per: int | None = None) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
        """Part by part, in ``ids()`` order, at most ``BLOCK_ROWS`` paintings at a time: (ids,
        descriptors (m, per, 128) uint8, keypoint counts (m,) capped at ``per``) of the
        paintings whose latest features are there."""
        per = self.n_features if per is None else per
        rows: dict[int, list[tuple[int, str]]] = {}
        for item_id, (p, r) in list(self._where.items()):  # another thread may add parts
            rows.setdefault(p, []).append((r, item_id))
        for p in sorted(rows):
            live = sorted(rows[p])
            at = np.array([r for r, _ in live])
            _, desc, n = self._parts[p]
            # a mapping of its own, unmapped once read: a pass over every part (the vote
            # index) would otherwise leave the whole store resident in this process. Where
            # it cannot be opened again, the store's own mapping reads it.
            name = cast(np.memmap, desc).filename
            if name is not None:
                with contextlib.suppress(OSError, ValueError, EOFError):
                    desc = np.load(name, mmap_mode="r")
            names = [i for _, i in live]
            for a in range(0, len(at), BLOCK_ROWS):  # a large batch's part a slice at a time
                rows_at = at[a : a + BLOCK_ROWS]
                yield (
                    names[a : a + BLOCK_ROWS],
                    np.asarray(desc[rows_at, :per]),
                    np.minimum(np.asarray(n[rows_at]).astype(np.int64), per),
                )
            del desc

    def keypoint_count(self, per: int | None = None, ids: Container[str] | None = None) -> int:
        """Stored keypoints of every painting (of ``ids`` only, when given), ``per`` a
        painting at most. Reads the counts alone, not the descriptors."""
        per = self.n_features if per is None else per
        rows: dict[int, list[int]] = {}
        for item_id, (p, r) in list(self._where.items()):
            if ids is None or item_id in ids:
                rows.setdefault(p, []).append(r)
        return sum(
            int(np.minimum(np.asarray(self._parts[p][2])[r].astype(np.int64), per).sum())
            for p, r in rows.items()
        )

    def compute(self, item_id: str) -> LocalFeatures:
        found = features_of_image(self.catalog, item_id, self.max_side, self.n_features)
        return found if found is not None else no_features()

    def ensure(self, ids: Iterable[str], *, workers: int = 2) -> dict[str, LocalFeatures]:
        """Features of these paintings, computing (and storing) the missing ones."""
        ids = list(dict.fromkeys(ids))
        missing = [i for i in ids if i not in self._where]
        if missing:
            self._load()
            missing = [i for i in ids if i not in self._where]
        if missing:
            with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV releases the GIL
                feats = list(pool.map(self.compute, missing))
            with self.lock:
                self.write(missing, feats)
        return {i: f for i in ids if (f := self.get(i)) is not None}

    def write(self, ids: list[str], feats: list[LocalFeatures]) -> None:
        """Append one part (atomic per file; the ids file, written last, commits it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        k = self.n_features
        xy = np.zeros((len(ids), k, 2), np.float16)
        desc = np.zeros((len(ids), k, 128), np.uint8)
        n = np.zeros(len(ids), np.int16)
        for r, f in enumerate(feats):
            m = min(k, len(f))
            xy[r, :m], desc[r, :m], n[r] = f.xy[:m], f.desc[:m], m
        stem = (
            self.folder
            / f"part-{os.getpid()}-{len(list(self.folder.glob('part-*.ids.json'))):06d}-{np.random.default_rng().integers(1 << 30)}"
        )
        tag = writer_tag()  # a kill leaves temp files the next index run can tell are dead
        try:
            for name, arr in (("xy", xy), ("desc", desc), ("n", n)):
                tmp = Path(f"{stem}.{name}.{tag}.tmp.npy")
                np.save(tmp, arr)
                os.replace(tmp, f"{stem}.{name}.npy")
            tmp = Path(f"{stem}.ids.{tag}.tmp")
            tmp.write_text(json.dumps(ids))
            os.replace(tmp, f"{stem}.ids.json")
        except BaseException:  # a full disk, Ctrl-C: no half-written part left behind
            for leftover in self.folder.glob(f"{stem.name}.*"):
                leftover.unlink(missing_ok=True)
            raise
        arrays = tuple(np.load(f"{stem}.{k}.npy", mmap_mode="r") for k in ("xy", "desc", "n"))
        with self.lock:  # its place taken only once it is open (np.load lets threads run)
            if str(stem) in self._loaded:
                return  # another thread's `_load` found it meanwhile and opened it
            self._loaded.add(str(stem))
            p = len(self._parts)
            self._parts.append(arrays)
            for r, item_id in enumerate(ids):
                self._where[item_id] = (p, r)


def local_store(catalog: Catalog) -> LocalStore:
    """The catalog's local-feature store, opened once per catalog object."""
    store = getattr(catalog, "_local_store", None)
    if store is None:
        store = LocalStore(catalog)
        catalog._local_store = store  # type: ignore[attr-defined]
    return store


# denser features for verifying a photo of a detail (`DenseCache`): a painting's detail
# covering a tenth of it holds ~25 of its 256 stored keypoints, too few for 12 inliers
DENSE_SIDE = 768
DENSE_FEATURES = 1500
DENSE_CACHED = 256  # paintings kept in memory (~200 KB each)


class DenseCache:
    """Denser RootSIFT of a few paintings (``max_side`` px, ``n_features``), computed from
    their images on demand and kept in memory, most recently used first. Not stored in the
    catalog: only the candidates of photos that nothing else verified need them (a few a
    query), and a catalog may be read-only. Each process holds its own (a server's upload
    workers: up to ``capacity`` paintings of ~200 KB each); entries are keyed by id, as the
    stored features are."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        max_side: int = DENSE_SIDE,
        n_features: int = DENSE_FEATURES,
        capacity: int = DENSE_CACHED,
    ):
        self.catalog = catalog
        self.max_side = max_side
        self.n_features = n_features
        self.capacity = capacity
        self.lock = threading.Lock()  # a server's threads share one cache
        self._cache: OrderedDict[str, LocalFeatures] = OrderedDict()

    def compute(self, item_id: str) -> LocalFeatures | None:
        return features_of_image(self.catalog, item_id, self.max_side, self.n_features)

    def get(self, ids: Iterable[str], *, workers: int = 2) -> dict[str, LocalFeatures]:
        """Features of these paintings (empty for one whose image cannot be read now; that
        is not kept, so a file back in place is read next time)."""
        ids = list(dict.fromkeys(ids))
        with self.lock:
            have = {i: self._cache[i] for i in ids if i in self._cache}
            for i in have:
                self._cache.move_to_end(i)
        missing = [i for i in ids if i not in have]
        if missing:
            with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV releases the GIL
                computed = dict(zip(missing, pool.map(self.compute, missing), strict=True))
            with self.lock:
                for i, f in computed.items():
                    if f is not None:
                        self._cache[i] = f
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
            have.update({i: f if f is not None else no_features() for i, f in computed.items()})
        return {i: have[i] for i in ids}


def dense_cache(catalog: Catalog) -> DenseCache:
    """The catalog's `DenseCache`, made once per catalog object."""
    cache = getattr(catalog, "_dense_cache", None)
    if cache is None:
        cache = DenseCache(catalog)
        catalog._dense_cache = cache  # type: ignore[attr-defined]
    return cache


def stored_bytes(catalog: Catalog) -> int:
    """Bytes on disk of the catalog's local features (every written part). A writer may
    rename or remove a file between the listing and its size: it then counts as 0."""
    folder = catalog.path / "cache" / f"local-{model_key(*local_params(catalog))}"
    total = 0
    for f in folder.glob("part-*.npy") if folder.is_dir() else ():
        if f.name.endswith(".tmp.npy"):  # being written
            continue
        try:
            total += f.stat().st_size
        except FileNotFoundError:
            continue
    return total


def build_local(
    catalog: Catalog,
    *,
    batch: int = 512,
    workers: int = 2,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Compute the local features of every painting that has none yet; returns how many."""
    store = local_store(catalog)
    todo = [i for i in catalog.ids if i not in store]
    for start in range(0, len(todo), batch):
        store.ensure(todo[start : start + batch], workers=workers)
        progress(min(start + batch, len(todo)), len(todo))
    return len(todo)


class LocalIndexer:
    """The ``local`` aspect: a row per painting (``info``: its keypoint count; row_id None when
    it has none), the features themselves in the catalog's `LocalStore`, written before the
    rows, so a painting counts as done only once its features are on disk."""

    aspect = "local"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.vector_dims: dict[str, int] = {}
        # the catalog's own kind (`local_params`)
        self.feature_side, self.n_features = local_params(catalog)
        self.model_key = model_key(self.feature_side, self.n_features)
        # the side the painting is decoded at (once, for all its aspects): at least
        # LOCAL_DECODE_SIDE, as when the encoder's 260 px set it (see there)
        self.max_side = max(self.feature_side, LOCAL_DECODE_SIDE)

    @property
    def params(self) -> tuple[int, int]:
        return self.feature_side, self.n_features

    def describe(self) -> dict[str, object]:
        return {
            "features": "RootSIFT (OpenCV SIFT), uint8 descriptors, float16 positions",
            "max_side": self.feature_side,
            "keypoints": self.n_features,
            "store": f"cache/local-{self.model_key}",
        }

    def rows(self, item: SourceItem, analysis: Analysis) -> list[AspectRow]:
        from artsim.catalog.aspects import AspectRow

        f = analysis.local
        assert f is not None, "analysed without 'local'"
        row_id = item.id if len(f) else None  # no keypoints: done, never verified
        return [AspectRow(item.id, row_id, {"keypoints": len(f)}, payload=f)]

    def write_payloads(self, rows: list[AspectRow]) -> None:
        """Store the rows' features (one part), before the rows themselves are written."""
        rows = [r for r in rows if r.payload is not None]
        if rows:
            store = local_store(self.catalog)
            if (store.max_side, store.n_features) != self.params:  # never into another kind
                store = LocalStore(
                    self.catalog, max_side=self.feature_side, n_features=self.n_features
                )
                self.catalog._local_store = store  # type: ignore[attr-defined]
            store.write([r.item_id for r in rows], [r.payload for r in rows])
