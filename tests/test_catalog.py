"""Catalog behaviour on generated images: create/open, incremental add, failures, model checks."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from artsim import cli
from artsim.catalog import Catalog, store
from artsim.errors import ArtsimError, CatalogError, SourceError
from artsim.images import load_rgb
from tests.crash_support import Killed, kill_at_write
from tests.images_factory import gradient, write_awkward_set


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        gradient(120 + 10 * i, 90, seed=i).save(src / f"img{i}.jpg", quality=92)
    return src


def test_create_add_search_roundtrip(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    summary = cat.add(folder)
    assert summary.added == 6 and summary.failed == 0
    assert len(cat) == 6
    results = cat.search("img0.jpg", k=3)
    assert len(results) == 3 and all(r.id != "img0.jpg" for r in results)
    assert results[0].score >= results[1].score >= results[2].score
    # a file query for an indexed image excludes that image too
    by_file = cat.search(str(folder / "img0.jpg"), k=3, photo="off")
    assert [r.id for r in by_file] == [r.id for r in results]
    assert [r.score for r in by_file] == pytest.approx([r.score for r in results], abs=2e-2)
    # as a photo (the default for image queries) it is excluded as well; its scores are those
    # of the photo path (GeM part, verification), so only the exclusion is compared
    as_photo = cat.search(str(folder / "img0.jpg"), k=3)
    assert len(as_photo) == 3 and all(r.id != "img0.jpg" for r in as_photo)


def test_manifest_records_model_and_counts(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    m = json.loads((tmp_path / "cat" / "manifest.json").read_text())
    assert m["format_version"] == 1
    assert m["model"]["name"] == "efficientnet-lite2"
    assert len(m["model"]["weights_sha256"]) == 64
    assert m["model"]["preprocess"]["crop"] == 224  # DEFAULT_SIZE since 2026-12-03
    assert m["model"]["dim"] == 1400
    assert m["counts"]["items"] == 6
    assert m["aspects"]["global"]["count"] == 6


def test_a_catalog_keeps_the_input_size_it_was_made_with(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat", size=260)
    cat.add(folder)
    stored = cat.aspect("global").vectors["global"].copy()
    m = json.loads((tmp_path / "cat" / "manifest.json").read_text())
    assert m["model"]["preprocess"]["crop"] == 260
    # reopened without a size (as every command does), it runs at 260 again: same vectors
    again = Catalog.open(tmp_path / "cat")
    assert again.encoder.preprocess.crop == 260
    rows = [again.aspect("global").row_ids.index(f"img{i}.jpg") for i in range(2)]
    fresh = again.encoder.embed_images(
        [load_rgb(folder / f"img{i}.jpg", max_side=520) for i in range(2)]
    )
    assert (fresh * stored[rows]).sum(axis=1).min() > 0.999
    # the default network (224 px) gives other vectors: they must not mix into this catalog
    default = Catalog.create(tmp_path / "other")
    assert default.encoder.preprocess.crop == 224
    with pytest.raises(CatalogError, match="runs at 260 px, not 224"):
        Catalog.create(tmp_path / "cat", size=224)
    assert Catalog.create(tmp_path / "cat", size=260).encoder.preprocess.crop == 260


def test_incremental_add_embeds_only_new(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    before = cat.aspect("global").vectors["global"].copy()
    gradient(150, 150, seed=42).save(folder / "new.jpg")
    summary = Catalog.open(tmp_path / "cat").add(folder)
    assert summary.added == 1 and summary.skipped_existing == 6
    cat2 = Catalog.open(tmp_path / "cat")
    assert len(cat2) == 7
    data = cat2.aspect("global")
    rows = [data.row_ids.index(f"img{i}.jpg") for i in range(6)]
    assert np.allclose(
        data.vectors["global"][rows],
        before[[cat.aspect("global").row_ids.index(f"img{i}.jpg") for i in range(6)]],
    )


def test_unreadable_images_are_listed_not_fatal(tmp_path):
    src = tmp_path / "src"
    files = write_awkward_set(src)
    cat = Catalog.create(tmp_path / "cat")
    summary = cat.add(src)
    bad = {"empty.jpg", "truncated.jpg", "corrupt.png", "notes.jpg", "bomb.png"}
    assert summary.failed == len(bad)
    assert set(cat.ids) == set(files) - bad
    report = (tmp_path / "cat" / "failures.csv").read_text()
    for name in bad:
        assert name in report
    assert "truncated" in report and "decompression bomb" in report
    assert cat.info()["failures"] == len(bad)


def test_model_mismatch_is_an_error(tmp_path, folder):
    Catalog.create(tmp_path / "cat").add(folder)
    with pytest.raises(CatalogError, match="built with model 'efficientnet-lite2'"):
        Catalog.open(tmp_path / "cat", model="dinov2-small")
    with pytest.raises(CatalogError, match="built with model"):
        Catalog.create(tmp_path / "cat", model="clip-vit-b32")


def test_weights_hash_mismatch_is_an_error(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    m = json.loads((tmp_path / "cat" / "manifest.json").read_text())
    m["model"]["weights_sha256"] = "0" * 64
    (tmp_path / "cat" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CatalogError, match="weights"):
        Catalog.open(tmp_path / "cat").search(str(folder / "img1.jpg"))


def test_not_a_catalog(tmp_path):
    with pytest.raises(CatalogError, match="no artsim catalog"):
        Catalog.open(tmp_path)
    (tmp_path / "x.txt").write_text("precious")
    with pytest.raises(CatalogError, match="not empty"):
        Catalog.create(tmp_path)
    assert (tmp_path / "x.txt").read_text() == "precious"


def test_filters_return_k_when_k_exist(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rows = ["id,image,artist,year"]
    for i in range(30):
        gradient(100, 80, seed=i).save(src / f"{i}.jpg")
        rows.append(f"p{i},{i}.jpg,{'Rembrandt' if i % 10 == 0 else 'Other'},{1600 + i}")
    (src / "m.csv").write_text("\n".join(rows) + "\n")
    cat = Catalog.create(tmp_path / "cat")
    cat.add(src / "m.csv")
    res = cat.search("p1", k=2, where=["artist=rembrandt"])
    assert [r.metadata["artist"] for r in res] == ["Rembrandt", "Rembrandt"]
    res = cat.search("p0", k=5, where=["artist=rembrandt"])
    assert {r.id for r in res} == {"p10", "p20"}  # the query itself is excluded
    res = cat.search("p0", k=50, where=["year=1605..1609"])
    assert sorted(r.id for r in res) == [f"p{i}" for i in range(5, 10)]


def test_unknown_query(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    with pytest.raises(ArtsimError, match="neither an id"):
        cat.search("no-such-thing")
    with pytest.raises(ArtsimError, match="only http"):
        cat.search("file:///etc/passwd")
    with pytest.raises(ArtsimError, match="no 'face' aspect"):
        cat.search("img0.jpg", aspect="face")


def test_killed_writer_temp_files_are_ignored(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    # what a kill -9 mid-write leaves behind: a temp file next to the parts
    tmp = tmp_path / "cat" / "items" / ".part-000009.parquet.abc.tmp"
    tmp.write_bytes(b"PAR1 half")
    again = Catalog.open(tmp_path / "cat")
    assert len(again) == 6
    assert tmp.exists()  # a reader changes nothing: it may be a live writer's part
    again.add(folder)  # the next writer, holding the lock, removes it
    assert not list((tmp_path / "cat").rglob("*.tmp"))


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`artsim ARGS` in this process, through main() as the console script runs it."""
    monkeypatch.setattr(sys, "argv", ["artsim", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_reader_opening_mid_write_does_not_break_the_writer(tmp_path, folder, monkeypatch):
    """Issue 16, item 1: `Catalog.open` removed the writer's in-flight temp part."""
    path = tmp_path / "cat"
    Catalog.create(path)
    real_write = pq.write_table
    opened = []

    def write_then_open(table, where, **kw):
        real_write(table, where, **kw)
        opened.append(len(Catalog.open(path)))  # a reader starts while the part is a temp file

    monkeypatch.setattr(pq, "write_table", write_then_open)
    summary = Catalog.open(path).add(folder, batch_size=2)
    assert summary.added == 6 and len(opened) >= 6
    assert opened == sorted(opened)  # readers saw the catalog grow, never shrink
    assert len(Catalog.open(path)) == 6


def test_readers_change_nothing(tmp_path, folder):
    path = tmp_path / "cat"
    Catalog.create(path).add(folder)
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*")}
    cat = Catalog.open(path)
    cat.search("img0.jpg", k=2)
    cat.info()
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*")} == before


def test_two_writers(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    with cat._locked(), pytest.raises(CatalogError, match="another artsim process is writing"):
        Catalog.open(tmp_path / "cat").add(folder)
    assert cat.add(folder).added == 6


@pytest.mark.parametrize(
    ("aspects", "tables"),  # the Parquet tables a batch writes: each aspect's rows, then items
    [(["--aspects", "global"], 2), ([], 3)],  # [] the default: global and local
)
def test_full_disk_mid_run_leaves_a_valid_catalog(
    tmp_path, folder, monkeypatch, capsys, aspects, tables
):
    path = tmp_path / "cat"
    Catalog.create(path)
    real_write = pq.write_table
    writes = []

    def fill_up(table, where, **kw):
        writes.append(where)
        if len(writes) > 2 * tables:  # two batches fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", fill_up)
    args = ["index", str(folder), "--catalog", str(path), "--batch-size", "2"]
    code, _out, err = run_main(monkeypatch, capsys, *args, *aspects)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("artsim: error:") and "no space left" in err
    monkeypatch.setattr(pq, "write_table", real_write)
    cat = Catalog.open(path)
    assert len(cat) == 4 and len(cat.aspect("global")) == 4
    assert not list(path.rglob("*.tmp")) and not list(path.rglob("*.tmp.*"))
    assert cat.add(folder).added == 2
    assert len(Catalog.open(path)) == 6


def test_truncated_part_is_one_line_naming_the_file(tmp_path, folder, monkeypatch, capsys):
    path = tmp_path / "cat"
    Catalog.create(path).add(folder)
    part = store.list_parts(path / "vectors" / "global" / "efficientnet-lite2")[0]
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(CatalogError, match="damaged catalog file"):
        Catalog.open(path).search("img0.jpg")
    code, _, err = run_main(monkeypatch, capsys, "search", str(path), "img0.jpg")
    assert code == 2 and err.count("\n") == 1
    assert str(part) in err and f"artsim check {path} --repair" in err


def test_manifest_without_model_is_one_line(tmp_path, folder, monkeypatch, capsys):
    path = tmp_path / "cat"
    Catalog.create(path).add(folder)
    m = json.loads((path / "manifest.json").read_text())
    del m["model"]
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CatalogError, match='no "model" entry'):
        Catalog.open(path)
    code, _, err = run_main(monkeypatch, capsys, "info", str(path))
    assert code == 2 and err.count("\n") == 1 and "manifest.json: damaged manifest" in err


def test_info_counts_what_is_on_disk(tmp_path, folder):
    """Issue 16, item 9: after a kill, info showed the manifest's stale counts."""
    path = tmp_path / "cat"
    Catalog.create(path).add(folder)
    # what a run killed before writing any vectors (old write order) leaves: item rows whose
    # global rows never came, and the manifest's counts from before the run
    store.atomic_write_table(
        store.next_part_path(path / "items"),
        pa.table({"id": ["x1", "x2"], "image": ["x1.jpg", "x2.jpg"],
                  "width": pa.array([1, 1], pa.int32()), "height": pa.array([1, 1], pa.int32()),
                  "metadata": ["{}", "{}"], "added": ["", ""]}),
    )  # fmt: skip
    m = json.loads((path / "manifest.json").read_text())
    m["aspects"]["global"]["count"] = 0
    (path / "manifest.json").write_text(json.dumps(m))
    info = Catalog.open(path).info()
    assert info["items"] == 8
    assert info["aspects"]["global"]["count"] == 6
    assert info["aspects"]["global"]["items_done"] == 6
    assert info["aspects"]["global"]["pending"] == 2


def test_a_killed_run_leaves_no_painting_without_vectors(tmp_path, folder, monkeypatch):
    """Rows are written before their item row, so a kill in between leaves stray rows, which
    readers ignore and a re-run redoes, instead of paintings without vectors."""
    path = tmp_path / "cat"
    cat = Catalog.create(path)

    kill_at_write(monkeypatch, 2)  # the first batch wrote one part and is killed before the next
    with pytest.raises(Killed):
        cat.add(folder, batch_size=2)
    monkeypatch.undo()
    again = Catalog.open(path)
    assert len(again) == len(again.aspect("global")) == 0
    assert again.info()["aspects"]["global"]["pending"] == 0
    assert again.add(folder, batch_size=2).added == 6
    final = Catalog.open(path)
    assert sorted(final.ids) == sorted(final.aspect("global").row_ids)
    assert len(final.aspect("global")) == 6


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_catalog_files_follow_the_umask(tmp_path, folder, umask):
    old = os.umask(umask)
    try:
        Catalog.create(tmp_path / "cat").add(folder)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "cat").rglob("*") if p.is_file() and p.name != ".lock"]
    assert files
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p


