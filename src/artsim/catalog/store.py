"""On-disk storage for a catalog: atomic files, append-only Parquet parts, the manifest.

Every write goes to a temp file in the same folder and is renamed into place, so a crash
(Ctrl-C, kill -9, power loss) leaves either the old file or the new one, never half of one.
Indexing appends parts; a killed run loses at most the batch in flight.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMAT_VERSION = 1
PART_GLOB = "part-*.parquet"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
    )


def atomic_write_table(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clean_temp_files(folder: Path) -> int:
    """Remove temp files left by a killed writer. Returns how many were removed."""
    removed = 0
    if folder.is_dir():
        for tmp in folder.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def list_parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(PART_GLOB)) if folder.is_dir() else []


def next_part_path(folder: Path) -> Path:
    parts = list_parts(folder)
    last = int(parts[-1].stem.split("-")[1]) if parts else 0
    return folder / f"part-{last + 1:06d}.parquet"


def read_parts(folder: Path) -> pa.Table | None:
    parts = list_parts(folder)
    if not parts:
        return None
    tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def vector_column(vectors: np.ndarray) -> pa.Array:
    """(n, d) float32 -> FixedSizeList<float32>[d] Arrow array (zero-copy-ish)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape if vectors.ndim == 2 else (0, 0)
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    return (
        pa.FixedSizeListArray.from_arrays(flat, d)
        if n
        else pa.array([], type=pa.list_(pa.float32(), max(d, 1)))
    )


def column_to_vectors(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(len(column), dim)


def compact_parts(folder: Path, *, key: str | None, max_parts: int = 32) -> bool:
    """Merge many small parts into one. Duplicate keys keep their last row. Crash-safe:
    the merged part is written first (as a higher part number), then the old ones removed;
    readers dedupe, so a crash in between only leaves duplicates that are ignored."""
    parts = list_parts(folder)
    if len(parts) <= max_parts:
        return False
    table = read_parts(folder)
    if table is None:
        return False
    if key is not None:
        table = dedupe_last(table, key)
    atomic_write_table(next_part_path(folder), table)
    for p in parts:
        p.unlink(missing_ok=True)
    return True


def dedupe_last(table: pa.Table, key: str) -> pa.Table:
    """Keep the last row for each value of `key` (later parts override earlier ones)."""
    keys = table.column(key).to_pylist()
    last: dict[Any, int] = {}
    for i, k in enumerate(keys):
        last[k] = i
    if len(last) == len(keys):
        return table
    keep = np.array(sorted(last.values()), dtype=np.int64)
    return table.take(pa.array(keep))


def read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def iter_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a crash
