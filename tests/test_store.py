"""artsim.catalog.store: atomic writes, part listing, lock-free reads during compaction, the lock."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from artsim.catalog import store
from artsim.errors import CatalogError


def _ids_table(ids: list[str]) -> pa.Table:
    return pa.table({"id": ids, "n": list(range(len(ids)))})


def _write_parts(folder, batches: list[list[str]]) -> None:
    for ids in batches:
        store.atomic_write_table(store.next_part_path(folder), _ids_table(ids))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------------- atomic writes
def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.json"
    store.atomic_write_json(path, {"x": 1})
    store.atomic_write_json(path, {"x": 2})
    assert store.read_json(path) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "part-000001.parquet"
    store.atomic_write_table(path, _ids_table(["a"]))

    def boom(table, where, **kw):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 half")  # a partial write, then the failure
        raise RuntimeError("killed")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(RuntimeError):
        store.atomic_write_table(path, _ids_table(["b"]))
    assert pq.read_table(path).column("id").to_pylist() == ["a"]
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT])
def test_full_disk_is_one_line_and_names_the_folder(tmp_path, monkeypatch, err):
    path = tmp_path / "items" / "part-000001.parquet"

    def full(table, where, **kw):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(CatalogError) as info:
        store.atomic_write_table(path, _ids_table(["a"]))
    message = str(info.value)
    assert "\n" not in message
    assert "no space left" in message and str(path.parent) in message
    assert "run the same command again" in message
    assert not list(path.parent.iterdir())


def test_other_write_errors_are_catalog_errors(tmp_path, monkeypatch):
    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(CatalogError, match=r"could not write .*Permission denied"):
        store.atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        store.atomic_write_bytes(tmp_path / "a.bin", b"x")
        store.atomic_write_json(tmp_path / "m.json", {})
        store.atomic_write_table(tmp_path / "part-000001.parquet", _ids_table(["a"]))
    finally:
        os.umask(old)
    for name in ("a.bin", "m.json", "part-000001.parquet"):
        assert _mode(tmp_path / name) == 0o666 & ~umask, name


# ---------------------------------------------------------------------- parts
def test_list_parts_orders_by_number_and_ignores_strays(tmp_path):
    for n in (2, 10, 1_000_001):
        store.atomic_write_table(tmp_path / f"part-{n:06d}.parquet", _ids_table([str(n)]))
    (tmp_path / "part-notes.parquet").write_text("not a part")
    (tmp_path / ".part-000011.parquet.abc.tmp").write_text("in flight")
    assert [store.part_number(p) for p in store.list_parts(tmp_path)] == [2, 10, 1_000_001]
    assert store.next_part_path(tmp_path).name == "part-1000002.parquet"
    assert store.next_part_path(tmp_path / "none").name == "part-000001.parquet"


def test_read_parts_concatenates_in_order(tmp_path):
    assert store.read_parts(tmp_path) is None
    _write_parts(tmp_path, [["a", "b"], ["c"], ["a"]])
    table = store.read_parts(tmp_path)
    assert table.column("id").to_pylist() == ["a", "b", "c", "a"]
    assert store.dedupe_last(table, "id").column("n").to_pylist() == [1, 0, 0]
    assert store.read_parts(tmp_path, columns=["id"]).column_names == ["id"]


def test_damaged_part_names_the_file(tmp_path):
    cat = tmp_path / "cat"
    store.atomic_write_json(cat / "manifest.json", {})
    folder = cat / "items"
    _write_parts(folder, [["a"], ["b"]])
    second = store.list_parts(folder)[1]
    second.write_bytes(second.read_bytes()[:40])  # truncated
    with pytest.raises(store.DamagedPartError) as info:
        store.read_parts(folder)
    message = str(info.value)
    assert "\n" not in message
    assert str(second) in message and f"artsim check {cat} --repair" in message
    assert info.value.path == second


def test_reader_retries_when_compaction_removes_a_listed_part(tmp_path, monkeypatch):
    """The writer merges parts between the reader's listing and its reading of them
    (issue 16, item 11): the reader lists again and sees every row, once merged."""
    _write_parts(tmp_path, [[f"id{i}"] for i in range(5)])
    real_read = pq.read_table
    calls = []

    def read_then_compact(path, **kw):
        table = real_read(path, **kw)
        if not calls:  # the first part is read, then the writer compacts
            calls.append(path)
            assert store.compact_parts(tmp_path, key="id", max_parts=1)
        return table

    monkeypatch.setattr(pq, "read_table", read_then_compact)
    table = store.read_parts(tmp_path)
    # part 1 as read before the merge, then the merged part: a duplicate readers drop
    assert table.column("id").to_pylist() == ["id0"] + [f"id{i}" for i in range(5)]
    assert store.dedupe_last(table, "id").num_rows == 5
    assert len(store.list_parts(tmp_path)) == 1


def test_compaction_writes_the_merged_part_before_removing_old_ones(tmp_path, monkeypatch):
    _write_parts(tmp_path, [["a"], ["b"], ["a"]])
    seen = []
    real_unlink = type(tmp_path).unlink

    def unlink(path, missing_ok=False):
        # whenever an old part goes, the merged one is already complete on disk
        seen.append(store.read_parts(tmp_path).num_rows)
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(type(tmp_path), "unlink", unlink)
    assert not store.compact_parts(tmp_path, key="id", max_parts=3)
    assert store.compact_parts(tmp_path, key="id", max_parts=2)
    monkeypatch.undo()
    parts = store.list_parts(tmp_path)
    assert [p.name for p in parts] == ["part-000004.parquet"]
    merged = pq.read_table(parts[0])
    assert merged.column("id").to_pylist() == ["b", "a"]  # the last "a" kept
    assert seen and min(seen) >= 2  # never fewer rows than the merged part holds


def test_readers_never_see_a_gap_while_a_writer_compacts(tmp_path):
    """A thread appends and compacts; readers in parallel always see every committed row."""
    _write_parts(tmp_path, [["seed"]])
    committed = [1]
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for i in range(60):
                _write_parts(tmp_path, [[f"w{i}"]])
                committed[0] += 1
                store.compact_parts(tmp_path, key="id", max_parts=4)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not stop.is_set() or reads == 0:
        floor = committed[0]
        ids = store.read_parts(tmp_path).column("id").to_pylist()
        assert len(set(ids)) >= floor
        reads += 1
    thread.join()
    assert not errors
    assert len(set(store.read_parts(tmp_path).column("id").to_pylist())) == 61


def test_vector_columns_round_trip():
    vecs = np.arange(12, dtype=np.float32).reshape(4, 3)
    col = store.vector_column(vecs)
    assert np.array_equal(store.column_to_vectors(col, 3), vecs)
    assert store.column_to_vectors(store.vector_column(np.zeros((0, 3))), 3).shape == (0, 3)


# ---------------------------------------------------------------------- the writer lock
def test_one_writer_at_a_time(tmp_path):
    with (
        store.writer_lock(tmp_path),
        pytest.raises(CatalogError, match="another artsim process is writing"),
        store.writer_lock(tmp_path),
    ):
        pass
    with store.writer_lock(tmp_path):  # released: the next writer gets it
        pass


def test_a_writer_in_another_process_holds_the_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from artsim.catalog import store\n"
         "with store.writer_lock(Path(sys.argv[1])):\n"
         "    print('locked', flush=True); sys.stdin.read()",
         str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(CatalogError, match="another artsim process is writing this catalog"),
            store.writer_lock(tmp_path),
        ):
            pass
    finally:
        holder.communicate("", timeout=60)  # closing stdin ends the holder, and its lock
    assert holder.returncode == 0
    with store.writer_lock(tmp_path):
        pass


def test_only_the_lock_holder_cleans_temp_files(tmp_path):
    stale = tmp_path / "items" / ".part-000002.parquet.abc.tmp"
    thumb = tmp_path / "cache" / "thumbs" / ".t.jpg.abc.tmp"  # a reader's, in flight
    for p in (stale, thumb):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
    with store.writer_lock(tmp_path):
        assert not stale.exists()
    assert thumb.exists()


KILLED_WRITER = """
import os, sys
from pathlib import Path
import numpy as np
from artsim.catalog import Catalog, store
from artsim.catalog.local import LocalFeatures, LocalStore
from artsim.catalog.local_votes import VoteIndex, _write

