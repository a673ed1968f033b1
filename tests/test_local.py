"""The catalog's local features (artsim.catalog.local): the `local` aspect written while
indexing (from the image decoded once for every aspect), its resume and crash rules, `info`,
the store's parts, and photo queries reading the stored features instead of computing them."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from artsim import cli
from artsim.catalog import Catalog
from artsim.catalog.local import (
    LOCAL_MODEL,
    LOCAL_SIDE,
    LocalFeatures,
    LocalStore,
    build_local,
    extract_local,
    local_store,
)
from artsim.detectors.keypoints import LOCAL_DECODE_SIDE
from artsim.images import open_image
from tests.crash_support import Killed, kill_at_write
from tests.test_paintings import generated_painting


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):  # JPEGs of different sizes, some larger than LOCAL_SIDE
        generated_painting(40 + i, 380 + 90 * i, 300 + 40 * i).save(src / f"p{i}.jpg", quality=92)
    return src


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["artsim", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().out


def test_indexing_stores_the_features_of_the_image_it_decoded(tmp_path, folder) -> None:
    cat = Catalog.create(tmp_path / "cat")
    summary = cat.add(folder, aspects=["global", "local"], batch_size=4)
    assert summary.added == 6 and summary.aspects["local"] == 6
    again = Catalog.open(cat.path)
    assert again.manifest["aspects"]["local"]["model"] == LOCAL_MODEL
    assert sorted(again.aspect("local").item_ids) == sorted(again.ids)
    stored = LocalStore(again)
    assert len(stored) == 6
    for item_id in again.ids:
        got = stored.get(item_id)
        # the image decoded as Catalog.add decodes it for global + local: at the larger side,
        # and for keypoints at LOCAL_DECODE_SIDE at least
        side = max(LOCAL_DECODE_SIDE, again.encoder.preprocess.resize)
        fresh = extract_local(open_image(again.image_of(item_id), max_side=side).image)
        assert got is not None and 0 < len(got) <= 256
        assert np.array_equal(got.desc, fresh.desc) and np.array_equal(got.xy, fresh.xy)
        assert again.aspect("local").info[again.aspect("local").row_ids.index(item_id)] == {
            "keypoints": len(got)
        }


def test_an_index_run_builds_the_keypoint_vote_index(tmp_path, folder, monkeypatch) -> None:
    """So that the first photo query does not wait for it (catalog/local_votes.py)."""
    import artsim.catalog.local_votes as lv

    monkeypatch.setattr(lv, "MIN_PAINTINGS", 1)
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global"], batch_size=4)
    assert not list(cat.path.glob("cache/local-*/votes-*"))  # no local aspect: no votes
    cat.add(folder, aspects=["local"], batch_size=4)
    (meta,) = cat.path.glob("cache/local-*/votes-*.json")
    index = lv.vote_index(LocalStore(Catalog.open(cat.path)))
    assert index is not None and sorted(index.item_ids) == sorted(cat.ids)
    assert (meta.parent / json.loads(meta.read_text())["index_file"]).is_file()


def test_a_later_index_run_gives_its_new_paintings_votes(tmp_path, folder, monkeypatch) -> None:
    """A new acquisition, a few more paintings than before: added to the saved index (its
    lists and codebooks as trained), not left without votes until the catalog grows."""
    import artsim.catalog.local_votes as lv

    monkeypatch.setattr(lv, "MIN_PAINTINGS", 1)
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global", "local"], batch_size=4)
    before = lv.vote_index(LocalStore(Catalog.open(cat.path)))
    assert before is not None and len(before.item_ids) == 6
    new = tmp_path / "new"
    new.mkdir()
    generated_painting(99, 520, 400).save(new / "acquired.jpg", quality=92)
    monkeypatch.setattr(lv, "build_vote_index", lambda *a, **kw: pytest.fail("built again"))
    cat.add(new, aspects=["global", "local"])
    assert len(list(cat.path.glob("cache/local-*/votes-*.json"))) == 1  # the older one gone
    after = lv.vote_index(LocalStore(Catalog.open(cat.path)))
    assert after is not None and after.item_ids == [*before.item_ids, "acquired.jpg"]
    own = LocalStore(Catalog.open(cat.path)).get("acquired.jpg")
    assert after.top(own, 1)[0][0] == "acquired.jpg"  # its own keypoints vote for it


def test_building_or_extending_the_vote_index_reports_progress(
    tmp_path, folder, monkeypatch, capsys
) -> None:
    import artsim.catalog.local_votes as lv

    monkeypatch.setattr(lv, "MIN_PAINTINGS", 1)
    path = tmp_path / "cat"
    code, out = run_cli(monkeypatch, capsys, "index", str(folder), "--catalog", str(path))
    assert code == 0 and "keypoint votes" in out  # `artsim index` shows the build
    # a painting whose run was killed before its end: the next run's end adds it
    new = tmp_path / "new"
    new.mkdir()
    generated_painting(97, 480, 360).save(new / "late.jpg", quality=92)
    with monkeypatch.context() as m:
        m.setattr(Catalog, "_finish_run", lambda self, **kw: None)
        Catalog.open(path).add(new, aspects=["global", "local"])
    calls: list[tuple[int, int]] = []
    cat = Catalog.open(path)
    vi = cat.load_vote_index(extend=True, progress=lambda d, t: calls.append((d, t)))
    late = len(LocalStore(cat).get("late.jpg") or ())
    assert vi is not None and "late.jpg" in vi.item_ids and late > 0
    assert calls and calls[-1] == (late, late)  # only the new painting's keypoints
    calls.clear()
    Catalog.open(path).load_vote_index(extend=True, progress=lambda d, t: calls.append((d, t)))
    assert calls == []  # read from disk: nothing to report


def test_the_local_aspect_is_added_to_an_indexed_catalog_without_re_embedding(
    tmp_path, folder, monkeypatch
) -> None:
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global"])
    before = Catalog.open(cat.path).aspect("global").vectors["global"].copy()
    embedded: list[int] = []
    real = type(cat.encoder).embed_images

    def counting(self, images, *a, **kw):
        embedded.append(len(images))
        return real(self, images, *a, **kw)

    monkeypatch.setattr(type(cat.encoder), "embed_images", counting)
    summary = Catalog.open(cat.path).add(folder, aspects=["local"])
    assert summary.skipped_existing == 0 and summary.aspects.get("local") == 6
    assert embedded == []  # the paintings lacked only `local`
    after = Catalog.open(cat.path)
    assert np.array_equal(after.aspect("global").vectors["global"], before)
    assert len(LocalStore(after)) == 6
    assert Catalog.open(cat.path).add(folder, aspects=["local"]).skipped_existing == 6


def test_a_killed_run_resumes_and_leaves_no_painting_without_its_features(
    tmp_path, folder, monkeypatch
) -> None:
    """Features, then the aspect's rows, then the item rows: a kill anywhere in between leaves
    paintings that a re-run redoes, never one that counts as done without features."""
    path = tmp_path / "cat"
    cat = Catalog.create(path)

    kill_at_write(monkeypatch, 5)  # batch 1: global, local, items; batch 2: global, then killed
    with pytest.raises(Killed):
        cat.add(folder, aspects=["global", "local"], batch_size=2)
    monkeypatch.undo()
    half = Catalog.open(path)
    assert len(half) == 2
    info = half.info()["aspects"]["local"]
    assert info["items_done"] == 2 and info["pending"] == 0
    # the second batch's features reached the store before the kill: harmless, stored again
    assert len(LocalStore(half)) == 4
    summary = half.add(folder, aspects=["global", "local"], batch_size=2)
    assert summary.added == 4 and summary.skipped_existing == 2
    final = Catalog.open(path)
    feats = LocalStore(final)
    assert all(item_id in feats for item_id in final.ids)
    assert sorted(final.aspect("local").item_ids) == sorted(final.ids)
    assert final.info()["aspects"]["local"]["pending"] == 0


def test_info_shows_the_aspect_and_its_size(tmp_path, folder, monkeypatch, capsys) -> None:
    path = tmp_path / "cat"
    # no --aspects: a new catalog gets global + local (Catalog.default_aspects)
    code, _ = run_cli(monkeypatch, capsys, "index", str(folder), "--catalog", str(path))
    assert code == 0
    info = Catalog.open(path).info()["aspects"]["local"]
    assert info["items_done"] == 6 and info["pending"] == 0
    n_kp = sum(len(LocalStore(Catalog.open(path)).get(i) or ()) for i in Catalog.open(path).ids)
    # every keypoint (132 bytes) in fixed-size rows of 256, plus the .npy headers
    assert 132 * n_kp <= info["bytes"] <= 6 * 132 * 256 + 4096
    code, out = run_cli(monkeypatch, capsys, "info", str(path))
    line = next(x for x in out.splitlines() if x.startswith("aspect    local"))
    assert info["stored"] == 6
    assert f"6 paintings done; {info['bytes'] / 6 / 1024:.1f} KB a painting" in line
    # six paintings: too few for keypoint votes, and info says when they come
    assert info["votes"] is None
    assert "votes     no keypoint-vote index saved yet" in out
    code, out = run_cli(monkeypatch, capsys, "info", str(path), "--json")
    assert json.loads(out)["aspects"]["local"]["bytes"] == info["bytes"]


def test_info_says_how_many_paintings_have_votes(tmp_path, folder, monkeypatch, capsys) -> None:
    import artsim.catalog.local_votes as lv

    monkeypatch.setattr(lv, "MIN_PAINTINGS", 1)
    path = tmp_path / "cat"
    Catalog.create(path).add(folder, aspects=["global", "local"])
    votes = Catalog.open(path).info()["aspects"]["local"]["votes"]
    (meta,) = path.glob("cache/local-*/votes-*.json")
    index_file = meta.parent / json.loads(meta.read_text())["index_file"]
    assert votes == {
        "paintings": 6,
        "keypoints": lv.vote_index(LocalStore(Catalog.open(path))).index.ntotal,
        "trained_for": 6,
        "bytes": index_file.stat().st_size,
    }
    code, out = run_cli(monkeypatch, capsys, "info", str(path))
    assert code == 0 and "votes     keypoint-vote index of 6 paintings (" in out
    assert "without votes" not in out
    # a painting added without a run's end (a killed run, features computed on demand)
    new = tmp_path / "new"
    new.mkdir()
    generated_painting(98, 500, 380).save(new / "late.jpg", quality=92)
    monkeypatch.setattr(Catalog, "_finish_run", lambda self, **kw: None)
    Catalog.open(path).add(new, aspects=["global", "local"])
    code, out = run_cli(monkeypatch, capsys, "info", str(path))
    assert "; 1 painting without votes (the next `artsim index` run adds them)" in out


def test_an_unknown_aspect_is_refused_naming_local(tmp_path, folder, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["artsim", "index", str(folder), "--catalog",
                                      str(tmp_path / "c"), "--aspects", "global,locale"])  # fmt: skip
    with pytest.raises(SystemExit):
        cli.main()
    err = capsys.readouterr().err
    assert "locale" in err and "local" in err.split("choose from")[1]


def test_photo_queries_read_the_stored_features(tmp_path, folder, monkeypatch) -> None:
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global", "local"])
    cat = Catalog.open(cat.path)

    def no_compute(self, item_id):
        raise AssertionError(f"{item_id}: computed on demand although stored")

    monkeypatch.setattr(LocalStore, "compute", no_compute)
    hits = cat.search(str(folder / "p3.jpg"), k=3)  # verification reads every candidate
    assert hits and all(h.id != "p3.jpg" for h in hits)


def test_a_new_catalog_gets_the_aspect_and_an_older_one_keeps_its_aspects(tmp_path, folder) -> None:
    """Photo queries vote with the stored keypoints, so a new catalog stores them unless
    told otherwise; adding paintings to a catalog without them never backfills them."""
    new = Catalog.create(tmp_path / "new")
    assert new.default_aspects() == ["global", "local"]
    assert new.add(folder, batch_size=4).aspects == {"global": 6, "local": 6}
    old = Catalog.create(tmp_path / "old")
    old.add(folder, aspects=["global"], limit=3)
    old = Catalog.open(old.path)
    assert old.default_aspects() == ["global"]
    summary = old.add(folder)
    assert summary.added == 3 and summary.aspects == {"global": 3}
    assert "local" not in Catalog.open(old.path).manifest["aspects"]
    assert Catalog.open(new.path).default_aspects() == ["global", "local"]


def test_the_default_never_fills_in_an_aspect_older_paintings_lack(tmp_path, folder) -> None:
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global"])
    Catalog.open(cat.path).add(folder, aspects=["local"], limit=2)  # asked for: two of six
    again = Catalog.open(cat.path)
    assert again.default_aspects() == ["global"]  # local covers a third: left as it is
    summary = again.add(folder)
    assert summary.added == 0 and summary.skipped_existing == 6 and not summary.aspects
    assert len(LocalStore(Catalog.open(cat.path))) == 2


def test_the_default_keeps_a_complete_aspect_complete(tmp_path, folder) -> None:
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, limit=4)  # global + local for four paintings
    again = Catalog.open(cat.path)
    assert again.default_aspects() == ["global", "local"]
    summary = again.add(folder)  # two new paintings: both aspects
    assert summary.added == 2 and summary.aspects == {"global": 2, "local": 2}
    assert len(LocalStore(Catalog.open(cat.path))) == 6


def test_photo_queries_without_votes_say_once_how_to_get_them(
    tmp_path, folder, caplog, monkeypatch
) -> None:
    import artsim.catalog.local_votes as lv

    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global"])
    with caplog.at_level(logging.WARNING, logger="artsim.catalog"):
        Catalog.open(cat.path).search(str(folder / "p3.jpg"), k=3)
    # six paintings: too few for votes (local_votes.MIN_PAINTINGS), so nothing to say
    assert not [r for r in caplog.records if "keypoint votes" in r.getMessage()]
    monkeypatch.setattr(lv, "MIN_PAINTINGS", 1)
    cat = Catalog.open(cat.path)
    with caplog.at_level(logging.WARNING, logger="artsim.catalog"):
        cat.search(str(folder / "p3.jpg"), k=3)
        cat.search(str(folder / "p2.jpg"), k=3)
        cat.load_vote_index()  # an index run's end, a merge, a server's warm-up: silent
    told = [r.getMessage() for r in caplog.records if "keypoint votes" in r.getMessage()]
    assert len(told) == 1  # once per open catalog, not per query
    assert "--aspects local" in told[0] and str(cat.path) in told[0]


def test_without_the_aspect_features_are_computed_on_demand_and_kept(tmp_path, folder) -> None:
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global"])
    cat = Catalog.open(cat.path)
    assert len(local_store(cat)) == 0
    cat.search(str(folder / "p3.jpg"), k=3)
    n = len(LocalStore(cat))
    assert n == 5  # every candidate but the query's own painting, kept on disk
    assert build_local(cat) == 1 and build_local(cat) == 0
    assert len(LocalStore(cat)) == 6


def test_a_full_disk_leaves_no_half_written_part(tmp_path, folder, monkeypatch) -> None:
    import errno

    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global"])
    st = LocalStore(Catalog.open(cat.path))
    feats = [st.compute("p0.jpg"), st.compute("p1.jpg")]
    real_save, saves = np.save, []

    def full_at_the_second(file, arr, *a, **kw):
        saves.append(file)
        if len(saves) == 2:
            Path(file).write_bytes(b"\x93NUMPY")  # what a full disk leaves: a partial file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(file, arr, *a, **kw)

    monkeypatch.setattr(np, "save", full_at_the_second)
    with pytest.raises(OSError, match="No space"):
        st.write(["p0.jpg", "p1.jpg"], feats)
    assert not list(st.folder.glob("part-*"))  # neither the saved file nor the partial one
    monkeypatch.setattr(np, "save", real_save)
    assert len(LocalStore(Catalog.open(cat.path))) == 0
    st.write(["p0.jpg", "p1.jpg"], feats)
    assert len(LocalStore(Catalog.open(cat.path))) == 2


def test_a_part_without_its_ids_file_is_ignored(tmp_path, folder) -> None:
    """The ids file is written last and commits a part: a part killed before it is not read,
    and its paintings are computed again."""
    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder)
    cat = Catalog.open(cat.path)
    s = LocalStore(cat)
    s.ensure(["p0.jpg", "p1.jpg"])
    (ids_file,) = s.folder.glob("part-*.ids.json")
    ids_file.unlink()
    again = LocalStore(cat)
    assert len(again) == 0
    got = again.ensure(["p0.jpg"])
    assert len(got["p0.jpg"]) > 0 and "p0.jpg" in LocalStore(cat)


def test_a_catalog_keeps_the_kind_of_local_features_it_was_built_with(
    tmp_path, folder, monkeypatch
) -> None:
    """Catalogs from before the 128 px default (256 px features) go on with 256 px: indexing
    more paintings, queries and build_local all use the kind the catalog already has."""
    import artsim.catalog.local as local_mod

    first = tmp_path / "first"
    first.mkdir()
    for name in ("p0.jpg", "p1.jpg", "p2.jpg"):
        (first / name).write_bytes((folder / name).read_bytes())
    with monkeypatch.context() as m:  # a catalog indexed by the 256 px version
        m.setattr(local_mod, "LOCAL_SIDE", 256)
        old = Catalog.create(tmp_path / "old")
        old.add(first, aspects=["global", "local"])
    old = Catalog.open(old.path)
    assert local_mod.local_params(old) == (256, 256) and LOCAL_SIDE == 128
    summary = old.add(folder, aspects=["global", "local"])  # no "built with another model"
    assert summary.added == 3
    old = Catalog.open(old.path)
    assert old.manifest["aspects"]["local"]["model"] == "rootsift-256-256"
    assert local_store(old).folder.name == "local-rootsift-256-256" and len(local_store(old)) == 6
    assert not (old.path / "cache" / f"local-{LOCAL_MODEL}").exists()
    got = local_store(old).get("p4.jpg")
    side = max(256, LOCAL_DECODE_SIDE, old.encoder.preprocess.resize)  # Catalog.add's
    fresh = extract_local(open_image(old.image_of("p4.jpg"), max_side=side).image, max_side=256)
    assert got is not None and np.array_equal(got.desc, fresh.desc)

    # a catalog without the aspect whose features were built (build_local) at 256 px
    plain = Catalog.create(tmp_path / "plain")
    plain.add(folder, aspects=["global"])
    plain = Catalog.open(plain.path)
    assert local_mod.local_params(plain) == (LOCAL_SIDE, 256)  # nothing stored: the default
    LocalStore(plain, max_side=256).ensure(["p0.jpg"])
    plain = Catalog.open(plain.path)
    assert local_mod.local_params(plain) == (256, 256)
    assert build_local(plain) == 5 and len(LocalStore(plain, max_side=256)) == 6


def test_the_stored_size_skips_parts_being_written_or_gone(tmp_path, folder, monkeypatch) -> None:
    """`artsim info` in one process while another writes: a file renamed between the listing
    and its size must not fail the reader (found by tests/test_crash.py)."""
    from artsim.catalog.local import stored_bytes

    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, aspects=["global", "local"], batch_size=3)
    before = stored_bytes(Catalog.open(cat.path))
    st = local_store(Catalog.open(cat.path))
    (st.folder / "part-1-000099-7.xy.tmp.npy").write_bytes(b"\x93NUMPY" + bytes(1000))
    assert stored_bytes(Catalog.open(cat.path)) == before  # a part being written: not counted
    real_stat = Path.stat

    def vanishing(self, *a, **kw):
        if self.name.endswith(".desc.npy"):
            raise FileNotFoundError(self)  # renamed away by a writer meanwhile
        return real_stat(self, *a, **kw)

    monkeypatch.setattr(Path, "stat", vanishing)
    assert 0 < stored_bytes(Catalog.open(cat.path)) < before


def test_dense_features_are_computed_once_and_the_least_recent_dropped(tmp_path, folder) -> None:
    """DenseCache: denser keypoints than the stored ones, from the painting's image, kept in
    memory up to its capacity (least recently used dropped first); an unreadable image gives
    none, does not fail the others, and is tried again next time."""
    from artsim.catalog.local import DenseCache

    cat = Catalog.create(tmp_path / "cat")
    cat.add(folder, batch_size=8)
    ids = cat.ids
    calls: list[str] = []
    cache = DenseCache(cat, max_side=512, n_features=800, capacity=2)
    real = cache.compute

    def counted(item_id: str):
        calls.append(item_id)
        return real(item_id)

    cache.compute = counted  # type: ignore[method-assign]
    got = cache.get(ids[:2])
    stored = local_store(cat)
    for i in ids[:2]:
        assert len(got[i]) > len(stored.get(i)) and got[i].desc.dtype == np.uint8
    assert cache.get([ids[1], ids[0]]).keys() == {ids[0], ids[1]} and len(calls) == 2
    cache.get([ids[2]])  # ids[0] was used after ids[1]: ids[1] is dropped
    assert len(calls) == 3
    cache.get([ids[0]])
    assert len(calls) == 3  # still kept
    cache.get([ids[1]])
    assert len(calls) == 4  # dropped, computed again
    image = Path(cat.image_of(ids[3]))
    saved = image.read_bytes()
    image.write_bytes(b"not an image")
    got = cache.get([ids[3], ids[0]])
    assert len(got[ids[3]]) == 0 and len(got[ids[0]]) > 0
    image.write_bytes(saved)  # back in place: read again, not an empty result remembered
    assert len(cache.get([ids[3]])[ids[3]]) > 0


def _resident_kb(folder: Path, suffix: str) -> int:
    """KB of this process's mappings of files in ``folder`` ending in ``suffix`` that are
    resident now."""
    total, current = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
            current = str(folder) in line and line.endswith(suffix)
        elif current and line.startswith("Rss:"):
            total += int(head[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc")
def test_a_pass_over_the_whole_store_reads_every_painting_and_leaves_it_unmapped(
    tmp_path, monkeypatch
) -> None:
    """`blocks` (what the vote index is built from) gives each painting's stored keypoints,
    and reads the parts through mappings of its own that go with it: through the store's
    mappings, building the index left the whole store resident (+215 MB at 6,794 paintings)."""
    from types import SimpleNamespace

    import artsim.catalog.local as local

    rng = np.random.default_rng(0)
    store = LocalStore(SimpleNamespace(path=tmp_path))  # type: ignore[arg-type]
    ids = [f"p{i:03d}" for i in range(120)]
    feats = []
    for _ in range(120):
        n = int(rng.integers(0, 256))
        feats.append(
            LocalFeatures(
                rng.random((n, 2)).astype(np.float16),
                rng.integers(0, 256, (n, 128), dtype=np.uint8),
                (128, 128),
            )
        )
    for a in range(0, 120, 40):
        store.write(ids[a : a + 40], feats[a : a + 40])
    store = LocalStore(SimpleNamespace(path=tmp_path))  # type: ignore[arg-type]
    monkeypatch.setattr(local, "BLOCK_ROWS", 16)  # parts of 40 read in slices
    seen = {}
    for block_ids, desc, n in store.blocks(100):
        assert len(block_ids) <= 16
        for i, d, k in zip(block_ids, desc, n, strict=True):
            seen[i] = d[:k]
    assert list(seen) == ids
    for i, f in zip(ids, feats, strict=True):
        assert np.array_equal(seen[i], f.desc[:100])
    assert _resident_kb(tmp_path, ".desc.npy") == 0  # 120 paintings' descriptors are 3.8 MB
    # the measure sees the store's own maps once a query reads through them
    assert sum(int(store.get(i).desc.sum()) for i in ids) > 0
    assert _resident_kb(tmp_path, ".desc.npy") > 0