def test_failed_first_run_leaves_no_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "m.csv").write_text("title,year\nA,1600\n")  # no image column
    path = tmp_path / "new" / "cat"
    code, _, err = run_main(monkeypatch, capsys, "index", str(tmp_path / "m.csv"), "-c", str(path))
    assert code == 2 and "image" in err
    assert not (tmp_path / "new").exists()
    # a folder that existed before is kept, even when the run fails
    (tmp_path / "mine").mkdir()
    code, _, _ = run_main(
        monkeypatch, capsys, "index", str(tmp_path / "m.csv"), "-c", str(tmp_path / "mine")
    )
    assert code == 2 and (tmp_path / "mine").is_dir()


def test_failed_first_run_api_discard(tmp_path, folder):
    cat = Catalog.create(tmp_path / "cat")
    with pytest.raises(SourceError):
        cat.add(tmp_path / "nothing.csv")
    assert cat.discard_if_unused() and not (tmp_path / "cat").exists()
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    assert not cat.discard_if_unused() and len(Catalog.open(tmp_path / "cat")) == 6


def test_failed_first_run_keeps_the_folder_another_writer_is_using(tmp_path, folder):
    # review of issue 16: a run that made the folder, then failed because a second run into it
    # held the lock, removed the folder under that second run (before its first part)
    from filelock import FileLock

    cat = Catalog.create(tmp_path / "cat")
    other = FileLock(tmp_path / "cat" / ".lock", timeout=0)  # the second writer
    with other:
        with pytest.raises(CatalogError, match="another artsim process is writing"):
            cat.add(folder)
        assert not cat.discard_if_unused()
        assert (tmp_path / "cat" / "manifest.json").is_file()
    assert cat.discard_if_unused() and not (tmp_path / "cat").exists()  # unused once it is gone


