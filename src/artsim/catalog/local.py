"""Local features of catalog paintings, for geometric verification of photo queries.

Each painting gets up to ``N_FEATURES`` RootSIFT keypoints, found on the image downscaled to
``LOCAL_SIDE`` px: positions as float16 in [0, 1] of the image's width and height, and
descriptors as uint8 (RootSIFT components scaled by 512: 128 bytes a keypoint). That is
at most 256 x (128 + 4) bytes = 33 KB a painting.

They are computed on demand (the candidates of a photo query that have none yet) or in bulk
(``build_local``), and kept under ``CATALOG/cache/local-<params>/`` as append-only parts
(``part-NNNNNN.ids.json``, ``.xy.npy``, ``.desc.npy``, ``.n.npy``), each written to a
temporary name and renamed, so a crash never leaves a half part. Parts are memory-mapped, so
a 10,000-painting catalog does not hold 330 MB of descriptors in memory. A painting whose
image fails to load gets zero keypoints (it is then never verified, only ranked globally).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from artsim.catalog import Catalog

LOCAL_SIDE = 512
N_FEATURES = 256
DESC_SCALE = 512.0  # RootSIFT components are <= ~0.5: x512 fills a byte


@dataclass(frozen=True, slots=True)
class LocalFeatures:
    """Keypoints of one image: xy (n, 2) in [0, 1] of its width/height, descriptors (n, 128)
    uint8 (RootSIFT x 512), and the pixel size they were found at."""

    xy: np.ndarray
    desc: np.ndarray
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.desc)

    def unit_desc(self) -> np.ndarray:
        """Descriptors as float32 rows of unit length (RootSIFT: compare by inner product)."""
        d = self.desc.astype(np.float32)
        return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)


def extract_local(
    image: Image.Image, *, max_side: int = LOCAL_SIDE, n_features: int = N_FEATURES
) -> LocalFeatures:
    """RootSIFT keypoints of an RGB image, downscaled to ``max_side`` first."""
    import cv2

    scale = min(1.0, max_side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image.resize(size, Image.Resampling.BILINEAR) if scale < 1 else image
    gray = cv2.cvtColor(np.asarray(small.convert("RGB")), cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT_create(nfeatures=n_features)  # type: ignore[attr-defined]  # not in cv2's stubs
    kps, desc = sift.detectAndCompute(gray, None)
    if desc is None or not kps:
        return LocalFeatures(np.zeros((0, 2), np.float16), np.zeros((0, 128), np.uint8), size)
    kps, desc = kps[:n_features], desc[:n_features]
    root = np.sqrt(desc / np.maximum(desc.sum(1, keepdims=True), 1e-6))  # RootSIFT
    q = np.clip(np.rint(root * DESC_SCALE), 0, 255).astype(np.uint8)
    xy = np.array([k.pt for k in kps], np.float32) / np.array(size, np.float32)
    return LocalFeatures(xy.astype(np.float16), q, size)


class LocalStore:
    """The catalog's stored local features: look up by id, add missing ones."""

    def __init__(
        self, catalog: Catalog, *, max_side: int = LOCAL_SIDE, n_features: int = N_FEATURES
    ):
        self.catalog = catalog
        self.max_side = max_side
        self.n_features = n_features
        self.folder = catalog.path / "cache" / f"local-rootsift-{max_side}-{n_features}"
        self._where: dict[str, tuple[int, int]] = {}
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._loaded: set[str] = set()
        self._load()

    def _load(self) -> None:
        """Open the parts not opened yet (another process may have added some)."""
        if not self.folder.is_dir():
            return
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
            except (OSError, ValueError):
                continue  # a part being written by another process: its ids are recomputed
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

    def compute(self, item_id: str) -> LocalFeatures:
        from artsim.errors import ArtsimError
        from artsim.images import open_image

        try:
            image = open_image(self.catalog.image_of(item_id), max_side=self.max_side).image
        except (ArtsimError, OSError):
            return LocalFeatures(np.zeros((0, 2), np.float16), np.zeros((0, 128), np.uint8), (0, 0))
        return extract_local(image, max_side=self.max_side, n_features=self.n_features)

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
        for name, arr in (("xy", xy), ("desc", desc), ("n", n)):
            tmp = Path(f"{stem}.{name}.tmp.npy")
            np.save(tmp, arr)
            os.replace(tmp, f"{stem}.{name}.npy")
        tmp = Path(f"{stem}.ids.tmp")
        tmp.write_text(json.dumps(ids))
        os.replace(tmp, f"{stem}.ids.json")
        self._loaded.add(str(stem))
        p = len(self._parts)
        self._parts.append(
            tuple(np.load(f"{stem}.{name}.npy", mmap_mode="r") for name in ("xy", "desc", "n"))
        )
        for r, item_id in enumerate(ids):
            self._where[item_id] = (p, r)


def local_store(catalog: Catalog) -> LocalStore:
    """The catalog's local-feature store, opened once per catalog object."""
    store = getattr(catalog, "_local_store", None)
    if store is None:
        store = LocalStore(catalog)
        catalog._local_store = store  # type: ignore[attr-defined]
    return store


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
