"""Ground-truth loaders (real files and malformed ones) and the search-function drivers."""

from __future__ import annotations

from pathlib import Path

import pytest

from artsim.errors import ArtsimError
from artsim.evaluation.groundtruth import (
    ExactDuplicate,
    GroundTruthError,
    InstancePair,
    NearDuplicate,
    duplicate_ignore_map,
    eval_instance,
    eval_same_artist,
    eval_same_sitter,
    files_present,
    load_exact_duplicates,
    load_instance_pairs,
    load_near_duplicates,
    load_same_artist,
    load_same_sitter,
    restrict_search,
)

# ---------------------------------------------------------------------------- real files


def test_load_real_ground_truth(data_dir: Path) -> None:
    gt = data_dir / "groundtruth"
    pairs = load_instance_pairs(gt)
    artist = load_same_artist(gt)
    sitter = load_same_sitter(gt)
    exact = load_exact_duplicates(gt)
    near = load_near_duplicates(gt)
    # counts stated in groundtruth/README.md
    assert len(pairs) == 159
    assert sum(p.source == "peopleart~wikiart:style+name" for p in pairs) == 143
    assert len(artist) == 5405 and len(set(artist.values())) == 84
    assert len(sitter) == 148 and len(set(sitter.values())) == 24
    assert len(exact) == 6 and len(near) == 52
    assert all(isinstance(p, InstancePair) for p in pairs)
    assert isinstance(exact[0], ExactDuplicate) and len(exact[0].sha256) == 64
    assert isinstance(near[0], NearDuplicate) and isinstance(near[0].hash_dist, int)
    assert 0.9 <= near[0].corr <= 1.0
    assert sitter["wikiart/images/Baroque/aleksey-antropov_portrait-of-catherine-ii.jpg"] == (
        "aleksey-antropov|catherine-ii"
    )
    # every path names a file under the data root
    some = [pairs[0].query_path, pairs[-1].target_path, *list(sitter)[:3]]
    assert files_present(data_dir, some) == set(some)


# ---------------------------------------------------------------------------- malformed files


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_missing_file_names_file_and_columns(tmp_path: Path) -> None:
    with pytest.raises(GroundTruthError, match=r"instance_pairs\.csv.*not found") as info:
        load_instance_pairs(tmp_path)
    assert "query_path, target_path, source" in str(info.value)
    assert isinstance(info.value, ArtsimError)


def test_missing_columns_are_listed(tmp_path: Path) -> None:
    _write(tmp_path, "same_artist.csv", "path,painter\na.jpg,x\n")
    with pytest.raises(GroundTruthError) as info:
        load_same_artist(tmp_path)
    msg = str(info.value)
    assert "missing column(s) artist" in msg
    assert "expected columns path, artist" in msg
    assert "found: path, painter" in msg


def test_empty_field_and_bad_number_name_the_line(tmp_path: Path) -> None:
    _write(tmp_path, "instance_pairs.csv", "query_path,target_path,source\na.jpg,,s\n")
    with pytest.raises(GroundTruthError, match=r"line 2: empty 'target_path'"):
        load_instance_pairs(tmp_path)
    _write(
        tmp_path,
        "near_duplicates.csv",
        "path_a,path_b,hash_dist,corr,same_normalised_name\na,b,7,0.99,0\nc,d,x,0.95,1\n",
    )
    with pytest.raises(GroundTruthError, match=r"line 3: 'hash_dist' should be an integer"):
        load_near_duplicates(tmp_path)


def test_conflicting_labels_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "same_sitter.csv", "path,sitter_id,reason\na,x|self,s\nb,x|self,s\na,y|z,p\n")
    with pytest.raises(GroundTruthError, match=r"line 4: a is labelled sitter_id='y\|z'"):
        load_same_sitter(tmp_path)