def test_full_disk_when_creating_removes_the_new_folder(tmp_path, monkeypatch):
    def full(path, obj):
        raise CatalogError(f"{path.parent}: no space left on the device")

    monkeypatch.setattr(store, "atomic_write_json", full)
    with pytest.raises(CatalogError, match="no space left"):
        Catalog.create(tmp_path / "a" / "cat")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("workers", [1, 8])
def test_decoded_batches_keep_order_and_report_bad_files(tmp_path, workers):
    from artsim.catalog import _decoded_batches
    from artsim.errors import ImageLoadError
    from artsim.images import LoadedImage
    from artsim.records import SourceItem

    items = []
    for i in range(7):
        path = tmp_path / f"{i}.jpg"
        gradient(80 + i, 60, seed=i).save(path)
        items.append(SourceItem(id=str(i), image=str(path)))
    (tmp_path / "3.jpg").write_bytes(b"not a jpeg")
    got = list(_decoded_batches(items, 3, 64, 10**8, workers))
    assert [[it.id for it in batch] for batch, _ in got] == [
        ["0", "1", "2"],
        ["3", "4", "5"],
        ["6"],
    ]
    flat = [r for _, loaded in got for r in loaded]
    assert isinstance(flat[3], ImageLoadError)
    assert [r.original_size[0] for i, r in enumerate(flat) if i != 3] == [80, 81, 82, 84, 85, 86]
    assert all(isinstance(r, LoadedImage) for i, r in enumerate(flat) if i != 3)


