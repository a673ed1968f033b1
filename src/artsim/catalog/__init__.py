"""The catalog: a folder holding everything artsim knows about a collection.

    CATALOG/
      manifest.json                 format version, model (name, weights hash, preprocessing), dims, counts
      items/part-*.parquet          one row per painting: id, image, size, metadata (JSON), and
                                    typed columns of the metadata for filters (catalog/metadata.py)
      vectors/<aspect>/<model>/part-*.parquet
                                    rows per aspect (global: one per painting; face/pose: one per face/figure)
      vectors/<aspect>/<model>/<name>-<hash>.f32.npy
                                    large aspects' vectors, memory-mapped (store.write_vector_file)
      index/<aspect>-<name>.faiss   saved HNSW graphs for large catalogs
      failures.csv                  images that could not be read, with the reason
      cache/                        downloaded images, face chips

Parts are only ever added (atomically) and merged, so an interrupted `artsim index` leaves a
valid catalog and a re-run resumes where it stopped.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from artsim import facades
from artsim.analysis import analyse_batch
from artsim.catalog import store
from artsim.catalog.aspects import (
    ASPECTS,
    DEFAULT_ASPECTS,
    AspectIndexer,
    AspectRow,
    GlobalIndexer,
)
from artsim.catalog.index import VectorIndex, build_index, load_index, save_index
from artsim.catalog.local import LocalIndexer, indexer_params
from artsim.catalog.metadata import FieldColumns, LazyMetadata, typed_columns
from artsim.catalog.parallel import DetectorPool
from artsim.errors import ArtsimError, CatalogError, ImageLoadError
from artsim.images import DEFAULT_MAX_PIXELS, LoadedImage, open_image
from artsim.records import SearchResult, SourceItem
from artsim.sources import SourceScan

INT8_BACKEND = "openvino-int8"  # artsim.encoders.int8 (imported only when used)

if TYPE_CHECKING:  # torch is imported only when an encoder is needed
    from artsim.catalog.local_votes import VoteIndex
    from artsim.encoders.base import Encoder

MANIFEST = "manifest.json"
FAILURES_LOG = "failures.jsonl"
FAILURES_CSV = "failures.csv"
ITEM_COLUMNS = ["id", "image", "width", "height", "metadata"]  # what opening reads
# aspects with this many rows get a memory-mapped copy of their vectors (store.write_vector_file)
MMAP_MIN_ROWS = 50_000
# a re-run without --aspects keeps complete the aspects a catalog has for this share of its
# paintings, and leaves those it has for fewer (given to some paintings on purpose) as they are
COMPLETE_SHARE = 0.9


@dataclass(slots=True)
class AspectData:
    """One aspect's rows, loaded in memory: parallel arrays plus vectors by name."""

    aspect: str
    model_key: str
    item_ids: list[str] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)
    info: Sequence[dict[str, Any]] = field(default_factory=list)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    indexes: dict[str, VectorIndex] = field(default_factory=dict)
    row_pos: np.ndarray | None = None  # row -> position of its item in Catalog.ids
    parts_fingerprint: str = ""  # of the parts the rows were read from (store.parts_fingerprint)
    in_item_order: bool = False  # row i belongs to item i (row_pos is 0..n-1)
    _by_item: dict[str, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.row_ids)

    def rows_of_item(self, item_id: str | None) -> list[int]:
        """Rows (faces, figures; the one global row) belonging to a painting."""
        if self._by_item is None:
            by_item: dict[str, list[int]] = {}
            for r, it in enumerate(self.item_ids):
                by_item.setdefault(it, []).append(r)
            self._by_item = by_item
        return self._by_item.get(item_id, []) if item_id is not None else []


@dataclass(slots=True)
class IndexSummary:
    """What one `add` run did."""

    total: int = 0
    added: int = 0
    skipped_existing: int = 0
    failed: int = 0
    source_problems: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    aspects: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.added / self.seconds if self.seconds > 0 else 0.0