def test_bom_blank_lines_and_extra_columns_are_accepted(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "instance_pairs.csv",
        "\ufeffquery_path,target_path,source,note\nq.jpg,t.jpg,s1,hi\n\nq2.jpg,t2.jpg,s2,\n",
    )
    assert load_instance_pairs(tmp_path) == [
        InstancePair("q.jpg", "t.jpg", "s1"),
        InstancePair("q2.jpg", "t2.jpg", "s2"),
    ]


# ---------------------------------------------------------------------------- helpers


def test_duplicate_ignore_map_is_symmetric_not_transitive() -> None:
    exact = [ExactDuplicate("a", "b", "0" * 64)]
    near = [NearDuplicate("b", "c", 10, 0.95, False)]
    ig = duplicate_ignore_map(exact, near, [("d", "d")])
    assert ig == {"a": {"b"}, "b": {"a", "c"}, "c": {"b"}}


def test_restrict_search_keeps_order_and_scores() -> None:
    def search(q: str):
        return [("x", 0.9), ("n", 0.8), ("y", 0.7)]

    assert restrict_search(search, {"x", "y"})("q") == [("x", 0.9), ("y", 0.7)]
    assert restrict_search(lambda q: ["n", "y"], {"y"})("q") == ["y"]


# ---------------------------------------------------------------------------- drivers


def _fixed(results: dict[str, list]):
    """A fake search: a fixed ranking per query (the query itself included, as a lazy
    search might return it; the drivers must drop it)."""
    return lambda q: [q, *results.get(q, [])]


def test_eval_instance_metrics_and_missing() -> None:
    pairs = [
        InstancePair("q1", "t1", "s"),  # found at rank 1
        InstancePair("q2", "t2", "s"),  # rank 3
        InstancePair("q3", "t3", "s"),  # not returned
        InstancePair("q4", "t4", "other"),  # target missing from the catalog
        InstancePair("q5", "t5", "other"),  # query missing
    ]
    search = _fixed({"q1": ["t1", "x"], "q2": ["x", "y", "t2", "z"], "q3": ["x"]})
    available = {"q1", "t1", "q2", "t2", "q3", "t3", "q4", "t5"}
    res = eval_instance(pairs, search, available)
    assert res.task == "instance"
    assert res.n_missing == 2
    assert res.missing == ["q5", "t4"]
    assert [r["query"] for r in res.per_query] == ["q1", "q2", "q3"]
    assert [r["rank"] for r in res.per_query] == [1, 3, None]
    m = res.summary["means"]
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@5"] == pytest.approx(2 / 3)
    assert m["ap"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert res.summary["counts"]["ap"] == 3
    assert res.breakdown["s"]["queries"] == 3
    assert "per_query" in res.to_dict()


def test_eval_instance_ignore_removes_known_duplicates_but_never_the_target() -> None:
    pairs = [InstancePair("q", "t", "s")]
    search = _fixed({"q": ["dup", "t"]})
    plain = eval_instance(pairs, search, {"q", "t"})
    assert plain.per_query[0]["ap"] == pytest.approx(0.5)
    ignored = eval_instance(pairs, search, {"q", "t"}, ignore={"q": {"dup", "t"}})
    assert ignored.per_query[0]["ap"] == pytest.approx(1.0)
    assert ignored.per_query[0]["ignored"] == 1


def test_eval_instance_with_scores_uses_tie_expectation() -> None:
    pairs = [InstancePair("q", "t", "s")]

    def search(q: str):
        return [("x", 0.8), ("t", 0.8), ("y", 0.1)]  # t tied with x for rank 1

    row = eval_instance(pairs, search, {"q", "t"}).per_query[0]
    assert row["recall@1"] == pytest.approx(0.5)
    assert row["ap"] == pytest.approx(0.75)


def test_eval_same_artist_leave_one_out() -> None:
    labels = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "c1": "C", "d1": "D"}
    search = _fixed(
        {
            "a1": ["a2", "b1", "a3"],
            "a2": ["b1", "b2", "c1"],
            "a3": ["a1", "a2"],
            "b1": ["b2"],
            "b2": ["a1", "b1"],
            "c1": ["a1"],
        }
    )
    available = set(labels) - {"d1"} | {"x"}
    res = eval_same_artist(labels, search, available, k=2)
    assert res.missing == ["d1"] and res.n_missing == 1
    assert res.skipped == ["c1"]  # the only available work by C
    rows = {r["query"]: r for r in res.per_query}
    assert set(rows) == {"a1", "a2", "a3", "b1", "b2"}
    assert rows["a1"]["precision@2"] == pytest.approx(1 / 2)
    assert rows["a1"]["ap@2"] == pytest.approx(1 / 2)  # rank 1 hit / min(2, 2)
    assert rows["a2"]["ap@2"] == 0.0
    assert rows["a3"]["ap@2"] == pytest.approx(1.0)
    assert rows["b1"]["ap@2"] == pytest.approx(1.0)  # 1 relevant: divided by min(2, 1)
    assert rows["b2"]["precision@2"] == pytest.approx(1 / 2)
    assert rows["b2"]["ap@2"] == pytest.approx(1 / 2)
    assert res.summary["means"]["ap@2"] == pytest.approx((0.5 + 0 + 1 + 1 + 0.5) / 5)
    assert res.summary["counts"]["ap@2"] == 5


