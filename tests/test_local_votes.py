"""The local-feature shortlist (artsim.catalog.local_votes): built from the catalog's stored
keypoints, kept on disk, and finding the painting whose keypoints a query shares."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import artsim.catalog.local_votes as lv
from artsim.catalog.local import DESC_SCALE, LocalFeatures, LocalStore


def _features(rng: np.random.Generator, n: int = 64) -> LocalFeatures:
    d = np.abs(rng.normal(size=(n, 128))).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    desc = np.clip(np.rint(d * DESC_SCALE), 0, 255).astype(np.uint8)
    return LocalFeatures(rng.random((n, 2)).astype(np.float16), desc, (512, 512))


def _store(tmp_path, n: int, seed: int = 0, start: int = 0) -> tuple[LocalStore, list]:
    rng = np.random.default_rng(seed)
    store = LocalStore(SimpleNamespace(path=tmp_path))  # type: ignore[arg-type]
    feats = [_features(rng) for _ in range(n)]
    ids = [f"p{start + i:04d}" for i in range(n)]
    for a in range(0, n, 100):  # several parts, as an index run writes them
        store.write(ids[a : a + 100], feats[a : a + 100])
    return store, feats


def _query_of(f: LocalFeatures, rng: np.random.Generator, share: int = 30) -> LocalFeatures:
    """A photo's keypoints: ``share`` of the painting's, perturbed, among 150 of a wall."""
    own = f.desc[:share].astype(np.float32) + rng.normal(0, 6, size=(share, 128))
    wall = _features(rng, 150).desc.astype(np.float32)
    desc = np.clip(np.concatenate([own, wall]), 0, 255).astype(np.uint8)
    return LocalFeatures(np.zeros((len(desc), 2), np.float16), desc, (640, 480))


def test_the_painting_sharing_the_query_keypoints_gets_the_most_votes(tmp_path) -> None:
    store, feats = _store(tmp_path, 250)
    index = lv.vote_index(store)
    assert index is not None and index.per_painting == 256
    assert index.index.ntotal == 250 * 64
    rng = np.random.default_rng(5)
    for target in (3, 117, 249):
        top = index.top(_query_of(feats[target], rng), 5)
        assert top[0][0] == f"p{target:04d}"
        assert top[0][1] >= 20 and (len(top) < 2 or top[1][1] < top[0][1] / 2)
    # a filter: the painting it excludes never comes back
    top = index.top(_query_of(feats[3], rng), 5, keep=lambda i: i != "p0003")
    assert "p0003" not in [i for i, _ in top]


def test_a_repeated_texture_votes_little_beside_a_clear_match(tmp_path) -> None:
    # 30 paintings share one texture (moire, a wall): the photo shows it 40 times, and 12
    # keypoints of painting p0199. Counted, the texture's paintings win; weighted by how
    # much nearer a neighbour is than the last one, the clear match does.
    rng = np.random.default_rng(3)
    store = LocalStore(SimpleNamespace(path=tmp_path))  # type: ignore[arg-type]
    texture = _features(rng, 1).desc[0].astype(np.float32)
    feats = []
    for i in range(200):
        f = _features(rng)
        if i < 30:
            desc = f.desc.copy()
            desc[0] = np.clip(texture + rng.normal(0, 2, 128), 0, 255)
            f = LocalFeatures(f.xy, desc, f.size)
        feats.append(f)
    store.write([f"p{i:04d}" for i in range(200)], feats)
    index = lv.vote_index(store)
    assert index is not None
    own = feats[199].desc[:12].astype(np.float32) + rng.normal(0, 6, size=(12, 128))
    rep = texture + rng.normal(0, 2, size=(40, 128))
    desc = np.clip(np.concatenate([own, rep]), 0, 255).astype(np.uint8)
    q = LocalFeatures(np.zeros((len(desc), 2), np.float16), desc, (640, 480))
    _, count = index._tally(q, lv.NEIGHBOURS)[0]
    assert index.item_ids[int(count.argmax())] != "p0199"  # counted: a texture painting leads
    assert index.top(q, 1)[0][0] == "p0199"


def test_votes_equal_a_vote_by_vote_count_of_the_same_search(tmp_path) -> None:
    """The vectorised tally gives what counting each keypoint's neighbours one by one gives:
    one vote per keypoint and painting, at its best weight, none at weight 0."""
    store, feats = _store(tmp_path, 230)
    index = lv.vote_index(store)
    assert index is not None
    rng = np.random.default_rng(5)
    q = _query_of(feats[11], rng)
    q = LocalFeatures(q.xy, np.concatenate([q.desc, q.desc[:5]]), q.size)  # repeated keypoints
    dist, ids = index.index.search(q.unit_desc(), lv.NEIGHBOURS)
    last = np.max(np.where(ids >= 0, dist, 0.0), axis=1, keepdims=True)
    weight = np.clip(1.0 - dist / np.maximum(last, 1e-6), 0.0, 1.0)
    parts = [np.arange(len(q)), np.arange(0, len(q), 3)]
    for part, (score, count) in zip(parts, index._tally(q, lv.NEIGHBOURS, parts), strict=True):
        want: dict[int, float] = {}
        voters: dict[int, int] = {}
        for k in part:
            best: dict[int, float] = {}
            for w, p in zip(weight[k], ids[k], strict=True):
                if p >= 0:
                    best[int(p)] = max(best.get(int(p), -1.0), float(w))
            for p, w in best.items():
                if w > 0:
                    want[p] = want.get(p, 0.0) + w
                    voters[p] = voters.get(p, 0) + 1
        assert set(np.flatnonzero(count).tolist()) == set(want)
        assert all(count[p] == voters[p] for p in want)
        assert np.allclose([score[p] for p in want], list(want.values()), rtol=1e-12)
    assert index.votes(q) == pytest.approx(
        {index.item_ids[p]: float(v) for p, v in enumerate(index._tally(q, 8)[0][0]) if v}
    )


def test_the_index_is_kept_on_disk_and_read_back_without_building(tmp_path, monkeypatch) -> None:
    store, feats = _store(tmp_path, 220)
    first = lv.load_or_build(store)
    assert first is not None and len(list(store.folder.glob("votes-*.faiss"))) == 1

    def refuse(*a, **kw):
        raise AssertionError("built again")

    monkeypatch.setattr(lv, "build_vote_index", refuse)
    again = lv.load_or_build(LocalStore(SimpleNamespace(path=tmp_path)))  # type: ignore[arg-type]
    assert again is not None and again.item_ids == first.item_ids
    q = _query_of(feats[42], np.random.default_rng(1))
    assert again.top(q, 1)[0][0] == first.top(q, 1)[0][0] == "p0042"


def test_a_damaged_index_file_is_built_again(tmp_path) -> None:
    store, _ = _store(tmp_path, 210)
    assert lv.load_or_build(store) is not None
    (idx,) = store.folder.glob("votes-*.faiss")
    idx.write_bytes(b"not an index")
    rebuilt = lv.load_or_build(store)
    assert rebuilt is not None and rebuilt.index.ntotal == 210 * 64


def test_a_few_new_paintings_reuse_the_index_and_many_rebuild_it(tmp_path) -> None:
    store, _ = _store(tmp_path, 200)
    old = lv.vote_index(store)
    assert old is not None
    rng = np.random.default_rng(9)
    store.write(["new-a", "new-b"], [_features(rng), _features(rng)])  # on-demand features
    same = lv.vote_index(store)
    assert same is not None and "new-a" not in same.item_ids  # stale but serving
    store.write([f"more-{i}" for i in range(40)], [_features(rng) for _ in range(40)])
    fresh = lv.vote_index(store)
    assert fresh is not None and {"new-a", "more-39"} <= set(fresh.item_ids)
    assert len(list(store.folder.glob("votes-*.faiss"))) == 1  # the old one removed


def test_an_index_run_adds_its_new_paintings_to_the_index_without_rebuilding(
    tmp_path, monkeypatch
) -> None:
    store, feats = _store(tmp_path, 200)
    old = lv.vote_index(store)
    assert old is not None
    rng = np.random.default_rng(11)
    new = [_features(rng) for _ in range(5)]
    store.write([f"new-{i}" for i in range(5)], new)
    assert "new-0" not in lv.vote_index(store).item_ids  # a query: stale but serving

    def refuse(*a, **kw):
        raise AssertionError("built again")

    monkeypatch.setattr(lv, "build_vote_index", refuse)
    grown = lv.vote_index(store, extend=True)
    assert grown is not None and grown.item_ids[:200] == old.item_ids  # old positions kept
    assert grown.item_ids[200:] == [f"new-{i}" for i in range(5)]
    assert grown.index.ntotal == 205 * 64
    for i in (0, 4):  # a new painting's keypoints vote for it
        assert grown.top(_query_of(new[i], rng), 1)[0][0] == f"new-{i}"
    assert grown.top(_query_of(feats[17], rng), 1)[0][0] == "p0017"  # and old ones still
    # written as the store's own: another process reads it back, with the new paintings
    (meta,) = store.votes_folder.glob("votes-*.json")
    assert meta.name == f"votes-{lv.fingerprint(store, lv.MAX_KEYPOINTS)}.json"
    assert len(list(store.votes_folder.glob("votes-*.faiss"))) == 1  # the old one removed
    other = LocalStore(SimpleNamespace(path=tmp_path))  # type: ignore[arg-type]
    assert lv.load_or_build(other).item_ids == grown.item_ids


def test_an_index_is_built_again_once_the_catalog_doubles_or_passes_the_budget(tmp_path) -> None:
    store, _ = _store(tmp_path, 200)
    assert lv.vote_index(store) is not None
    rng = np.random.default_rng(12)
    # run after run of new paintings: extended while the catalog is at most twice what
    # its lists were sized and trained for, so they never grow unbounded
    store.write([f"more-{i}" for i in range(150)], [_features(rng) for _ in range(150)])
    grown = lv.vote_index(store, extend=True)
    assert grown is not None and grown.trained_items == 200 and len(grown.item_ids) == 350
    store.write([f"again-{i}" for i in range(50)], [_features(rng) for _ in range(50)])
    grown = lv.vote_index(store, extend=True)  # 400: still twice 200 at most
    assert grown is not None and grown.trained_items == 200 and len(grown.item_ids) == 400
    store.write(["one-more"], [_features(rng)])
    rebuilt = lv.vote_index(store, extend=True)  # 401: trained for too few, built again
    assert rebuilt is not None and rebuilt.item_ids == store.ids()
    assert rebuilt.trained_items == 401
    (meta,) = store.votes_folder.glob("votes-*.json")
    assert json.loads(meta.read_text())["trained_for"] == 401
    # a budget that the grown index would pass: built again, fewer keypoints a painting
    budget = 401 * 64
    assert lv.vote_index(store, max_keypoints=budget, extend=True).per_painting == 64
    store.write(["last"], [_features(rng)])
    tight = lv.vote_index(store, max_keypoints=budget, extend=True)
    assert tight is not None and tight.per_painting < 64 and "last" in tight.item_ids
    assert tight.index.ntotal <= budget


def test_the_budget_caps_keypoints_per_painting_and_small_stores_have_none(tmp_path) -> None:
    store, _ = _store(tmp_path, 200)
    capped = lv.build_vote_index(store, max_keypoints=200 * 16)
    assert capped.per_painting == 16 and capped.index.ntotal == 200 * 16
    small, _ = _store(tmp_path / "small", lv.MIN_PAINTINGS - 1)
    assert lv.load_or_build(small) is None


@pytest.mark.parametrize("n", [0, 1])
def test_an_empty_or_one_keypoint_query_gets_no_votes_or_few(tmp_path, n) -> None:
    store, feats = _store(tmp_path, 200)
    index = lv.vote_index(store)
    assert index is not None
    q = LocalFeatures(np.zeros((n, 2), np.float16), feats[0].desc[:n], (64, 64))
    assert index.top(q, 5) == []  # below the minimum of two votes


def test_a_read_only_catalog_keeps_the_index_in_memory(tmp_path, monkeypatch, caplog) -> None:
    store, feats = _store(tmp_path, 200)

    def refuse(*a, **kw):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(lv.os, "replace", refuse)
    index = lv.vote_index(store)
    assert index is not None and index.top(_query_of(feats[7], np.random.default_rng(2)), 1)
    assert "could not be saved" in caplog.text
    assert not list(store.folder.glob("votes-*"))  # no temporary file left behind


def test_paintings_without_keypoints_give_no_index(tmp_path) -> None:
    """Plain images (gradients, flat colour) have no keypoints: nothing to vote for."""
    store = LocalStore(SimpleNamespace(path=tmp_path))  # type: ignore[arg-type]
    empty = LocalFeatures(np.zeros((0, 2), np.float16), np.zeros((0, 128), np.uint8), (64, 64))
    store.write([f"flat{i}" for i in range(lv.MIN_PAINTINGS)], [empty] * lv.MIN_PAINTINGS)
    assert lv.vote_index(store) is None


def test_a_failed_build_is_logged_once_and_not_retried_by_every_query(
    tmp_path, monkeypatch, caplog
) -> None:
    store, _ = _store(tmp_path, 200)
    calls = []

    def fail(*a, **kw):
        calls.append(1)
        raise MemoryError("no room")

    monkeypatch.setattr(lv, "build_vote_index", fail)
    assert lv.vote_index(store) is None and lv.vote_index(store) is None
    assert len(calls) == 1 and "no keypoint votes" in caplog.text


def test_each_metadata_file_names_its_own_index(tmp_path) -> None:
    """Two processes writing at once must never pair one's ids with the other's index:
    the metadata, written last, names the index file written before it."""
    import json

    store, _ = _store(tmp_path, 200)
    first = lv.build_vote_index(store)
    lv._write(first, store, "k", lv.MAX_KEYPOINTS)
    other = lv.VoteIndex(first.index, list(reversed(first.item_ids)), first.per_painting)
    lv._write(other, store, "k", lv.MAX_KEYPOINTS)  # a second writer, same key
    meta = json.loads((store.votes_folder / "votes-k.json").read_text())
    assert (store.votes_folder / meta["index_file"]).is_file()
    assert len(list(store.votes_folder.glob("votes-*.faiss"))) == 1  # the first one removed
    read = lv._read(store.votes_folder / "votes-k.json", lv.MAX_KEYPOINTS, 0)
    assert read is not None and read.item_ids == other.item_ids


def test_each_part_of_the_query_gets_its_own_votes(tmp_path) -> None:
    # a photo of two paintings: 40 keypoints of p0010 and 12 of p0020. Counted together, the
    # richer one leads and the other may fall behind chance; each part's own tally puts its
    # painting first, from one search of the index.
    store, feats = _store(tmp_path, 250)
    index = lv.vote_index(store)
    assert index is not None
    rng = np.random.default_rng(8)
    a = _query_of(feats[10], rng, share=40)
    b = _query_of(feats[20], rng, share=12)
    q = LocalFeatures(np.concatenate([a.xy, b.xy]), np.concatenate([a.desc, b.desc]), (640, 480))
    parts = [np.arange(40), np.arange(len(a), len(a) + 12)]
    whole, first, second = index.top_of_parts(q, [np.arange(len(q)), *parts], 3)
    assert whole == index.top(q, 3) and whole[0][0] == "p0010"
    assert first[0][0] == "p0010" and second[0][0] == "p0020"
    assert second[0][1] < whole[0][1]  # fewer voters than the whole photo's leader
    # an empty part votes for nothing; a filter applies to every part
    assert index.top_of_parts(q, [np.arange(0)], 3) == [[]]
    kept = index.top_of_parts(q, parts, 3, keep=lambda i: i != "p0020")
    assert "p0020" not in [i for i, _ in kept[1]]


def test_the_index_is_the_same_whatever_the_chunk_it_is_read_in(tmp_path, monkeypatch) -> None:
    """Keypoints are read, converted and added CHUNK at a time (memory: session 34); the
    chunk changes neither the training sample nor the codes."""
    import faiss

    import artsim.catalog.local as local

    store, _ = _store(tmp_path, 300)
    monkeypatch.setattr(lv, "TRAIN_SAMPLE", 2_000)  # a random sample of the 19,200 to train on
    whole = lv.build_vote_index(store)
    monkeypatch.setattr(lv, "CHUNK", 777)  # not a multiple of a part's keypoints
    monkeypatch.setattr(local, "BLOCK_ROWS", 7)  # parts of 100 paintings read in slices
    chunked = lv.build_vote_index(store)
    assert len(list(lv._keypoints(store, store.ids(), 256))) > 1
    assert chunked.item_ids == whole.item_ids and chunked.index.ntotal == 300 * 64
    assert np.array_equal(faiss.serialize_index(chunked.index), faiss.serialize_index(whole.index))
