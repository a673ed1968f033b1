"""On-disk storage for a catalog: atomic files, append-only Parquet parts, the manifest.

Every write goes to a temp file in the same folder and is renamed into place, so a crash
(Ctrl-C, kill -9, power loss) leaves either the old file or the new one, never half of one.
Indexing appends parts; a killed run loses at most the batch in flight.

Readers take no lock and never change anything on disk. One writer at a time holds
`CATALOG/.lock` (`writer_lock`); only that writer removes what a killed writer left.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from artsim.errors import CatalogError

FORMAT_VERSION = 1
PART_GLOB = "part-*.parquet"
PART_RE = re.compile(r"part-(\d+)\.parquet")
LOCK_FILE = ".lock"
TEMP_SUFFIX = ".tmp"
VECTOR_FILE_SUFFIX = ".f32.npy"
# how often a reader lists a folder again when a part it listed was merged away meanwhile
READ_ATTEMPTS = 8


class DamagedPartError(CatalogError):
    """A catalog file exists but cannot be read (truncated, not Parquet, wrong columns)."""

    def __init__(self, path: Path, reason: str) -> None:
        root = catalog_root(path)
        super().__init__(
            f"{path}: damaged catalog file ({reason}); run `artsim check {root} --repair` to set "
            "it aside, then re-run `artsim index` to redo its paintings"
        )
        self.path = path
        self.reason = reason


def catalog_root(path: Path) -> Path:
    """The catalog folder holding `path` (the nearest parent with a manifest.json)."""
    for parent in path.parents:
        if (parent / "manifest.json").is_file():
            return parent
    return path.parent


def short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def write_error(path: Path, exc: OSError) -> CatalogError:
    """A one-line CatalogError for a failed write; the file's previous version is untouched."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
        return CatalogError(
            f"{path.parent}: no space left on the device while writing {path.name}; the catalog "
            "is still valid: free some space and run the same command again (it resumes)"
        )
    reason = exc.strerror or short_reason(exc)
    return CatalogError(f"{path}: could not write ({reason}); the catalog is still valid")


# ---------------------------------------------------------------------- atomic writes
def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.{writer_tag()}{TEMP_SUFFIX}")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[Path, int], None]) -> None:
    """Create a temp file next to `path` (mode 0666 less the umask, like any new file), let
    `write(tmp, fd)` fill it, fsync, rename over `path`. OSErrors become one-line CatalogErrors."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_path(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)  # unlike mkstemp's 0600, the umask decides
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        write(tmp, fd)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    def write(tmp: Path, fd: int) -> None:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    _atomic_write(path, write)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
    )


def atomic_write_table(path: Path, table: pa.Table) -> None:
    def write(tmp: Path, fd: int) -> None:
        os.close(fd)  # Arrow writes the file itself (truncating it keeps its mode)
        pq.write_table(table, str(tmp), compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())

    _atomic_write(path, write)


def append_text(path: Path, text: str) -> None:
    """Append to a log file (failures.jsonl); a line cut by a crash is skipped when read."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise write_error(path, exc) from exc