def test_eval_same_artist_ignore_keeps_labelled_duplicates() -> None:
    labels = {"a1": "A", "a2": "A", "b1": "B", "b2": "B"}
    search = _fixed({"a1": ["b1", "a2"], "a2": ["a1"], "b1": ["b2"], "b2": ["b1"]})
    ig = {"a1": {"b1", "a2"}}
    res = eval_same_artist(labels, search, set(labels), k=10, ignore=ig)
    row = next(r for r in res.per_query if r["query"] == "a1")
    # b1 (a duplicate by another artist) is removed; a2 is a duplicate but relevant: kept
    assert row["ap@10"] == pytest.approx(1.0)
    assert row["ignored"] == 1


def test_eval_same_sitter_hits_and_ap() -> None:
    labels = {"s1": "X|self", "s2": "X|self", "s3": "X|self", "p1": "Y|z", "p2": "Y|z"}
    search = _fixed(
        {
            "s1": ["s2", "s3"],
            "s2": ["o1", "o2", "o3", "o4", "o5", "s1"],
            "s3": ["o1", "s1", "o2", "s2"],
            "p1": ["p2"],
            "p2": [],
        }
    )
    res = eval_same_sitter(labels, search, set(labels))
    rows = {r["query"]: r for r in res.per_query}
    assert rows["s1"]["hit@1"] == 1.0 and rows["s1"]["ap"] == pytest.approx(1.0)
    assert rows["s2"]["hit@5"] == 0.0
    assert rows["s2"]["ap"] == pytest.approx((1 / 6) / 2)  # s3 never retrieved
    assert rows["s3"]["hit@1"] == 0.0 and rows["s3"]["hit@5"] == 1.0
    assert rows["s3"]["ap"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert rows["p2"]["ap"] == 0.0  # empty result list scores 0, not NaN
    assert res.summary["means"]["hit@1"] == pytest.approx(2 / 5)
    assert res.n_missing == 0 and res.skipped == []


def test_search_output_must_be_paths_or_pairs() -> None:
    with pytest.raises(TypeError, match="list of paths or a list of"):
        eval_instance([InstancePair("q", "t", "s")], lambda q: [1, 2], {"q", "t"})


def test_sample_per_label_caps_each_label_and_is_seeded():
    import random

    from artsim.evaluation.groundtruth import sample_per_label

    labels = {f"a/{i}.jpg": "a" for i in range(10)} | {"b/0.jpg": "b", "b/1.jpg": "b"}
    first = sample_per_label(labels, 3, random.Random(0))
    assert sorted(first.values()) == ["a", "a", "a", "b", "b"]
    assert all(labels[p] == lab for p, lab in first.items())
    assert first == sample_per_label(labels, 3, random.Random(0))
    assert sample_per_label(labels, 0, random.Random(0)) == {}