def test_decode_workers_feed_a_gpu(tmp_path, monkeypatch):
    import types

    cat = Catalog.__new__(Catalog)
    cat._encoder = None
    assert cat._decode_workers(None) == 2 and cat._decode_workers(5) == 5
    cat._encoder = types.SimpleNamespace(device="cuda")
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(16)))
    assert cat._decode_workers(None) == 16


# ------------------------------------------------------------------ memory-mapped vectors
def _decoded(path):
    """The global vectors decoded from the Parquet parts, as before vector files existed."""
    cat = Catalog.open(path)
    folder = (
        path / "vectors" / "global" / cat.manifest["aspects"]["global"]["model"].replace("/", "_")
    )
    table = store.dedupe_last(store.read_parts(folder), "row_id")
    return table.column("row_id").to_pylist(), store.column_to_vectors(
        table.column("vec_global"), cat.manifest["model"]["dim"]
    )


def _more(tmp_path, n=4):
    src = tmp_path / "more"
    src.mkdir()
    for i in range(n):
        gradient(140, 100 + 7 * i, seed=50 + i).save(src / f"more{i}.jpg", quality=92)
    return src


def test_large_catalogs_map_their_vectors_and_read_rows_lazily(tmp_path, folder, monkeypatch):
    import artsim.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "MMAP_MIN_ROWS", 1)  # 6 rows count as large here
    path = tmp_path / "cat"
    writer = Catalog.create(path)
    writer.add(folder)
    assert len(list(path.rglob(f"*{store.VECTOR_FILE_SUFFIX}"))) == 1
    reader = Catalog.open(path)
    vectors = reader.aspect("global").vectors["global"]
    assert isinstance(vectors, np.memmap) and vectors.mode == "r"  # nothing decoded
    row_ids, decoded = _decoded(path)
    assert reader.aspect("global").row_ids == row_ids
    assert np.array_equal(np.asarray(vectors), decoded)
    before = [r.id for r in reader.search("img0.jpg", k=3, where="title!=zzz")]
    monkeypatch.setattr(catalog_module, "MMAP_MIN_ROWS", 10**9)
    assert [r.id for r in Catalog.open(path).search("img0.jpg", k=3, where="title!=zzz")] == before
    # the small catalog (below the threshold) decodes its parts: same results
    monkeypatch.setattr(catalog_module, "MMAP_MIN_ROWS", 1)
    assert [r.id for r in reader.search("img0.jpg", k=5)] == [
        r.id for r in Catalog.open(path).search("img0.jpg", k=5)
    ]


