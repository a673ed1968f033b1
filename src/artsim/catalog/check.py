"""`artsim check`: verify a catalog on disk, and repair what can be repaired.

Checked: the manifest; every Parquet part (readable, expected columns, vector dimensions);
duplicate ids and rows; rows whose painting has no item row; paintings without rows in an
aspect; the manifest's counts. Repair (under the writer lock) moves damaged parts into
CATALOG/damaged/ (never deletes them), rewrites folders without duplicates and stray rows,
rebuilds a damaged manifest from what is on disk, and rewrites the counts. Paintings whose
rows were in a damaged part are then simply not done, so a re-run of `artsim index` redoes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from artsim.catalog import MANIFEST, _aspect_folder, _check_manifest, _now, store
from artsim.catalog.aspects import ASPECTS
from artsim.errors import ArtsimError, CatalogError

DAMAGED = "damaged"
ITEM_COLUMNS = ("id", "image", "width", "height", "metadata")
ROW_COLUMNS = ("item_id", "row_id", "info")


@dataclass(slots=True)
class DamagedPart:
    path: Path
    reason: str
    moved_to: Path | None = None


@dataclass(slots=True)
class AspectCheck:
    """One aspect's rows on disk, after dropping damaged parts."""

    name: str
    model: str
    rows: int = 0  # rows with vectors (faces, figures, one per painting for global)
    items_done: int = 0
    pending: list[str] = field(default_factory=list)  # paintings without rows: a re-run does them
    stray_items: list[str] = field(default_factory=list)  # rows without an item row
    duplicate_rows: int = 0


@dataclass(slots=True)
class CheckReport:
    path: Path
    problems: list[str] = field(default_factory=list)  # damage: the catalog needs --repair
    notes: list[str] = field(default_factory=list)  # harmless leftovers of a killed run
    damaged: list[DamagedPart] = field(default_factory=list)
    items: int = 0
    duplicate_items: int = 0
    aspects: dict[str, AspectCheck] = field(default_factory=dict)
    repaired: list[str] = field(default_factory=list)
    remaining: list[str] | None = None  # after a repair: the problems a fresh check still finds

    @property
    def ok(self) -> bool:
        """Valid as it is now (after the repair, if one was asked for)."""
        return not (self.problems if self.remaining is None else self.remaining)

    @property
    def redo(self) -> list[str]:
        """Paintings a re-run of `artsim index` must (re)do: rows missing in some aspect."""
        ids: set[str] = set()
        for a in self.aspects.values():
            ids.update(a.pending)
            ids.update(a.stray_items)
        return sorted(ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "problems": self.problems,
            "notes": self.notes,
            "damaged": [
                {"path": str(d.path), "reason": d.reason, "moved_to": str(d.moved_to or "")}
                for d in self.damaged
            ],
            "items": self.items,
            "aspects": {
                n: {
                    "model": a.model,
                    "rows": a.rows,
                    "items_done": a.items_done,
                    "pending": len(a.pending),
                    "stray_items": len(a.stray_items),
                }
                for n, a in self.aspects.items()
            },
            "redo": self.redo,
            "repaired": self.repaired,
            "remaining": self.remaining,
        }


def check_catalog(path: str | Path, *, repair: bool = False) -> CheckReport:
    """Verify the catalog at `path`; with repair=True also fix it (needs the writer lock)."""
    root = Path(path)
    if not root.is_dir():
        raise CatalogError(f"{root}: no such catalog folder")
    if not (root / MANIFEST).is_file() and not (root / "items").is_dir():
        raise CatalogError(f"{root}: no artsim catalog here (no {MANIFEST}, no items/)")
    if not repair:
        return _check(root, repair=False)
    with store.writer_lock(root):
        report = _check(root, repair=True)
        report.remaining = _check(root, repair=False).problems
    return report


