"""`artsim eval`'s driver (artsim.evaluation.run) end to end on a tiny generated data root with
its own ground truth. Its report is tested in test_evaluation_report.py."""

from __future__ import annotations

import json

import pytest

from artsim.catalog import Catalog
from artsim.evaluation.run import evaluate
from artsim.images import load_rgb


@pytest.fixture
def root(tmp_path, data_dir):
    """A data root of 6 real paintings (a/) and re-encoded, shrunk copies of them (b/)."""
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    sources = sorted((data_dir / "wikiart" / "images" / "Ukiyo_e").glob("*.jpg"))[::97][:6]
    for i, src in enumerate(sources):
        im = load_rgb(src)
        im.save(root / "a" / f"{i}.jpg", quality=95)
        im.resize((180, 180)).save(root / "b" / f"{i}.jpg", quality=70)
    gt = root / "groundtruth"
    gt.mkdir()
    (gt / "instance_pairs.csv").write_text(
        "query_path,target_path,source\n"
        + "".join(f"b/{i}.jpg,a/{i}.jpg,test\n" for i in range(6))
        + "b/9.jpg,a/9.jpg,test\n"  # not in the catalog: must be counted, not dropped
    )
    (gt / "same_artist.csv").write_text(
        "path,artist\n" + "".join(f"a/{i}.jpg,{'x' if i < 3 else 'y'}\n" for i in range(6))
    )
    (gt / "same_sitter.csv").write_text(
        "path,sitter_id,reason\na/0.jpg,s|1,test\nb/0.jpg,s|1,test\n"
    )
    (gt / "exact_duplicates.csv").write_text("path_a,path_b,sha256\n")
    (gt / "near_duplicates.csv").write_text("path_a,path_b,hash_dist,corr,same_normalised_name\n")
    return root


def test_eval_counts_missing_and_scores_every_setting(root, tmp_path):
    cat = Catalog.create(tmp_path / "cat")
    cat.add(root)
    run = evaluate(
        cat, root / "groundtruth", aspects=["global", "fused"], distort=True, refinements=True, k=20
    )
    inst = next(
        r
        for r in run.rows
        if r["task"] == "instance" and r["aspect"] == "global" and r["variant"] == "plain"
    )
    assert inst["queries"] == 6 and inst["missing"] == 1
    assert inst["recall@1"] >= 5 / 6  # re-encoded, shrunk copies of the same image
    assert {r["variant"] for r in run.rows} >= {"plain", "query-expansion", "whitening"}
    assert any(r["task"] == "instance-distorted" for r in run.rows)
    # issue 13: the framed-photo setting, photo handling off and on, each half of the split
    framed = {r["variant"]: r for r in run.rows if r["task"] == "instance-framed"}
    assert {"plain", "photo", "photo, tune", "photo, held-out"} <= set(framed)
    assert framed["photo, tune"]["queries"] + framed["photo, held-out"]["queries"] == 6
    # and the harsher gallery photos, reported the same way
    gallery = {r["variant"]: r for r in run.rows if r["task"] == "instance-gallery"}
    assert {"plain", "photo", "photo, tune", "photo, held-out"} <= set(gallery)
    assert gallery["photo, tune"]["queries"] + gallery["photo, held-out"]["queries"] == 6
    assert gallery["photo"]["recall@1"] is not None
    assert run.missing["instance"] == 1
    assert json.loads(json.dumps(run.to_dict()))["missing"]["instance"] == 1  # JSON-ready


def test_image_search_scores_a_photo_ranking_by_its_order(monkeypatch):
    from types import SimpleNamespace

    import artsim.evaluation.run as run_module
    from artsim.evaluation.run import make_image_search

    # a photo search puts each place's verified match first, whatever its score
    hits = [SimpleNamespace(id=i, score=s) for i, s in (("x", 1.2), ("y", 3.0), ("z", 0.5))]
    monkeypatch.setattr(run_module, "search_catalog", lambda *a, **k: hits)
    paths = {"x": "a/x.jpg", "y": "a/y.jpg", "z": "a/z.jpg"}
    out = make_image_search(None, {"q.jpg": object()}, paths, "global", 3)("q.jpg")
    assert [p for p, _ in out] == ["a/x.jpg", "a/y.jpg", "a/z.jpg"]  # order kept
    scores = [s for _, s in out]
    assert scores == sorted(scores, reverse=True)  # monotone, as the metrics require
    hits[1].score = 0.9  # an ordinary ranking keeps its own scores
    assert make_image_search(None, {"q.jpg": object()}, paths, "global", 3)("q.jpg")[1] == (
        "a/y.jpg",
        0.9,
    )


def test_framed_queries_make_screen_and_dim_photos_and_refuse_unknown_settings(
    root,
) -> None:
    from artsim.evaluation.distort import PHOTO_STREAMS
    from artsim.evaluation.groundtruth import load_instance_pairs
    from artsim.evaluation.run import framed_queries

    pairs = [p for p in load_instance_pairs(root / "groundtruth") if p.query_path != "b/9.jpg"]
    available = {p.query_path for p in pairs} | {p.target_path for p in pairs}
    shots = framed_queries(pairs, available, root, seed=0, p_two=1.0, setting="screen")
    assert set(shots) == {p.query_path for p in pairs}
    assert all(s.second is None and len(s.quads) == 1 for s in shots.values())
    again = framed_queries(pairs[:1], available, root, seed=0, setting="screen")
    first = pairs[0].query_path
    assert again[first].quads == shots[first].quads  # seeded, its own stream
    dim = framed_queries(pairs, available, root, seed=0, setting="dim")
    framed = framed_queries(pairs, available, root, seed=0, setting="framed")
    assert set(dim) == set(shots)
    assert any(dim[q].quads != framed[q].quads for q in dim)  # its own stream, not framed's
    # streams are numbered in this order: appending keeps every earlier setting's photos
    assert PHOTO_STREAMS[:3] == ("framed", "gallery", "screen")
    with pytest.raises(ValueError, match="unknown photo setting 'museum'"):
        framed_queries(pairs, available, root, setting="museum")