def test_a_reader_keeps_working_while_another_process_appends(tmp_path, folder, monkeypatch):
    import artsim.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "MMAP_MIN_ROWS", 1)
    path = tmp_path / "cat"
    Catalog.create(path).add(folder)
    reader = Catalog.open(path)
    first = [(r.id, r.score) for r in reader.search("img0.jpg", k=3)]
    old_file = next(path.rglob(f"*{store.VECTOR_FILE_SUFFIX}"))
    # another process appends; its run is killed before it finishes (no new vector file)
    script = (
        "import sys; from artsim.catalog import Catalog; "
        "Catalog._finish_run = lambda self, **kw: None; "
        "Catalog.open(sys.argv[1]).add(sys.argv[2])"
    )
    more = _more(tmp_path)
    subprocess.run([sys.executable, "-c", script, str(path), str(more)], check=True)
    # the open reader still answers from what it opened
    assert [(r.id, r.score) for r in reader.search("img0.jpg", k=3)] == first
    # a new reader sees the appended rows: the vector file is for other parts, so it decodes
    mid = Catalog.open(path)
    assert len(mid) == 10
    vectors = mid.aspect("global").vectors["global"]
    assert not isinstance(vectors, np.memmap)
    assert np.array_equal(vectors, _decoded(path)[1])
    assert old_file.exists()  # only a writer's finished run replaces it
    # the next run finishes: one vector file, for the parts now on disk, mapped again
    Catalog.open(path).add(more)
    files = list(path.rglob(f"*{store.VECTOR_FILE_SUFFIX}"))
    assert len(files) == 1 and files != [old_file]
    after = Catalog.open(path)
    assert isinstance(after.aspect("global").vectors["global"], np.memmap)
    assert np.array_equal(np.asarray(after.aspect("global").vectors["global"]), _decoded(path)[1])
    assert [(r.id, r.score) for r in reader.search("img0.jpg", k=3)] == first  # old mapping


def test_check_and_merge_with_vector_files(tmp_path, folder, monkeypatch):
    import artsim.catalog as catalog_module
    from artsim.catalog.check import check_catalog
    from artsim.catalog.merge import merge_catalogs

    monkeypatch.setattr(catalog_module, "MMAP_MIN_ROWS", 1)
    a, b = tmp_path / "a", tmp_path / "b"
    Catalog.create(a).add(folder)
    Catalog.create(b).add(_more(tmp_path))
    assert check_catalog(a).ok
    merge_catalogs([a, b], tmp_path / "c")
    merged = Catalog.open(tmp_path / "c")
    assert len(merged) == 10
    assert isinstance(merged.aspect("global").vectors["global"], np.memmap)
    assert np.array_equal(
        np.asarray(merged.aspect("global").vectors["global"]), _decoded(tmp_path / "c")[1]
    )
    assert check_catalog(tmp_path / "c").ok
    # a vector file that does not fit its parts (damaged) is ignored: the parts decide
    vf = next((tmp_path / "c").rglob(f"*{store.VECTOR_FILE_SUFFIX}"))
    vf.write_bytes(b"not numpy")
    again = Catalog.open(tmp_path / "c")
    assert np.array_equal(again.aspect("global").vectors["global"], _decoded(tmp_path / "c")[1])


def test_a_writer_keeps_the_aspects_another_one_registered(tmp_path, folder):
    Catalog.create(tmp_path / "cat").add(folder, aspects=["global"])
    stale = Catalog.open(tmp_path / "cat")  # opened before the other writer's run
    Catalog.open(tmp_path / "cat").add(folder, aspects=["local"], limit=2)
    gradient(150, 150, seed=43).save(folder / "new.jpg")
    assert stale.add(folder).added == 1
    assert "local" in Catalog.open(tmp_path / "cat").manifest["aspects"]  # not written over