def _check(root: Path, *, repair: bool) -> CheckReport:
    report = CheckReport(path=root)
    manifest = _read_manifest(root, report)
    aspects = _aspect_models(root, manifest)

    items, item_parts = _read_folder(root / "items", ITEM_COLUMNS, {}, report)
    ids: list[str] = items.column("id").to_pylist() if items is not None else []
    known = set(ids)
    report.items = len(known)
    report.duplicate_items = len(ids) - len(known)
    if report.duplicate_items:
        report.notes.append(
            f"items: {report.duplicate_items} repeated rows (a re-run or an interrupted merge; "
            "readers keep the last, the next merge drops them)"
        )

    tables: dict[str, tuple[pa.Table | None, list[Path]]] = {}
    for name, (model, dims) in aspects.items():
        folder = _aspect_folder(root, name, model)
        table, parts = _read_folder(folder, ROW_COLUMNS, dims, report)
        tables[name] = (table, parts)
        report.aspects[name] = _aspect_check(name, model, table, known, ids)

    for a in report.aspects.values():
        if a.stray_items:
            report.notes.append(
                f"{a.name}: rows of {len(a.stray_items)} paintings without an item row (a killed "
                "run, or a damaged items part); readers ignore them, a re-run redoes them"
            )
        if a.duplicate_rows:
            report.notes.append(
                f"{a.name}: {a.duplicate_rows} repeated rows (readers keep the last; --repair "
                "drops them)"
            )
        if a.pending:
            report.notes.append(
                f"{a.name}: {len(a.pending)} of {report.items} paintings have no rows yet; "
                "a re-run of `artsim index` with this aspect does them"
            )
    if manifest is not None:
        _compare_counts(manifest, report)

    if repair:
        _repair(root, manifest, aspects, report, items, item_parts, tables, known)
    return report


# ---------------------------------------------------------------------- reading
def _read_manifest(root: Path, report: CheckReport) -> dict[str, Any] | None:
    mpath = root / MANIFEST
    if not mpath.is_file():
        report.problems.append(f"{mpath}: missing")
        return None
    try:
        manifest = store.read_json(mpath)
        _check_manifest(mpath, manifest)
    except (OSError, ValueError) as exc:
        report.problems.append(f"{mpath}: unreadable ({store.short_reason(exc)})")
        return None
    except CatalogError as exc:
        report.problems.append(str(exc).split("; run")[0])
        return None
    if manifest.get("format_version") != store.FORMAT_VERSION:
        report.problems.append(
            f"{mpath}: format {manifest.get('format_version')} (this artsim reads "
            f"{store.FORMAT_VERSION})"
        )
    return manifest


def _aspect_models(root: Path, manifest: dict[str, Any] | None) -> dict[str, tuple[str, dict]]:
    """aspect -> (model key, vector dims), from the manifest or, if it is damaged, the folders."""
    if manifest is not None:
        return {
            name: (meta["model"], dict(meta.get("dims", {})))
            for name, meta in manifest.get("aspects", {}).items()
        }
    found: dict[str, tuple[str, dict]] = {}
    for name in ASPECTS:
        folders = sorted(p for p in (root / "vectors" / name).glob("*") if p.is_dir())
        if folders:
            found[name] = (folders[0].name, {})  # dims read from the parts below
    return found


def _vector_dims(schema: pa.Schema) -> dict[str, int]:
    dims = {}
    for f in schema:
        if f.name.startswith("vec_") and pa.types.is_fixed_size_list(f.type):
            dims[f.name[4:]] = f.type.list_size
    return dims


def _read_folder(
    folder: Path, columns: tuple[str, ...], dims: dict[str, int], report: CheckReport
) -> tuple[pa.Table | None, list[Path]]:
    """The readable parts of a folder, concatenated; damaged ones go to report.damaged.
    `dims` ({} for items) is filled from the first part when the manifest could not say."""
    good: list[pa.Table] = []
    parts = store.list_parts(folder)
    for p in parts:
        try:
            table = store.read_part(p)
        except FileNotFoundError:
            continue
        except store.DamagedPartError as exc:
            _damaged(report, p, exc.reason)
            continue
        missing = [c for c in columns if c not in table.column_names]
        if columns == ROW_COLUMNS and not dims:
            dims.update(_vector_dims(table.schema))
        if columns == ROW_COLUMNS:
            have = _vector_dims(table.schema)
            missing += [f"vec_{n}" for n in dims if n not in have]
            wrong = [
                f"vec_{n} has {have[n]} values, not {d}"
                for n, d in dims.items()
                if n in have and have[n] != d
            ]
            if wrong:
                _damaged(report, p, "; ".join(wrong))
                continue
        if missing:
            _damaged(report, p, f"missing column(s) {', '.join(missing)}")
            continue
        good.append(table)
    if not good:
        return None, parts
    try:
        return pa.concat_tables(good, promote_options="default"), parts
    except pa.ArrowException as exc:
        report.problems.append(f"{folder}: parts with incompatible columns ({exc})")
        return None, parts


def _damaged(report: CheckReport, path: Path, reason: str) -> None:
    report.damaged.append(DamagedPart(path, reason))
    report.problems.append(f"{path}: damaged ({reason})")