class Catalog:
    """An on-disk catalog of paintings. Create with `Catalog.create`, reopen with `Catalog.open`."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        *,
        model_path: str | None = None,
        backend: str | None = None,
        device: str | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.model_path = model_path or manifest["model"].get("model_path")
        # where the encoder runs: this process's choice (or $ARTSIM_BACKEND / $ARTSIM_DEVICE);
        # the manifest records what ran, as information, never as a constraint (except an
        # int8 catalog's network: its vectors come from that network only)
        self.backend = backend or os.environ.get("ARTSIM_BACKEND") or "auto"
        self.device = device or os.environ.get("ARTSIM_DEVICE") or "auto"
        self._encoder: Encoder | None = None
        self._int8_problem = ""  # why this catalog's int8 network cannot run here, if it cannot
        # artsim.search.whitening's cache: (Whitening, index of whitened vectors); Any, not
        # Whitening, as the catalog never imports search (tests/test_imports.py)
        self._whitened: tuple[Any, VectorIndex] | None = None
        self._aspects: dict[str, AspectData] = {}
        self._made_folders: list[Path] = []  # folders `create` made, removed if nothing is written
        self._told_no_votes = False  # load_vote_index's warning, given once
        self._load_items()

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        model: str | None = None,
        model_path: str | None = None,
        bf16: bool | None = None,
        pooling: str | None = None,
        backend: str | None = None,
        device: str | None = None,
        size: int | None = None,
    ) -> Catalog:
        """Create an empty catalog (or open an existing one built with the same model).

        backend: auto | torch | onnx | openvino | openvino-bf16 | openvino-int8; device: auto |
        cpu | cuda (see artsim.encoders.backends; openvino-int8, and auto's choice of it:
        artsim.encoders.int8). size: the network's input side (efficientnet-lite2: default
        224), chosen when the catalog is created and kept in its manifest."""
        from artsim.encoders import DEFAULT_MODEL, get_spec, load_encoder, recorded_size
        from artsim.encoders.backends import runs_bf16

        path = Path(path)
        model = model or DEFAULT_MODEL
        if (path / MANIFEST).is_file():
            opened = cls.open(
                path, model=model, model_path=model_path, backend=backend, device=device
            )
            # read only when a size is asked for: without one, opening reads nothing more
            made_at = recorded_size(opened.manifest["model"]) if size is not None else None
            if size is not None and size != made_at:
                raise CatalogError(
                    f"{path}: this catalog's network runs at {made_at or 'its own'} px, not "
                    f"{size}: an input "
                    "size is chosen when a catalog is created, as vectors of two sizes do not "
                    f"mix. Leave out the size (or pass {made_at}), or index into a new folder"
                )
            return opened
        if path.exists() and not path.is_dir():
            raise CatalogError(f"{path}: exists and is not a folder")
        if path.is_dir() and any(p for p in path.iterdir() if not p.name.startswith(".")):
            raise CatalogError(
                f"{path}: folder is not empty and holds no artsim catalog (no {MANIFEST})"
            )
        get_spec(model)
        cat_backend = backend or os.environ.get("ARTSIM_BACKEND") or "auto"
        cat_device = device or os.environ.get("ARTSIM_DEVICE") or "auto"
        # int8 (artsim.encoders.int8): asked for, or chosen by auto where it pays off
        int8 = cat_backend == INT8_BACKEND
        if int8:
            _check_int8_wanted(model, cat_device)
        int8_auto = (
            not int8 and bf16 is None and _int8_auto_possible(model, cat_backend, cat_device)
        )
        encoder = load_encoder(
            model,
            model_path=model_path,
            bf16=False if int8 or int8_auto else bf16,
            pooling=pooling,
            size=size,
            # an int8 catalog's fp32 reference (and fallback) until calibrated
            backend="auto" if int8 else cat_backend,
            device="cpu" if int8 else cat_device,
        )
        desc = encoder.describe()
        manifest = {
            "format_version": store.FORMAT_VERSION,
            "created": _now(),
            "updated": _now(),
            "model": {
                "name": encoder.name,
                "weights_sha256": encoder.weights_hash,
                "preprocess": desc["preprocess"],
                "dim": encoder.dim,
                "bf16": runs_bf16(encoder),
                "backend": encoder.backend,
                "device": encoder.device,
                "pooling": encoder.extra.get("pooling", pooling),
                "model_path": str(Path(model_path).resolve()) if model_path else None,
                # an int8 catalog's network (artsim.encoders.int8): None until the first
                # paintings indexed calibrate it
                **({"int8": None, "backend": INT8_BACKEND} if int8 else {}),
                **({"int8": None, "int8_auto": True} if int8_auto else {}),
            },
            "aspects": {
                "global": {"model": encoder.name, "dims": {"global": encoder.dim}, "count": 0}
            },
            "counts": {"items": 0, "failures": 0},
        }
        made = [p for p in (path, *path.parents) if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
            store.atomic_write_json(path / MANIFEST, manifest)
        except BaseException:
            _remove_made_folders(made)
            raise
        cat = cls(path, manifest, model_path=model_path, backend=backend, device=device)
        cat._encoder = encoder
        cat._made_folders = made
        return cat

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        model: str | None = None,
        model_path: str | None = None,
        backend: str | None = None,
        device: str | None = None,
    ) -> Catalog:
        """Open an existing catalog. Naming a model other than the catalog's is an error."""
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            if (path / "items").is_dir():
                raise CatalogError(
                    f"{mpath}: missing; run `artsim check {path} --repair` to rebuild it"
                )
            raise CatalogError(
                f"{path}: no artsim catalog here (missing {MANIFEST}); create one with `artsim index SRC --catalog {path}`"
            )
        try:
            manifest = store.read_json(mpath)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CatalogError(
                f"{mpath}: unreadable manifest ({store.short_reason(exc)}); "
                f"run `artsim check {path} --repair` to rebuild it"
            ) from exc
        _check_manifest(mpath, manifest)
        version = manifest.get("format_version")
        if version != store.FORMAT_VERSION:
            raise CatalogError(
                f"{path}: catalog format {version} is not supported by this artsim (expects {store.FORMAT_VERSION})"
            )
        built_with = manifest["model"]["name"]
        if model and model != built_with:
            raise CatalogError(
                f"{path}: catalog was built with model '{built_with}', not '{model}'. Its vectors are not "
                f"comparable; use --model {built_with} or index into a new catalog folder."
            )
        # a reader changes nothing on disk
        return cls(path, manifest, model_path=model_path, backend=backend, device=device)

    # ------------------------------------------------------------------ properties
    @property
    def model_name(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def ids(self) -> list[str]:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._pos

    def item(self, item_id: str) -> dict[str, Any]:
        """The stored record of one painting: id, image, width, height, metadata."""
        try:
            i = self._pos[item_id]
        except KeyError:
            raise ArtsimError(f"no item with id {item_id!r} in catalog {self.path}") from None
        return {
            "id": item_id,
            "image": self._images[i],
            "width": self._sizes[i][0],
            "height": self._sizes[i][1],
            "metadata": self._metadata[i],
        }

    @property
    def fields(self) -> FieldColumns:
        """The items' metadata as typed columns, for `--where` filters (read when first used)."""
        return self._fields

    def metadata(self, item_id: str) -> dict[str, Any]:
        return self._metadata[self._pos[item_id]]

    def image_of(self, item_id: str) -> str:
        return self._images[self._pos[item_id]]

    @property
    def encoder(self) -> Encoder:
        """The catalog's whole-image encoder, loaded on first use and checked against the manifest."""
        if self._encoder is None:
            from artsim.encoders import load_encoder, recorded_size

            m = self.manifest["model"]
            # the manifest's bf16 and backend say what ran before, as information: fp32 vectors
            # from every backend agree to 0.99999 (bf16's to ~0.996, as before), so this
            # process picks what is fastest here
            int8 = "int8" in m
            if self.backend == INT8_BACKEND and not int8:
                raise CatalogError(
                    f"{self.path}: --backend {INT8_BACKEND} is chosen when a catalog is created; "
                    "this catalog holds fp32 vectors, which int8 ones cannot mix with. Index "
                    f"into a new catalog folder with --backend {INT8_BACKEND}, or pick another backend"
                )
            enc = load_encoder(
                m["name"],
                model_path=self.model_path,
                pooling=m.get("pooling"),
                size=recorded_size(m),
                # an int8 catalog runs its own network (below) over an fp32 reference
                bf16=False if int8 else None,
                backend="auto" if self.backend == INT8_BACKEND else self.backend,
                device="cpu" if int8 else self.device,
            )
            if (
                m.get("weights_sha256") not in (None, "unknown")
                and enc.weights_hash != m["weights_sha256"]
            ):
                raise CatalogError(
                    f"{self.path}: catalog was built with {m['name']} weights sha256 {m['weights_sha256'][:12]}…, "
                    f"but the weights found now hash to {enc.weights_hash[:12]}…; pass the original --model-path"
                )
            self._encoder = self._int8_encoder(enc) if int8 and m["int8"] else enc
        return self._encoder

    def _int8_encoder(self, reference: Encoder) -> Encoder:
        """The catalog's int8 network over the fp32 reference encoder; where it cannot run
        (no OpenVINO, a changed file), the fp32 reference with one warning: queries then compare
        fp32 vectors with the stored int8 ones (cosine ~0.98: close, not equal), and `add`
        refuses to mix them in."""
        import dataclasses

        from artsim.encoders.backends import BackendError
        from artsim.encoders.base import default_threads
        from artsim.encoders.int8 import load_runner

        try:
            runner = load_runner(self.path, self.manifest["model"]["int8"], default_threads())
        except BackendError as exc:
            self._int8_problem = str(exc)
            warnings.warn(
                f"artsim: {exc}; falling back to fp32 ({reference.backend}), whose vectors only approximate "
                "this catalog's int8 ones (searches work, adding paintings does not)",
                RuntimeWarning,
                stacklevel=3,
            )
            return reference
        return dataclasses.replace(reference, runner=runner, backend=INT8_BACKEND)

    def _prepare_int8(
        self,
        items: Sequence[SourceItem],
        max_pixels: int = DEFAULT_MAX_PIXELS,
        *,
        announce: bool = False,
    ) -> None:
        """Before an int8 catalog's first vectors (under the writer lock, `_locked`):
        calibrate its network on CALIBRATION_IMAGES paintings spread over `items`, and store
        it. A catalog for which auto chose int8 stays fp32 for good when its first run is
        small (AUTO_MIN_PAINTINGS: calibrating would cost more than int8 saves), when int8
        cannot be made on this machine, or when calibration fails. Raises CatalogError when
        an int8 catalog's network cannot run here (fp32 vectors would mix with int8 ones)."""
        m = self.manifest["model"]
        if "int8" not in m or not items:
            return
        if m["int8"] is None:
            from artsim.encoders import int8

            if m.get("int8_auto"):
                still = _int8_auto_possible(m["name"], self.backend, self.device)
                if not still or len(items) < int8.AUTO_MIN_PAINTINGS:
                    self._drop_int8()
                    return
            elif problem := int8.available():
                raise CatalogError(f"{self.path}: int8 cannot be calibrated here: {problem}")
            try:
                if announce:  # ~15 s before the progress bar: say why
                    print(
                        "calibrating this catalog's int8 network on "
                        f"{min(len(items), int8.CALIBRATION_IMAGES)} of its paintings (once, ~15 s)",
                        file=sys.stderr,
                    )
                self._calibrate_int8(items, max_pixels)
            except CatalogError as exc:
                if not m.get("int8_auto"):
                    raise
                warnings.warn(
                    f"artsim: {exc}; the catalog stays fp32", RuntimeWarning, stacklevel=3
                )
                self._drop_int8()
                return
        enc = self._encoder
        if enc is not None and enc.backend != INT8_BACKEND and not self._int8_problem:
            self._encoder = None  # loaded before the network existed: load it now
        self.require_int8_network()

    def _drop_int8(self) -> None:
        """An auto catalog not calibrated yet becomes fp32, for good."""
        m = self.manifest["model"]
        m.pop("int8", None)
        m.pop("int8_auto", None)
        store.atomic_write_json(self.path / MANIFEST, self.manifest)
        self._encoder = None

    def require_int8_network(self) -> None:
        """Raise CatalogError when this is a calibrated int8 catalog whose network cannot run
        here: every writer (this process, a Ray worker) checks before embedding anything."""
        if self.manifest["model"].get("int8") and self.encoder.backend != INT8_BACKEND:
            raise CatalogError(
                f"{self.path}: this catalog's vectors come from its int8 network, which cannot "
                f"run here ({self._int8_problem}); adding fp32 vectors would mix two networks. "
                "Restore the network (models/ as the manifest names it) or index into a new "
                "catalog"
            )

    def _calibrate_int8(self, items: Sequence[SourceItem], max_pixels: int) -> None:
        import torch

        from artsim.encoders import int8, recorded_size
        from artsim.encoders.base import default_threads

        reference = self.encoder  # fp32 (bf16 off)
        sample = list(items[:: max(1, len(items) // int8.CALIBRATION_IMAGES)])
        crop = reference.preprocess.crop
        images = [
            reference.preprocess.to_uint8(li.image)
            for _, loaded in _decoded_batches(sample, 32, crop, max_pixels, 2)
            for li in loaded
            if isinstance(li, LoadedImage)
        ][: int8.CALIBRATION_IMAGES]
        if not images:
            raise CatalogError(
                f"{self.path}: none of the {len(sample)} paintings sampled to calibrate the "
                "int8 network could be read (failures.csv says why)"
            )
        m = self.manifest["model"]
        try:
            record = int8.calibrate_in_subprocess(
                self.path,
                torch.stack(images).numpy(),
                default_threads(),
                model=m["name"],
                pooling=m.get("pooling"),
                model_path=self.model_path,
                size=recorded_size(m),
            )
        except ArtsimError as exc:
            raise CatalogError(f"{self.path}: int8 calibration failed: {exc}") from exc
        if len(images) < int8.FEW_CALIBRATION_IMAGES:
            warnings.warn(
                f"artsim: {self.path}'s int8 network was calibrated on only {len(images)} "
                "paintings (its first index run); index more at once for a better one",
                RuntimeWarning,
                stacklevel=3,
            )
        self.manifest["model"]["int8"] = record
        store.atomic_write_json(self.path / MANIFEST, self.manifest)
        self._encoder = None  # the int8 network from now on

    # ------------------------------------------------------------------ loading
    def _load_items(self) -> None:
        # the typed field columns stay on disk until a filter names one (FieldColumns)
        table, parts = store.read_parts_listed(self.path / "items", ITEM_COLUMNS)
        self._ids: list[str] = []
        self._images: list[str] = []
        self._sizes: list[tuple[int, int]] = []
        self._metadata: Sequence[dict[str, Any]] = []
        self._fields = FieldColumns(LazyMetadata(pa.array([], pa.string())), None)
        if table is not None:
            keep = store.dedupe_keep(table, "id")
            if keep is not None:
                table = table.take(pa.array(keep))
            self._ids = table.column("id").to_pylist()
            self._images = table.column("image").to_pylist()
            self._sizes = list(
                zip(
                    table.column("width").to_pylist(),
                    table.column("height").to_pylist(),
                    strict=True,
                )
            )
            # parsed on access: parsing 1M JSON strings here took most of a 19 s open
            self._metadata = LazyMetadata(table.column("metadata"))
            self._fields = FieldColumns(
                self._metadata, lambda cols: _read_item_columns(parts, keep, cols)
            )
        self._pos = {item_id: i for i, item_id in enumerate(self._ids)}
        self._aspects = {}
        self._whitened = None

    def aspect_names(self) -> list[str]:
        return [a for a in ASPECTS if a in self.manifest.get("aspects", {})]

    def aspect(self, name: str) -> AspectData:
        """Load (once) an aspect's rows and vectors."""
        if name in self._aspects:
            return self._aspects[name]
        meta = self.manifest.get("aspects", {}).get(name)
        if meta is None:
            raise ArtsimError(
                f"catalog {self.path} has no '{name}' aspect; add it with "
                f"`artsim index SRC --catalog {self.path} --aspects {name}`"
            )
        data = _read_aspect(self.path, name, meta["model"], meta.get("dims", {}))
        if data.item_ids == self._ids:  # one row per painting, in item order (global): no lookups
            data.row_pos = np.arange(len(self._ids), dtype=np.int64)
            data.in_item_order = True
        else:
            known = self._pos
            keep = [i for i, it in enumerate(data.item_ids) if it in known]
            if len(keep) != len(data.item_ids):  # rows whose item row was lost: ignore them
                data = _subset_aspect(data, keep)
            data.row_pos = np.array([known[it] for it in data.item_ids], dtype=np.int64)
            data.in_item_order = len(data.row_pos) == len(self._ids) and bool(
                np.array_equal(data.row_pos, np.arange(len(self._ids)))
            )
        self._aspects[name] = data
        return data

    def vector_index(self, aspect: str, name: str | None = None) -> tuple[AspectData, VectorIndex]:
        data = self.aspect(aspect)
        name = name or aspect
        if name not in data.indexes:
            vectors = data.vectors.get(name)
            if vectors is None:
                raise ArtsimError(f"aspect '{aspect}' has no vectors named '{name}'")
            saved = self.path / "index" / f"{aspect}-{name}.faiss"
            vi = load_index(vectors, saved) if saved.is_file() else None
            data.indexes[name] = vi or build_index(vectors)
        return data, data.indexes[name]

    # ------------------------------------------------------------------ indexing
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with store.writer_lock(self.path):
            self._load_items()  # what is on disk now: another writer may have added to it
            self._reload_model()
            yield

    def _reload_model(self) -> None:
        """The manifest's model as on disk: another writer may have calibrated an int8
        network (or dropped auto's int8) since this catalog was opened. Aspects another
        writer registered meanwhile are taken in too, so that writing this manifest back
        never drops them."""
        try:
            on_disk = store.read_json(self.path / MANIFEST)
            model = on_disk["model"]
            aspects = on_disk.get("aspects", {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return  # a writer on a broken manifest fails later, with the reason
        if isinstance(aspects, dict):
            mine = self.manifest.setdefault("aspects", {})
            for name, desc in aspects.items():
                mine.setdefault(name, desc)
        if model != self.manifest["model"]:
            self.manifest["model"] = model
            self._encoder = None
            self._int8_problem = ""

    def discard_if_unused(self) -> bool:
        """Remove the folder `create` made for this catalog if no painting was written to it
        (a first run that failed). A folder that existed before is never removed, nor one
        another process is writing: a second `artsim index` into the same new folder may hold
        the lock (its first part not written yet) when this run fails for want of it."""
        if not self._made_folders:
            return False
        try:
            with store.writer_lock(self.path):
                if store.list_parts(self.path / "items"):
                    return False
                _remove_made_folders(self._made_folders)
        except CatalogError:  # another writer holds the lock: the folder is in use
            return False
        self._made_folders = []
        return True

    def indexers(self, aspects: Sequence[str]) -> list[AspectIndexer]:
        out: list[AspectIndexer] = []
        order = {name: i for i, name in enumerate(ASPECTS)}
        for a in sorted(aspects, key=lambda name: order.get(name, len(order))):
            if a == "global":
                out.append(GlobalIndexer(self.encoder))
            elif a == "face":
                from artsim.catalog.faces import FaceIndexer

                out.append(FaceIndexer(self))
            elif a == "pose":
                from artsim.catalog.poses import PoseIndexer

                out.append(PoseIndexer(self))
            elif a == "local":
                out.append(LocalIndexer(self))
            else:
                raise ArtsimError(f"unknown aspect {a!r}; choose from {', '.join(ASPECTS)}")
        return out

    def default_aspects(self) -> list[str]:
        """What an index run computes when no aspects are asked for: for a new catalog
        `DEFAULT_ASPECTS` (global + local, for photo queries); else global and each aspect the
        catalog has, or had at the end of a run, for at least `COMPLETE_SHARE` of its
        paintings (the manifest's ``complete``). So a re-run redoes rows lost to damage
        (`artsim check --repair`) but never extends an aspect given to only some paintings
        (faces for the portraits, keypoints added for a few) to the rest. Index runs ask under
        the writer lock, which has taken in the aspects other writers registered."""
        registered = self.manifest.get("aspects", {})
        if not self._ids:
            have = [a for a in registered if a in ASPECTS]
            return list(dict.fromkeys([*DEFAULT_ASPECTS, *have]))  # `create` registers global
        complete = [
            a
            for a, desc in registered.items()
            if a in ASPECTS
            and a != "global"
            and isinstance(desc, dict)
            and (
                desc.get("complete") is True
                or len(self._done_ids_of(a, str(desc.get("model", ""))))
                >= COMPLETE_SHARE * len(self._ids)
            )
        ]
        return ["global", *complete]

    def _plan(
        self, items: list[SourceItem], aspects: Sequence[str] | None
    ) -> tuple[list[AspectIndexer], dict[str, set[str]], list[SourceItem]]:
        """An index run's indexers (registered in the manifest), the ids each has done, and
        the items still to do. Under the writer lock: decided on the catalog as it is now."""
        wanted = self.default_aspects() if aspects is None else aspects
        # global always: it holds the item rows
        indexers = self.indexers(list(dict.fromkeys(["global", *wanted])))
        for ix in indexers:
            self._register_aspect(ix)
        done = {ix.aspect: self._done_ids(ix) for ix in indexers}
        pending = [it for it in items if any(it.id not in done[ix.aspect] for ix in indexers)]
        return indexers, done, pending

    def add(
        self,
        source: str | Path | Sequence[SourceItem] | SourceScan,
        *,
        aspects: Sequence[str] | None = None,
        batch_size: int = 32,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        progress: bool | Callable[[int, int], None] = False,
        limit: int | None = None,
        workers: int | None = None,
        detector_workers: int | None = 1,
    ) -> IndexSummary:
        """Index a source (folder, CSV manifest, list of SourceItem). Already-indexed items are skipped.

        aspects: what to compute (global, face, pose, local); None: `default_aspects()`, i.e.
        global + local for a new catalog, else global and those it has for most paintings.

        workers: threads decoding images (None: 2 on the CPU, where the model is the slow part;
        one per CPU core when the encoder runs on a GPU, which needs feeding). detector_workers: processes running the face and pose
        detectors; 1 (the default) runs them in this process, None means one per CPU (at most
        4, ~1 GB of memory each; what `artsim index` does). Worker processes are spawned, so a
        script that asks for them needs the usual `if __name__ == "__main__":` guard."""
        started = time.perf_counter()
        scan, items, summary = _scan(source, limit)
        with self._locked(), DetectorPool(detector_workers) as pool:
            for p in scan.problems:
                self._log_failure(p.where, None, p.reason)
            indexers, done, pending = self._plan(items, aspects)
            summary.skipped_existing = len(items) - len(pending)
            max_side = max(ix.max_side for ix in indexers)
            # this catalog's kind of local features (older catalogs keep theirs)
            local_params = indexer_params(indexers)
            bar: Callable[[int | None], None] = lambda n: None  # noqa: E731
            try:
                # inside the try: Ctrl-C while downloading stops the run like Ctrl-C later
                pending = self._resolve_urls(pending, summary, max_pixels)
                self._prepare_int8(pending, max_pixels, announce=progress is True)
                bar = _progress(progress, len(pending))
                for batch_items, loaded in _decoded_batches(
                    pending, batch_size, max_side, max_pixels, self._decode_workers(workers)
                ):
                    ok: list[tuple[SourceItem, LoadedImage]] = []
                    for item, result in zip(batch_items, loaded, strict=True):
                        if isinstance(result, ImageLoadError):
                            self._log_failure(item.image, item.id, str(result))
                            summary.failed += 1
                        else:
                            ok.append((item, result))
                    if ok:
                        # one analysis per painting for all the aspects it still lacks
                        wanted = [
                            {ix.aspect for ix in indexers if it.id not in done[ix.aspect]}
                            for it, _ in ok
                        ]
                        analyses = analyse_batch(
                            [li for _, li in ok],
                            wanted,
                            encoder=self.encoder,
                            pool=pool,
                            local_params=local_params,
                        )
                        for ix in indexers:
                            rows = [
                                row
                                for (it, _), an, want in zip(ok, analyses, wanted, strict=True)
                                if ix.aspect in want
                                for row in ix.rows(it, an)
                            ]
                            if rows:
                                self._write_rows(ix, rows)
                                summary.aspects[ix.aspect] = summary.aspects.get(
                                    ix.aspect, 0
                                ) + sum(r.row_id is not None for r in rows)
                        # last, so that a painting is in the catalog only with all its rows
                        self._write_items(ok)
                        summary.added += len(ok)
                    bar(len(batch_items))
            except KeyboardInterrupt:
                summary.interrupted = True
            finally:
                bar(None)
                if self._encoder is not None:  # which runtime made this run's vectors
                    from artsim.encoders.backends import runs_bf16

                    self.manifest["model"]["backend"] = self._encoder.backend
                    self.manifest["model"]["device"] = self._encoder.device
                    self.manifest["model"]["bf16"] = runs_bf16(self._encoder)
                self._finish_run(
                    votes=not summary.interrupted and sys.exc_info()[0] is None,
                    progress=progress is True,
                )
        summary.seconds = time.perf_counter() - started
        if summary.interrupted:
            raise IndexInterrupted(summary)
        return summary

    def _decode_workers(self, workers: int | None) -> int:
        if workers is not None:
            return max(1, workers)
        on_gpu = self._encoder is not None and self._encoder.device != "cpu"
        return max(2, len(os.sched_getaffinity(0))) if on_gpu else 2

    def _register_aspect(self, ix: AspectIndexer) -> None:
        aspects = self.manifest.setdefault("aspects", {})
        current = aspects.get(ix.aspect)
        desc = {**ix.describe(), "dims": ix.vector_dims, "model": ix.model_key}
        if current and current.get("model") != ix.model_key:
            raise CatalogError(
                f"{self.path}: aspect '{ix.aspect}' was built with '{current.get('model')}', not '{ix.model_key}'"
            )
        aspects[ix.aspect] = {**(current or {}), **desc, "count": (current or {}).get("count", 0)}
        store.atomic_write_json(self.path / MANIFEST, self.manifest)

    def _done_ids(self, ix: AspectIndexer) -> set[str]:
        return self._done_ids_of(ix.aspect, ix.model_key)

    def _done_ids_of(self, aspect: str, model_key: str) -> set[str]:
        folder = _aspect_folder(self.path, aspect, model_key)
        table = store.read_parts(folder, columns=["item_id"])
        if table is None:
            return set()
        # rows of a painting whose item row was never written (killed run) do not count
        return {it for it in table.column("item_id").to_pylist() if it in self._pos}

    def _resolve_urls(
        self, items: list[SourceItem], summary: IndexSummary, max_pixels: int
    ) -> list[SourceItem]:
        """Download URL images into the catalog's cache; items whose download fails are logged."""
        urls = [it.image for it in items if _is_url(it.image)]
        if not urls:
            return items
        from artsim.sources.iiif import fetch_images

        report = fetch_images(
            urls, self.path / "cache" / "images", max_pixels=max_pixels, progress=True
        )
        out = []
        for it in items:
            if not _is_url(it.image):
                out.append(it)
            elif it.image in report.paths:
                meta = {**it.metadata, "image_url": it.metadata.get("image_url", it.image)}
                out.append(SourceItem(it.id, str(report.paths[it.image]), meta))
            else:
                self._log_failure(it.image, it.id, report.failures.get(it.image, "download failed"))
                summary.failed += 1
        return out

    def _write_items(self, ok: Sequence[tuple[SourceItem, _OriginalSize]]) -> None:
        texts = [json.dumps(it.metadata, default=str, ensure_ascii=False) for it, _ in ok]
        table = pa.table(
            {
                "id": [it.id for it, _ in ok],
                "image": [it.image for it, _ in ok],
                "width": pa.array([li.original_size[0] for _, li in ok], pa.int32()),
                "height": pa.array([li.original_size[1] for _, li in ok], pa.int32()),
                "metadata": texts,
                "added": [_now()] * len(ok),
                **typed_columns(texts),  # what --where filters read (artsim.catalog.metadata)
            }
        )
        folder = self.path / "items"
        store.atomic_write_table(store.next_part_path(folder), table)

    def _write_rows(self, ix: AspectIndexer, rows: list[AspectRow]) -> None:
        write_payloads = getattr(ix, "write_payloads", None)
        if write_payloads is not None:  # `local`: its features first, then the rows saying so
            write_payloads(rows)
        columns: dict[str, Any] = {
            "item_id": [r.item_id for r in rows],
            "row_id": [r.row_id for r in rows],
            "info": [json.dumps(r.info, default=_json_default) if r.info else "" for r in rows],
        }
        for name, dim in ix.vector_dims.items():
            mat = np.zeros((len(rows), dim), dtype=np.float32)
            for i, r in enumerate(rows):
                if name in r.vectors:
                    mat[i] = r.vectors[name]
            columns[f"vec_{name}"] = store.vector_column(mat)
        folder = _aspect_folder(self.path, ix.aspect, ix.model_key)
        store.atomic_write_table(store.next_part_path(folder), pa.table(columns))

    def _log_failure(self, where: str, item_id: str | None, reason: str) -> None:
        line = json.dumps({"time": _now(), "where": where, "id": item_id, "reason": reason}) + "\n"
        store.append_text(self.path / FAILURES_LOG, line)

    def failures(self) -> list[dict[str, Any]]:
        """Latest failure per file or row that is still not indexed."""
        latest: dict[str, dict[str, Any]] = {}
        for rec in store.iter_jsonl(self.path / FAILURES_LOG):
            if rec.get("id") and rec["id"] in self._pos:
                continue
            latest[rec.get("where", "")] = rec
        return list(latest.values())

    def _finish_run(self, *, votes: bool = True, progress: bool = False) -> None:
        """Merge parts, refresh counts, failure report, and saved indexes. progress: a bar
        while the keypoint-vote index is built or extended (seconds to a minute)."""
        store.compact_parts(self.path / "items", key="id")
        for name, meta in self.manifest.get("aspects", {}).items():
            store.compact_parts(_aspect_folder(self.path, name, meta["model"]), key=None)
        self._load_items()
        for name, meta in self.manifest.get("aspects", {}).items():
            data = self.aspect(name)
            meta["count"] = len(data)
            meta["items_done"] = len(data.done)
            if len(data.done) >= COMPLETE_SHARE * len(self._ids):
                # meant for every painting: a plain re-run redoes its rows if damage loses them
                meta["complete"] = True
            if data.parts_fingerprint and len(data) >= MMAP_MIN_ROWS:
                folder = _aspect_folder(self.path, name, meta["model"])
                for vname, vectors in data.vectors.items():
                    if not isinstance(vectors, np.memmap):
                        store.write_vector_file(folder, vname, data.parts_fingerprint, vectors)
            for vname, vectors in data.vectors.items():
                if vectors.shape[0] > 50_000:
                    _, vi = self.vector_index(name, vname)
                    save_index(vi, self.path / "index" / f"{name}-{vname}.faiss")
        failures = self.failures()
        self.manifest["counts"] = {"items": len(self._ids), "failures": len(failures)}
        self.manifest["updated"] = _now()
        store.atomic_write_json(self.path / MANIFEST, self.manifest)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["where", "id", "reason", "time"])
        for rec in failures:
            writer.writerow(
                [rec.get("where"), rec.get("id") or "", rec.get("reason"), rec.get("time")]
            )
        store.atomic_write_bytes(self.path / FAILURES_CSV, buf.getvalue().encode())
        # last, and not after an interrupted or failed run (it can take a minute)
        if votes and "local" in self.manifest.get("aspects", {}):
            bar = _vote_progress() if progress else _no_progress
            try:  # the paintings just added get their votes
                self.load_vote_index(extend=True, progress=bar)
            finally:
                bar(None, None)

    def load_vote_index(
        self,
        *,
        warn: bool = False,
        extend: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> VoteIndex | None:
        """The photo queries' keypoint-vote index (catalog/local_votes.py), loaded or built
        and saved once per open catalog: at the end of an index run with the local aspect and
        when a server's workers start, so the first photo query does not wait (9 s to build
        at 7,000 paintings). None when the stored local features cover under 90 % of the
        catalog, or when building failed (logged once by `vote_index`). warn (photo
        queries): say once, for a catalog large enough for votes, how to get them.
        extend (the end of an index run): paintings the saved index lacks are added to it.
        progress(keypoints done, total): while the index is built or extended."""
        from artsim.catalog.local import local_store
        from artsim.catalog.local_votes import MIN_PAINTINGS, STALE_SHARE, vote_index

        st = local_store(self)
        if len(st) < STALE_SHARE * len(self._ids):
            if warn and not self._told_no_votes and len(self._ids) >= MIN_PAINTINGS:
                self._told_no_votes = True
                logging.getLogger(__name__).warning(
                    "%s: photo queries run without keypoint votes, so they find fewer "
                    "paintings: local features cover %d of its %d paintings. To add them: "
                    "artsim index SOURCE --catalog %s --aspects local (docs/photos.md)",
                    self.path,
                    len(st),
                    len(self._ids),
                    self.path,
                )
            return None
        return vote_index(st, extend=extend, progress=progress or _no_progress)

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: Any,
        *,
        k: int = 10,
        aspect: str = "global",
        where: Sequence[str] | str | None = None,
        **options: Any,
    ) -> list[SearchResult]:
        """Paintings most like `query` (catalog id, image path, URL, bytes or PIL image).

        Returns a list of artsim.records.SearchResult, best first, the query item excluded.
        A facade over `artsim.search.search`, bound late (artsim/facades.py): search depends
        on the catalog, never the reverse.
        """
        return facades.search(self, query, k=k, aspect=aspect, where=where, **options)

    def info(self) -> dict[str, Any]:
        """What is on disk now (not the manifest's counts, which a killed run left behind):
        per aspect, rows and the paintings done; `pending` ones are redone by a re-run."""
        m = self.manifest
        aspects = {}
        for k, v in m.get("aspects", {}).items():
            rows, done = _count_rows(self.path, k, v["model"], self._pos)
            aspects[k] = {
                "count": rows,
                "items_done": done,
                "pending": len(self._ids) - done,
                "model": v.get("model"),
                "dims": v.get("dims"),
            }
            if k == "local":  # the features live outside the rows: their size on disk
                from artsim.catalog.local import LocalStore, stored_bytes
                from artsim.catalog.local_votes import saved_summary

                aspects[k]["bytes"] = stored_bytes(self)
                st = LocalStore(self)
                aspects[k]["stored"] = len(st)  # with those computed on demand
                aspects[k]["votes"] = saved_summary(st.votes_folder)  # photo queries' votes
        return {
            "path": str(self.path),
            "format_version": m["format_version"],
            "model": m["model"],
            "items": len(self._ids),
            "aspects": aspects,
            "failures": m.get("counts", {}).get("failures", 0),
            "created": m.get("created"),
            "updated": m.get("updated"),
        }


class _OriginalSize(Protocol):
    """What `Catalog._write_items` reads of a decoded image (a LoadedImage, or only its size
    when another process decoded it: artsim.catalog.distributed)."""

    @property
    def original_size(self) -> tuple[int, int]: ...


class IndexInterrupted(ArtsimError):
    """Raised after Ctrl-C: what was indexed so far is saved and a re-run resumes."""

    def __init__(self, summary: IndexSummary) -> None:
        super().__init__(
            f"interrupted after {summary.added} new images; the catalog is valid, re-run the same command to resume"
        )
        self.summary = summary


# ---------------------------------------------------------------------- helpers
def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj).__name__)


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _aspect_folder(root: Path, aspect: str, model_key: str) -> Path:
    return root / "vectors" / aspect / model_key.replace("/", "_")


def _check_manifest(mpath: Path, manifest: Any) -> None:
    """A manifest missing what every command reads is a one-line error, not a KeyError."""
    fix = f"run `artsim check {mpath.parent} --repair` to rebuild it"
    if not isinstance(manifest, dict):
        raise CatalogError(f"{mpath}: damaged manifest (not a JSON object); {fix}")
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise CatalogError(f'{mpath}: damaged manifest (no "model" entry with a name); {fix}')
    if not isinstance(model.get("dim"), int):
        raise CatalogError(f'{mpath}: damaged manifest (model has no "dim"); {fix}')
    aspects = manifest.get("aspects", {})
    if not isinstance(aspects, dict) or not all(
        isinstance(a, dict) and isinstance(a.get("model"), str) and isinstance(a.get("dims"), dict)
        for a in aspects.values()
    ):
        raise CatalogError(f'{mpath}: damaged manifest (bad "aspects" entry); {fix}')


def _count_rows(root: Path, aspect: str, model_key: str, known: dict[str, int]) -> tuple[int, int]:
    """(rows, paintings done) of an aspect on disk, reading only the id columns."""
    table = store.read_parts(_aspect_folder(root, aspect, model_key), columns=["item_id", "row_id"])
    if table is None:
        return 0, 0
    item_ids = table.column("item_id").to_pylist()
    rows = {r: it for it, r in zip(item_ids, table.column("row_id").to_pylist(), strict=True)
            if r is not None and it in known}  # fmt: skip
    return len(rows), len({it for it in item_ids if it in known})


def _remove_made_folders(made: list[Path]) -> None:
    """Remove folders artsim made (deepest first), the catalog folder with what it wrote."""
    if made:
        shutil.rmtree(made[0], ignore_errors=True)
    for folder in made[1:]:
        try:
            folder.rmdir()  # only while empty
        except OSError:
            break


def _read_aspect(root: Path, aspect: str, model_key: str, dims: dict[str, int]) -> AspectData:
    """An aspect's rows. Vectors come memory-mapped from the aspect's vector files when they
    were written for exactly the parts read (store.write_vector_file), so opening a large
    catalog reads only the ids; otherwise (a small catalog, parts added since by a run still
    going or killed) they are decoded from the parts."""
    data = AspectData(aspect=aspect, model_key=model_key)
    folder = _aspect_folder(root, aspect, model_key)
    ids = ["item_id", "row_id", "info"]
    table, parts = store.read_parts_listed(folder, ids)
    if table is None:
        data.vectors = {n: np.zeros((0, d), np.float32) for n, d in dims.items()}
        return data
    fingerprint = store.parts_fingerprint(parts)
    data.done = set(table.column("item_id").to_pylist())
    valid = pa.compute.is_valid(table.column("row_id"))
    keep = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    table = table.take(pa.array(keep))
    dedupe = store.dedupe_keep(table, "row_id")
    if dedupe is not None:
        table, keep = table.take(pa.array(dedupe)), keep[dedupe]
    mapped = {
        n: store.map_vector_file(folder, n, fingerprint, (table.num_rows, d))
        for n, d in dims.items()
    }
    vectors: dict[str, np.ndarray] = {n: v for n, v in mapped.items() if v is not None}
    if len(vectors) < len(dims):
        # read the parts again with their vectors: the rows may differ from the first read
        # (a writer merged parts meanwhile), so everything is taken from this one read
        full, parts = store.read_parts_listed(folder)
        if full is None:  # every part vanished (merged away) between the two reads
            return _read_aspect(root, aspect, model_key, dims)
        fingerprint = store.parts_fingerprint(parts)
        data.done = set(full.column("item_id").to_pylist())
        full = full.filter(pa.compute.is_valid(full.column("row_id")))
        table = store.dedupe_last(full, "row_id")
        vectors = {n: store.column_to_vectors(table.column(f"vec_{n}"), d) for n, d in dims.items()}
    data.parts_fingerprint = fingerprint
    data.item_ids = table.column("item_id").to_pylist()
    data.row_ids = table.column("row_id").to_pylist()
    data.info = LazyMetadata(table.column("info"))  # parsed on access: 1M empty rows took 0.5 s
    data.vectors = vectors
    return data


def _read_item_columns(
    parts: list[tuple[Path, int]], keep: np.ndarray | None, columns: list[str]
) -> pa.Table | None:
    """`columns` of the items parts a catalog was opened from, rows as it holds them (null
    where a part lacks a column); None when a part is gone or changed (merged since)."""
    tables = []
    for path, rows in parts:
        try:
            names = set(pq.read_schema(path).names)
            present = [c for c in columns if c in names]
            table = (
                store.read_part(path, present)
                if present  # a part written before typed columns: all null, the JSON decides
                else pa.table({columns[0]: pa.nulls(rows, pa.bool_())})
            )
        except (OSError, pa.ArrowException, CatalogError):
            return None
        if table.num_rows != rows:
            return None
        tables.append(table)
    if not tables:
        return None
    table = pa.concat_tables(tables, promote_options="default")
    return table if keep is None else table.take(pa.array(keep))


def _subset_aspect(data: AspectData, keep: list[int]) -> AspectData:
    idx = np.array(keep, dtype=np.int64)
    return AspectData(
        aspect=data.aspect,
        model_key=data.model_key,
        item_ids=[data.item_ids[i] for i in keep],
        row_ids=[data.row_ids[i] for i in keep],
        info=[data.info[i] for i in keep],
        vectors={n: v[idx] for n, v in data.vectors.items()},
        done=data.done,
    )


def _check_int8_wanted(model: str, device: str) -> None:
    """Fail fast, before a catalog folder exists, where an int8 catalog cannot be made."""
    from artsim.encoders.backends import EXPORTABLE
    from artsim.encoders.int8 import available

    if model not in EXPORTABLE:
        raise CatalogError(
            f"--backend {INT8_BACKEND} quantises {', '.join(sorted(EXPORTABLE))} only, not {model}"
        )
    if device == "cuda":
        raise CatalogError(f"--backend {INT8_BACKEND} runs on the CPU; use --device cpu")
    problem = available()
    if problem:
        raise CatalogError(f"--backend {INT8_BACKEND}: {problem}")


def _int8_auto_possible(model: str, backend: str, device: str) -> bool:
    """Whether auto makes a new catalog int8 (if its first run is large enough): CPUs without
    native bf16, where int8 measured 1.1-1.3x fp32 end to end once calibrated, no ground-truth
    metric lower by more than 0.01 (docs/benchmarks.md); never where PyTorch bf16 or a GPU runs."""
    from artsim.encoders.backends import EXPORTABLE, resolve_device

    if backend != "auto" or model not in EXPORTABLE:
        return False
    from artsim.encoders.base import cpu_supports_bf16
    from artsim.encoders.int8 import available

    return resolve_device(device) == "cpu" and not cpu_supports_bf16() and available() is None


def _load_one(item: SourceItem, max_side: int, max_pixels: int) -> LoadedImage | ImageLoadError:
    try:
        return open_image(item.image, max_side=max_side, max_pixels=max_pixels)
    except ImageLoadError as exc:
        return exc
    except Exception as exc:  # a decoder bug must not abort a run of thousands
        return ImageLoadError(f"{item.image}: {type(exc).__name__}: {exc}")


def _scan(
    source: str | Path | Sequence[SourceItem] | SourceScan, limit: int | None
) -> tuple[SourceScan, list[SourceItem], IndexSummary]:
    """The source scanned (a folder, CSV, list of items or a scan), the items to index (the first
    `limit`), and a run summary that counts them (`Catalog.add` and the Ray engine)."""
    from artsim.sources import scan_source

    if isinstance(source, SourceScan):
        scan = source
    elif isinstance(source, str | Path):
        scan = scan_source(source)
    else:
        scan = SourceScan(items=list(source))
    items = scan.items[:limit] if limit else scan.items
    summary = IndexSummary(
        total=len(items), source_problems=len(scan.problems), warnings=list(scan.warnings)
    )
    return scan, items, summary


def _decoded_batches(
    items: list[SourceItem], batch_size: int, max_side: int, max_pixels: int, workers: int
) -> Iterator[tuple[list[SourceItem], list[LoadedImage | ImageLoadError]]]:
    """Decode the next batches in threads (Pillow releases the GIL, and so do ONNX Runtime and
    PyTorch) while the model runs on this one, so neither the decoder nor the model waits.
    One batch ahead is enough where the model is the slow part; with many workers (a GPU to
    feed) a second batch keeps every thread busy. At most `ahead` batches of decoded images
    are held, which bounds memory."""
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    if not batches:
        return
    ahead = 2 if workers > 4 else 1
    pool = ThreadPoolExecutor(max_workers=max(1, workers))

    def submit(batch: list[SourceItem]):
        return [pool.submit(_load_one, it, max_side, max_pixels) for it in batch]

    try:
        queued = collections.deque(submit(b) for b in batches[:ahead])
        for i, batch in enumerate(batches):
            futures = queued.popleft()
            if i + ahead < len(batches):
                queued.append(submit(batches[i + ahead]))
            yield batch, [f.result() for f in futures]
    finally:  # on Ctrl-C, drop the queued decodes instead of finishing the next batch first
        pool.shutdown(wait=False, cancel_futures=True)


def _no_progress(done: int | None, total: int | None) -> None:
    pass


def _vote_progress() -> Callable[[int | None, int | None], None]:
    """A rich bar over the keypoints of the vote index being built or extended, shown from
    its first update (an index read from disk shows none); (None, None) closes it."""
    state: dict[str, Any] = {}

    def update(done: int | None, total: int | None) -> None:
        if done is None:
            if "bar" in state:
                state["bar"].stop()
            return
        if "bar" not in state:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            state["bar"] = Progress(
                TextColumn("keypoint votes"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed:,} of {task.total:,} keypoints"),
                TimeElapsedColumn(),
            )
            state["bar"].start()
            state["task"] = state["bar"].add_task("votes", total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    return update


def _progress(
    progress: bool | Callable[[int, int], None], total: int
) -> Callable[[int | None], None]:
    """A callable advancing a rich progress bar (rate and ETA); None closes it."""
    if callable(progress):
        count = [0]

        def advance_cb(n: int | None) -> None:
            if n is not None:
                count[0] += n
                progress(count[0], total)

        return advance_cb
    if not progress or total == 0:
        return lambda n: None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def render(self, task):  # images/s, which is what people compare
            speed = task.finished_speed or task.speed
            if not speed and task.completed and task.elapsed:  # too few updates for rich's estimate
                speed = task.completed / task.elapsed
            return f"{speed:5.1f} img/s" if speed else "  ... img/s"

    bar = Progress(
        TextColumn("indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        Rate(""),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    bar.start()
    task = bar.add_task("index", total=total)

    def advance(n: int | None) -> None:
        if n is None:
            bar.stop()
        else:
            bar.advance(task, n)

    return advance