path, kind = Path(sys.argv[1]), sys.argv[2]
real = os.replace
def die(src, dst):
    if kind != "local" or str(dst).endswith(".ids.json"):  # the rename that commits
        os._exit(9)  # as kill -9: no cleanup runs
    return real(src, dst)
os.replace = die
feats = LocalFeatures(np.zeros((3, 2), np.float16), np.ones((3, 128), np.uint8), (10, 10))
if kind == "local":  # a search storing the features it computed
    LocalStore(Catalog.open(path)).write(["a"], [feats])
elif kind == "votes":  # a search building the vote index
    import faiss
    _write(VoteIndex(faiss.IndexFlatIP(128), [], 0), LocalStore(Catalog.open(path)), "k", 10)
else:  # an indexer writing a face chip
    store.atomic_write_bytes(path / "cache" / "faces" / "ab" / "x.jpg", b"jpeg")
"""


@pytest.mark.parametrize("kind", ["local", "votes", "chip"])
def test_a_writer_killed_mid_write_leaves_no_temp_file_past_the_next_lock(tmp_path, kind):
    from artsim.catalog import Catalog

    Catalog.create(tmp_path / "cat")
    run = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "cat"), kind])
    assert run.returncode == 9
    assert list((tmp_path / "cat" / "cache").rglob("*.tmp*")), "the kill left no temp file"
    with store.writer_lock(tmp_path / "cat"):
        pass
    assert not list((tmp_path / "cat").rglob("*.tmp*"))


def test_the_lock_holder_removes_a_killed_runs_partial_download(tmp_path):
    part = tmp_path / "cache" / "images" / "ab" / ".abcdef.x1y2.part"  # sources.iiif's name
    done = tmp_path / "cache" / "images" / "ab" / "abcdef.jpg"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"half")
    done.write_bytes(b"jpeg")
    with store.writer_lock(tmp_path):
        pass
    assert not part.exists() and done.exists()


def test_the_lock_holder_cleans_a_dead_readers_cache_temp_files_only(tmp_path):
    # a search writes local-feature parts under cache/ without the lock; a killed one leaves
    # temp files tagged with its host and pid, which the next writer removes
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    me = store.writer_tag()
    other_host = f"by-{'0' * 10}-{dead_pid}"
    folder = tmp_path / "cache" / "local-rootsift-256-256"
    folder.mkdir(parents=True)
    names = {
        f"part-1-000001-7.xy.{me.rsplit('-', 1)[0]}-{dead_pid}.tmp.npy": False,  # dead: removed
        f"part-1-000001-7.ids.{me.rsplit('-', 1)[0]}-{dead_pid}.tmp": False,
        f"part-2-000001-7.xy.{me}.tmp.npy": True,  # this process, alive: kept
        f"part-3-000001-7.ids.{other_host}.tmp": True,  # another host's: never judged
        "part-4-000001-7.ids.tmp": True,  # untagged (an older artsim's): kept
        "part-1-000001-7.xy.npy": True,  # not a temp file
    }
    for name in names:
        (folder / name).write_bytes(b"x")
    with store.writer_lock(tmp_path):
        pass
    assert {n: (folder / n).exists() for n in names} == names


def test_dedupe_keep_matches_a_dict_of_last_rows_on_random_keys():
    import random

    import numpy as np
    import pyarrow as pa

    from artsim.catalog.store import dedupe_keep

    def reference(keys):
        last = {}
        for i, k in enumerate(keys):
            last[k] = i
        return None if len(last) == len(keys) else sorted(last.values())

    rng = random.Random(0)
    for _ in range(500):
        keys = [
            rng.choice(["a", "b", "c", None, "é", "x" * 40]) if rng.random() < 0.8 else str(i)
            for i in range(rng.randrange(0, 25))
        ]
        table = pa.table({"k": pa.array(keys, pa.string())})
        if len(keys) > 2:  # parts read together: several chunks
            table = pa.concat_tables([table.slice(0, len(keys) // 2), table.slice(len(keys) // 2)])
        got = dedupe_keep(table, "k")
        want = reference(keys)
        assert (got is None) == (want is None)
        if got is not None:
            assert got.dtype == np.int64 and list(got) == want