def _aspect_check(
    name: str, model: str, table: pa.Table | None, known: set[str], ids: list[str]
) -> AspectCheck:
    a = AspectCheck(name=name, model=model)
    if table is None:
        a.pending = sorted(known)
        return a
    item_ids = table.column("item_id").to_pylist()
    row_ids = table.column("row_id").to_pylist()
    with_rows = set(item_ids)
    rows = [r for r in row_ids if r is not None]
    a.duplicate_rows = len(rows) - len(set(rows))
    a.rows = len(
        {r for it, r in zip(item_ids, row_ids, strict=True) if r is not None and it in known}
    )
    a.items_done = len(with_rows & known)
    a.pending = [i for i in dict.fromkeys(ids) if i not in with_rows]
    a.stray_items = sorted(with_rows - known)
    return a


def _compare_counts(manifest: dict[str, Any], report: CheckReport) -> None:
    said = manifest.get("counts", {}).get("items")
    if said != report.items:
        report.notes.append(
            f"manifest counts {said} paintings, {report.items} are on disk (a killed run); "
            "--repair rewrites the counts"
        )
    for name, a in report.aspects.items():
        said = manifest.get("aspects", {}).get(name, {}).get("count")
        if said != a.rows:
            report.notes.append(f"manifest counts {said} {name} rows, {a.rows} are on disk")


# ---------------------------------------------------------------------- repairing
def _repair(
    root: Path,
    manifest: dict[str, Any] | None,
    aspects: dict[str, tuple[str, dict]],
    report: CheckReport,
    items: pa.Table | None,
    item_parts: list[Path],
    tables: dict[str, tuple[pa.Table | None, list[Path]]],
    known: set[str],
) -> None:
    for d in report.damaged:
        d.moved_to = _move_aside(root, d.path)
        report.repaired.append(
            f"moved {d.path.relative_to(root)} to {d.moved_to.relative_to(root)}"
        )
    damaged = {d.path for d in report.damaged}

    # one clean part per folder: no duplicates, no rows of unknown paintings
    if items is not None and (report.duplicate_items or damaged & set(item_parts)):
        clean = store.dedupe_last(items, "id")
        store.replace_parts(root / "items", clean, [p for p in item_parts if p not in damaged])
        report.repaired.append(f"items: rewrote {clean.num_rows} rows as one part")
    for name, (table, parts) in tables.items():
        a = report.aspects[name]
        if table is None or not (a.duplicate_rows or a.stray_items or damaged & set(parts)):
            continue
        keep = pc.is_in(table.column("item_id"), value_set=pa.array(sorted(known), pa.string()))
        clean = _dedupe_rows(table.filter(keep))
        folder = _aspect_folder(root, name, aspects[name][0])
        store.replace_parts(folder, clean, [p for p in parts if p not in damaged])
        for saved in (root / "index").glob(f"{name}-*.faiss"):  # derived; rebuilt when needed
            saved.unlink(missing_ok=True)
        for mapped in folder.glob(f"*{store.VECTOR_FILE_SUFFIX}"):  # derived, as above
            mapped.unlink(missing_ok=True)
        report.repaired.append(f"{name}: rewrote {clean.num_rows} rows as one part")

    if manifest is None:
        manifest = _rebuild_manifest(root, aspects, report)
        if manifest is None:
            return
    manifest["counts"] = {**manifest.get("counts", {}), "items": report.items}
    for name, a in report.aspects.items():
        meta = manifest.setdefault("aspects", {}).setdefault(name, {"model": a.model})
        meta["count"] = a.rows
        meta["items_done"] = a.items_done
    manifest["updated"] = _now()
    store.atomic_write_json(root / MANIFEST, manifest)
    report.repaired.append("rewrote the manifest's counts")


def _dedupe_rows(table: pa.Table) -> pa.Table:
    """Last row per row_id; "nothing found" rows (no row_id) once per painting."""
    keys = [
        r if r is not None else ("none", it)
        for it, r in zip(
            table.column("item_id").to_pylist(), table.column("row_id").to_pylist(), strict=True
        )
    ]
    last = {k: i for i, k in enumerate(keys)}
    if len(last) == len(keys):
        return table
    return table.take(pa.array(sorted(last.values()), pa.int64()))


def _move_aside(root: Path, path: Path) -> Path:
    """Move a damaged file under CATALOG/damaged/, keeping its relative path; never overwrite."""
    target = root / DAMAGED / path.relative_to(root)
    n = 1
    while target.exists():
        target = target.with_name(f"{path.stem}.{n}{path.suffix}")
        n += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    path.replace(target)
    return target


