"""Merge catalogs built on different machines with the same model into one.

`merge_catalogs([A, B, ...], C)` checks that every source was built with the same model
(name, weights sha256, preprocessing, dim, pooling) and the same per-aspect models,
and that no painting id occurs in two sources; then it copies the sources' Parquet parts
(byte for byte, renumbered) into a hidden folder next to C, refreshes counts, failures.csv
and saved indexes there, and renames the folder to C. The rename is atomic, so C either
does not exist or is complete: a crash mid-merge leaves only the hidden folder, which the
next merge removes.

Image paths are kept as each source recorded them; images downloaded into a source's
cache/ stay there (copy the caches along if the sources move).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from artsim.catalog import FAILURES_LOG, MANIFEST, Catalog, _aspect_folder, _now, store
from artsim.errors import CatalogError

# what makes vectors comparable; the model_path (where the weights lay) may differ, and so
# may the precision a run used (bf16 or fp32: its vectors mix, docs/models.md; the manifest's
# bf16 is the last run's, information only)
MODEL_KEYS = ("name", "weights_sha256", "preprocess", "dim", "pooling")


def _int8_identity(model: dict) -> tuple[bool, str | None]:
    """Whether a catalog is (or will be) int8, and its network's sha256: an int8 catalog not
    calibrated yet is no fp32 one (its first run would calibrate onto the others' vectors)."""
    return "int8" in model, (model.get("int8") or {}).get("sha256")


@dataclass(slots=True)
class MergeSummary:
    items: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    aspects: dict[str, int] = field(default_factory=dict)


def _manifest(path: Path) -> dict:
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise CatalogError(f"{path}: no artsim catalog here (missing {MANIFEST})")
    try:
        manifest = store.read_json(mpath)
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{mpath}: unreadable manifest ({exc})") from exc
    if manifest.get("format_version") != store.FORMAT_VERSION:
        raise CatalogError(
            f"{path}: catalog format {manifest.get('format_version')} cannot be merged "
            f"(this artsim writes {store.FORMAT_VERSION})"
        )
    return manifest


def check_compatible(paths: Sequence[Path], manifests: Sequence[dict]) -> None:
    """Same whole-image model and weights everywhere, same model per aspect."""
    first, ref = paths[0], manifests[0]["model"]
    ref_int8 = _int8_identity(ref)
    for path, man in zip(paths[1:], manifests[1:], strict=True):
        if (int8 := _int8_identity(man["model"])) != ref_int8:
            raise CatalogError(
                f"cannot merge {path} into {first}: their vectors come from different networks "
                f"(int8: {int8[1] or 'none'} vs {ref_int8[1] or 'none'}); int8 catalogs merge "
                "only when they share one network (copy models/ and the manifest's model.int8 "
                "into a new catalog before its first index run), never with fp32 ones"
            )
        for key in MODEL_KEYS:
            if man["model"].get(key) != ref.get(key):
                a, b = ref.get(key), man["model"].get(key)
                if key == "weights_sha256":
                    a, b = f"{str(a)[:12]}…", f"{str(b)[:12]}…"
                raise CatalogError(
                    f"cannot merge {path} into {first}: model {key} differs ({b} vs {a}); "
                    "vectors from different models or weights are not comparable, re-index one "
                    "of them with the other's --model/--model-path"
                )
    models: dict[str, tuple[str, Path]] = {}
    for path, man in zip(paths, manifests, strict=True):
        for aspect, meta in man.get("aspects", {}).items():
            seen = models.setdefault(aspect, (meta.get("model"), path))
            if seen[0] != meta.get("model"):
                hint = (
                    "; catalogs made before 2026-12-01 keep 512 px local features: index the "
                    "older one's paintings into a new catalog (--aspects global,local) first"
                    if aspect == "local"
                    else ""
                )
                raise CatalogError(
                    f"cannot merge {path} into {seen[1]}: aspect '{aspect}' was built with "
                    f"'{meta.get('model')}' there and '{seen[0]}' here{hint}"
                )


def _item_ids(path: Path) -> set[str]:
    ids: set[str] = set()
    for part in store.list_parts(path / "items"):
        ids.update(pq.read_table(part, columns=["id"]).column("id").to_pylist())
    return ids


def check_ids(paths: Sequence[Path]) -> dict[Path, int]:
    """Item counts per source; a painting id in two sources is an error."""
    owner: dict[str, Path] = {}
    counts: dict[Path, int] = {}
    clashes: list[tuple[str, Path, Path]] = []
    for path in paths:
        ids = _item_ids(path)
        counts[path] = len(ids)
        for item_id in sorted(ids):
            if item_id in owner:
                clashes.append((item_id, owner[item_id], path))
            else:
                owner[item_id] = path
    if clashes:
        item_id, a, b = clashes[0]
        more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
        raise CatalogError(
            f"id {item_id!r} is in both {a} and {b}{more}; ids must be unique across the "
            "catalogs merged: index one collection with an id prefix or drop the duplicates"
        )
    return counts


def merge_catalogs(sources: Sequence[str | Path], dest: str | Path) -> MergeSummary:
    """Write catalog `dest` holding every painting and aspect row of `sources`."""
    paths = [Path(p) for p in sources]
    dest = Path(dest)
    if len(paths) < 2:
        raise CatalogError("merge needs at least two catalogs")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise CatalogError("the same catalog is listed twice")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise CatalogError(
            f"{dest}: already exists; merge into a new folder (list {dest} among the sources "
            "to include it)"
        )
    manifests = [_manifest(p) for p in paths]
    check_compatible(paths, manifests)
    counts = check_ids(paths)

    tmp = dest.parent / f".{dest.name}.merging"
    if tmp.exists():
        shutil.rmtree(tmp)  # left by a merge that crashed
    tmp.mkdir(parents=True)
    try:
        manifest = _merged_manifest(paths, manifests)
        for n, (path, man) in enumerate(zip(paths, manifests, strict=True)):
            _copy_parts(path / "items", tmp / "items")
            for aspect, meta in man.get("aspects", {}).items():
                _copy_parts(
                    _aspect_folder(path, aspect, meta["model"]),
                    _aspect_folder(tmp, aspect, meta["model"]),
                )
            if "local" in man.get("aspects", {}):
                _copy_local_features(path, tmp, n)
            log = path / FAILURES_LOG
            if log.is_file():
                with open(tmp / FAILURES_LOG, "ab") as out, open(log, "rb") as fh:
                    shutil.copyfileobj(fh, out)
        if manifest["model"].get("int8"):  # the same network in every source (checked)
            _copy_int8_network(paths[0], tmp, manifest["model"]["int8"])
        store.atomic_write_json(tmp / MANIFEST, manifest)
        merged = Catalog.open(tmp)
        with merged._locked():
            merged._finish_run()  # compacts parts, counts, failures.csv, saved indexes
        if dest.is_dir():
            dest.rmdir()  # empty (checked above)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = store.read_json(dest / MANIFEST)
    return MergeSummary(
        items=final["counts"]["items"],
        per_source={str(p): counts[p] for p in paths},
        aspects={a: m.get("count", 0) for a, m in final.get("aspects", {}).items()},
    )


def _merged_manifest(paths: Sequence[Path], manifests: Sequence[dict]) -> dict:
    manifest = {k: v for k, v in manifests[0].items() if k not in ("aspects", "counts")}
    aspects: dict[str, dict] = {}
    for man in manifests:
        for aspect, meta in man.get("aspects", {}).items():
            aspects.setdefault(aspect, {**meta, "count": 0})
    manifest.update(
        aspects=aspects,
        counts={"items": 0, "failures": 0},
        created=_now(),
        updated=_now(),
        merged_from=[str(p.resolve()) for p in paths],
    )
    return manifest


def _copy_int8_network(src: Path, dst: Path, record: dict) -> None:
    """An int8 catalog's network (artsim.encoders.int8), checked against its sha256 first."""
    from artsim.encoders.backends import BackendError
    from artsim.encoders.int8 import read_network

    try:
        xml, weights = read_network(src, record)
    except BackendError as exc:
        raise CatalogError(f"cannot merge {src}: {exc}") from exc
    network = dst / record["file"]
    network.parent.mkdir(exist_ok=True)
    network.write_bytes(xml)
    network.with_suffix(".bin").write_bytes(weights)


def _copy_local_features(src: Path, dst: Path, tag: int) -> None:
    """The local aspect's RootSIFT (catalog/local.py) lives beside the parts, in cache/:
    without it the merged catalog would count every painting as done and have no features.
    Part names get a per-source prefix (ids never repeat across sources, see check_ids);
    the ids file, which commits a part, is copied last."""
    for folder in sorted((src / "cache").glob("local-*")):
        out = dst / "cache" / folder.name
        out.mkdir(parents=True, exist_ok=True)
        # a part being written (".tmp.") is not one yet; its ids are redone by a re-run
        files = [f for f in folder.glob("part-*") if ".tmp" not in f.name]
        for f in sorted(files, key=lambda f: (f.name.endswith(".ids.json"), f.name)):
            shutil.copyfile(f, out / f"part-s{tag}-{f.name.removeprefix('part-')}")


def _copy_parts(src: Path, dst: Path) -> None:
    """Copy parts in order after those already in dst (later parts win on duplicates)."""
    for part in store.list_parts(src):
        target = store.next_part_path(dst)
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(part, target)