# ---------------------------------------------------------------------- the writer
@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Hold the catalog's writer lock, or fail at once if another process holds it.
    Entering it also removes what a killed writer left behind (its temp files)."""
    lock = FileLock(root / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise CatalogError(
            f"{root}: another artsim process is writing this catalog; wait for it to finish "
            "(searching it meanwhile is fine)"
        ) from None
    except OSError as exc:
        raise CatalogError(f"{root / LOCK_FILE}: cannot lock the catalog ({exc})") from exc
    try:
        clean_temp_files(root)
        yield
    finally:
        lock.release()


def clean_temp_files(root: Path) -> int:
    """Remove temp files left by a killed writer. Returns how many were removed.

    Call only while holding `writer_lock`: a temp file may be a live writer's part in flight.
    In `cache/`, which readers (searches, the server's thumbnails and maps) write to without
    the lock, only temp files whose `writer_tag` names a process of this host that has ended
    are removed, and the partial downloads of `cache/images/`, which only the lock holder
    makes."""
    removed = 0
    if not root.is_dir():
        return 0
    for tmp in root.rglob(f"*{TEMP_SUFFIX}*"):
        if tmp.relative_to(root).parts[0] == "cache":
            dead = writer_gone(tmp.name)
        else:
            dead = tmp.name.startswith(".") and tmp.name.endswith(TEMP_SUFFIX)
        if dead and tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    # URL downloads in flight (sources.iiif): only `Catalog.add`, the lock holder, writes here
    for part in (root / "cache" / "images").glob("*/.*.part"):
        part.unlink(missing_ok=True)
        removed += 1
    return removed


_WRITER_RE = re.compile(r"\.by-([0-9a-f]+)-(\d+)\.tmp(?:\.npy)?$")


def _host() -> str:
    # a hash: hostnames differ in characters a file name cannot keep
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:10]


def writer_tag() -> str:
    """`by-HOST-PID` (HOST: a hash of the host's name): put just before `.tmp` in a temp
    file's name, it lets a later writer tell a dead process's leftover from a live one's file
    in flight (`writer_gone`)."""
    return f"by-{_host()}-{os.getpid()}"


def writer_gone(name: str) -> bool:
    """Whether this temp file's name carries a `writer_tag` of a process of this host that
    has ended. Another host's (a catalog on a network drive) is never judged gone. (Containers
    that share a host name and a catalog but not their process ids would misjudge each
    other's: give them host names of their own.)"""
    import psutil

    m = _WRITER_RE.search(name)
    if m is None or m.group(1) != _host():
        return False
    return not psutil.pid_exists(int(m.group(2)))


# ---------------------------------------------------------------------- parts
def part_number(path: Path) -> int | None:
    m = PART_RE.fullmatch(path.name)
    return int(m.group(1)) if m else None


def list_parts(folder: Path) -> list[Path]:
    """Parts in the order they were written (later parts override earlier ones)."""
    if not folder.is_dir():
        return []
    parts = [p for p in folder.glob(PART_GLOB) if part_number(p) is not None]
    return sorted(parts, key=lambda p: part_number(p) or 0)


def next_part_path(folder: Path) -> Path:
    parts = list_parts(folder)
    last = (part_number(parts[-1]) or 0) if parts else 0
    return folder / f"part-{last + 1:06d}.parquet"


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One part; FileNotFoundError if it vanished, DamagedPartError if it cannot be read."""
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        # Arrow's message repeats the path; keep what is wrong ("Parquet magic bytes not found…")
        reason = re.sub(r"^Could not open Parquet input source '.*?':\s*", "", str(exc))
        raise DamagedPartError(path, short_reason(ValueError(reason.split(". ")[0]))) from exc


def read_parts(folder: Path, columns: list[str] | None = None) -> pa.Table | None:
    """All parts of a folder as one table, in part order (see `read_parts_listed`)."""
    return read_parts_listed(folder, columns)[0]


def read_parts_listed(
    folder: Path, columns: list[str] | None = None
) -> tuple[pa.Table | None, list[tuple[Path, int]]]:
    """All parts of a folder as one table, in part order. Lock-free: the writer may merge
    parts meanwhile. It writes the merged part (numbered above every part it merges) before
    removing the old ones, so a part that vanished between listing and reading has its rows
    in a part numbered above everything listed: list again and read just those. Rows read
    twice (an old part and the merged one) are duplicates, which every reader drops.
    Returns the table and the parts it holds, in order, with their row counts."""
    got: dict[int, pa.Table] = {}
    paths: dict[int, Path] = {}
    above = -1  # after a vanished part: read only parts numbered above this
    for _ in range(READ_ATTEMPTS):
        parts = list_parts(folder)
        todo = [p for p in parts if (part_number(p) or 0) > above and part_number(p) not in got]
        vanished = False
        for p in todo:
            try:
                got[part_number(p) or 0] = read_part(p, columns)
                paths[part_number(p) or 0] = p
            except FileNotFoundError:
                vanished = True
        if not vanished:
            break
        above = max(above, *(part_number(p) or 0 for p in parts))
    else:
        raise CatalogError(
            f"{folder}: parts kept vanishing while being read (a writer merging them?); try again"
        )
    if not got:
        return None, []
    tables = [got[n] for n in sorted(got)]
    listed = [(paths[n], got[n].num_rows) for n in sorted(got)]
    if len(tables) == 1:
        return tables[0], listed
    try:
        return pa.concat_tables(tables, promote_options="default"), listed
    except pa.ArrowException as exc:
        raise CatalogError(
            f"{folder}: parts with incompatible columns ({short_reason(exc)}); run "
            f"`artsim check {catalog_root(folder / 'x')} --repair`"
        ) from exc


def replace_parts(folder: Path, table: pa.Table, old_parts: list[Path]) -> Path:
    """Write `table` as a new last part, then remove `old_parts`. A reader sees the old parts,
    or the new one, or both (duplicates that readers drop), never neither."""
    new = next_part_path(folder)
    atomic_write_table(new, table)
    for p in old_parts:
        # Windows: a reader has it open; left, its rows are duplicates that readers drop
        with suppress(PermissionError):
            p.unlink(missing_ok=True)
    return new


def compact_parts(folder: Path, *, key: str | None, max_parts: int = 32) -> bool:
    """Merge many small parts into one. Duplicate keys keep their last row. Crash-safe:
    the merged part is written first (as a higher part number), then the old ones removed;
    readers dedupe, so a crash in between only leaves duplicates that are ignored."""
    parts = list_parts(folder)
    if len(parts) <= max_parts:
        return False
    tables = [read_part(p) for p in parts]  # the writer holds the lock: nothing vanishes
    table = pa.concat_tables(tables, promote_options="default")
    if key is not None:
        table = dedupe_last(table, key)
    replace_parts(folder, table, parts)
    return True


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


def dedupe_last(table: pa.Table, key: str) -> pa.Table:
    """Keep the last row for each value of `key` (later parts override earlier ones)."""
    keep = dedupe_keep(table, key)
    return table if keep is None else table.take(pa.array(keep))


def dedupe_keep(table: pa.Table, key: str) -> np.ndarray | None:
    """The rows `dedupe_last` keeps, in order; None when it keeps them all."""
    column = table.column(key)
    n = len(column)
    if n == 0 or pc.count_distinct(column, mode="all").as_py() == n:
        return None  # the usual case, decided in Arrow (a Python dict took 1.1 s at 1M rows)
    codes = column.combine_chunks().dictionary_encode().indices
    if codes.null_count:  # null keys are one key, as in a dict
        codes = pc.fill_null(codes, len(codes))
    codes = codes.to_numpy(zero_copy_only=False)
    _, first_from_end = np.unique(codes[::-1], return_index=True)
    return np.sort(n - 1 - first_from_end).astype(np.int64)


# ---------------------------------------------------------------------- memory-mapped vectors
def parts_fingerprint(parts: Iterable[tuple[Path, int]]) -> str:
    """Names, row counts and sizes of the parts a table was read from (parts are never
    rewritten in place: a merge or repair writes a new, higher-numbered part)."""
    text = "\n".join(f"{p.name}:{n}:{_size(p)}" for p, n in parts)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _size(path: Path) -> int:
    # with the name and rows, tells a part apart from one written later under a freed number
    try:
        return path.stat().st_size
    except OSError:
        return -1


def vector_file(folder: Path, name: str, fingerprint: str) -> Path:
    return folder / f"{name}-{fingerprint}{VECTOR_FILE_SUFFIX}"


def write_vector_file(folder: Path, name: str, fingerprint: str, vectors: np.ndarray) -> Path:
    """An aspect's vectors (rows in the order readers load them) as a .npy that readers map
    instead of decoding every part. Named after the parts it was made from, so a reader maps
    it only when it read exactly those parts; written atomically; older ones are removed (a
    reader that mapped one keeps it until it closes)."""
    path = vector_file(folder, name, fingerprint)

    def write(tmp: Path, fd: int) -> None:
        with os.fdopen(fd, "wb") as fh:
            np.lib.format.write_array(fh, np.ascontiguousarray(vectors, np.float32))
            fh.flush()
            os.fsync(fh.fileno())

    _atomic_write(path, write)
    for old in folder.glob(f"{name}-*{VECTOR_FILE_SUFFIX}"):
        if old != path:
            with suppress(OSError):  # Windows: a reader has it mapped
                old.unlink(missing_ok=True)
    return path


def map_vector_file(
    folder: Path, name: str, fingerprint: str, shape: tuple[int, int]
) -> np.ndarray | None:
    """The vectors of `write_vector_file`, memory-mapped read-only (rows are read from disk
    when touched); None when there is none for these parts or it does not fit."""
    path = vector_file(folder, name, fingerprint)
    try:
        mm = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if mm.shape != shape or mm.dtype != np.float32:
        return None
    return mm


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