def _rebuild_manifest(
    root: Path, aspects: dict[str, tuple[str, dict]], report: CheckReport
) -> dict[str, Any] | None:
    """A new manifest from the vector folders and the encoder they name (offline)."""
    from artsim.encoders import load_encoder, recorded_size, takes_size
    from artsim.encoders.backends import runs_bf16

    mpath = root / MANIFEST
    if "global" not in aspects:
        report.problems.append(
            f"{mpath}: cannot rebuild it: no vectors/global/<model>/ folder names the model"
        )
        return None
    model, dims = aspects["global"]
    try:
        old = store.read_json(mpath) if mpath.is_file() else {}
    except (OSError, ValueError):
        old = {}
    old = old if isinstance(old, dict) else {}
    try:
        # the input size the vectors were made at: the old manifest's, if it says
        size = recorded_size({**(old.get("model") or {}), "name": model})
    except ArtsimError:
        size = None
        if takes_size(model):
            from artsim.encoders.efficientnet import DEFAULT_SIZE

            report.notes.append(
                f"{mpath}: no record of {model}'s input size survives; the rebuilt manifest "
                f"says {DEFAULT_SIZE} px, the default since 2026-12-03. A catalog made before "
                "then ran at 260 px: if search finds poorly, re-index into a new folder"
            )
    except (TypeError, AttributeError):
        size = None
    try:
        enc = load_encoder(model, size=size)
    except ArtsimError as exc:
        report.problems.append(f"{mpath}: cannot rebuild it: model {model!r}: {exc}")
        return None
    if dims and dims.get("global") != enc.dim:
        report.problems.append(
            f"{mpath}: cannot rebuild it: vectors have {dims.get('global')} values, {model} gives "
            f"{enc.dim}"
        )
        return None
    desc = enc.describe()
    # an int8 catalog's vectors come from its own network (artsim.encoders.int8): without its
    # record the catalog would pass for fp32 and take fp32 vectors beside int8 ones
    networks = sorted((root / "models").glob("int8-*.xml"))
    if len(networks) > 1:
        report.problems.append(
            f"{mpath}: cannot rebuild it: {len(networks)} int8 networks in {root / 'models'}, "
            "and nothing says which one made the vectors"
        )
        return None
    int8: dict[str, Any] = {}
    if networks:
        from artsim.encoders.int8 import INT8_BACKEND, network_sha256

        xml = networks[0]
        sha = network_sha256(xml.read_bytes(), xml.with_suffix(".bin").read_bytes())
        int8 = {
            "int8": {"file": f"models/{xml.name}", "sha256": sha, "rebuilt": True},
            "backend": INT8_BACKEND,
        }
    manifest = {
        "format_version": store.FORMAT_VERSION,
        "created": old.get("created", _now()),
        "model": {
            "name": enc.name,
            "weights_sha256": enc.weights_hash,
            "preprocess": desc["preprocess"],
            "dim": enc.dim,
            "bf16": runs_bf16(enc),
            "pooling": enc.extra.get("pooling"),
            "model_path": None,
            **int8,
        },
        "aspects": {
            name: {"model": m, "dims": d or {}, "count": 0} for name, (m, d) in aspects.items()
        },
        "counts": {"items": report.items, "failures": 0},
    }
    if mpath.is_file():
        _move_aside(root, mpath)
    report.repaired.append(
        f"rebuilt {MANIFEST} for model {model} (the default weights and settings; "
        "the old one, if any, is in damaged/)"
    )
    return manifest


def report_lines(report: CheckReport, *, limit: int = 10) -> list[str]:
    """The report as text, for `artsim check`."""
    out = [f"catalog   {report.path}", f"paintings {report.items}"]
    for a in report.aspects.values():
        out.append(
            f"aspect    {a.name}: {a.rows} rows ({a.model}), {a.items_done} paintings done, "
            f"{len(a.pending)} pending"
        )
    for p in report.problems:
        out.append(f"problem   {p}")
    for n in report.notes:
        out.append(f"note      {n}")
    for r in report.repaired:
        out.append(f"repaired  {r}")
    redo = report.redo
    if redo:
        shown = ", ".join(redo[:limit]) + (f", … ({len(redo)} in all)" if len(redo) > limit else "")
        out.append(f"redo      {shown}: re-run `artsim index` on the same source to index them")
    for p in report.remaining or []:
        out.append(f"remaining {p}")
    if report.ok:
        out.append(
            "ok        the catalog is valid" + (" (after repair)" if report.repaired else "")
        )
    elif report.remaining is None:
        out.append(f"damaged   run `artsim check {report.path} --repair` to set the damage aside")
    return out
