"""Face search (artsim.search.faces): the query face chosen (largest, numbered, or marked by a
box), paintings ranked by their best-matching face, and the errors that name what to do.
Searches by catalog id on MemoryCatalog read stored faces only (no detector runs)."""

from __future__ import annotations

import numpy as np
import pytest

from artsim.errors import ArtsimError
from artsim.search import Query
from artsim.search.faces import choose_face, parse_box, search_faces
from tests.search_support import MemoryCatalog, Painting, unit


def _catalog() -> MemoryCatalog:
    rng = np.random.default_rng(0)
    sitters = unit(rng.normal(size=(3, 128)))
    g = unit(rng.normal(size=(6, 8)))

    def near(s: int, noise: float, seed: int) -> np.ndarray:
        return unit(
            sitters[s] + noise * np.random.default_rng(seed).normal(size=128) / np.sqrt(128)
        )

    return MemoryCatalog([
        # two faces: a small one of sitter 1 and a large one of sitter 0
        Painting("q", g[0], [((10, 10, 20, 20), near(1, 0.0, 1)), ((50, 50, 80, 90), sitters[0])]),
        Painting("a", g[1], [((0, 0, 30, 30), near(0, 0.1, 2))]),  # sitter 0, close
        Painting("b", g[2], [((0, 0, 30, 30), near(0, 0.6, 3)), ((40, 0, 30, 30), near(2, 0.0, 4))]),
        Painting("c", g[3], [((0, 0, 30, 30), near(1, 0.1, 5))]),  # sitter 1
        Painting("landscape", g[4]),
        Painting("d", g[5], [((0, 0, 30, 30), near(2, 0.1, 6))]),
    ])  # fmt: skip


def test_parse_box_reads_pixels_and_names_the_text():
    assert parse_box("1,2,30.5,40") == (1.0, 2.0, 30.5, 40.0)
    assert parse_box("") is None and parse_box(None) is None
    for text, message in [
        ("1,2,3", "'1,2,3': expected x,y,w,h in pixels"),
        ("a,b,c,d", "expected x,y,w,h in pixels"),
        ("1,2,nan,4", "expected x,y,w,h as finite numbers of pixels"),
        ("1,2,0,4", "'1,2,0,4': width and height must be positive"),
        ("1,2,3,-4", "width and height must be positive"),
    ]:
        with pytest.raises(ArtsimError, match=message):
            parse_box(text)


def test_the_largest_face_is_searched_unless_another_is_named():
    cat = _catalog()
    q = Query(item_id="q", label="q")
    assert choose_face(cat, q, None, None)["row_id"] == "q#f1"  # 80 x 90 beats 20 x 20
    assert choose_face(cat, q, 0, None)["row_id"] == "q#f0"
    with pytest.raises(ArtsimError, match=r"--face 2: the query has 2 face\(s\), numbered 0..1"):
        choose_face(cat, q, 2, None)
    # a box over a stored face picks that face
    assert choose_face(cat, q, None, (12, 12, 18, 18))["row_id"] == "q#f0"


def test_a_query_without_a_face_says_how_to_go_on():
    cat = _catalog()
    with pytest.raises(ArtsimError) as err:
        choose_face(cat, Query(item_id="landscape", label="landscape"), None, None)
    assert str(err.value) == (
        "no face found in landscape; mark one with --box x,y,w,h, or search by --aspect global"
    )


def test_paintings_are_ranked_by_their_best_face():
    cat = _catalog()
    hits = search_faces(cat, Query(item_id="q", label="q"), k=3, exclude="q")
    assert [h.id for h in hits][:2] == ["a", "b"]  # sitter 0, closest first
    assert hits[0].aspect == "face" and hits[0].face_id == "a#f0" and hits[0].box == (0, 0, 30, 30)
    assert all(h.id != "q" for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score
    # face 0 of the query is sitter 1
    assert search_faces(cat, Query(item_id="q", label="q"), k=1, exclude="q", face=0)[0].id == "c"
    # a mask keeps only the allowed paintings, and k of them whenever k have faces
    mask = np.array([i in ("b", "d") for i in cat.ids])
    got = search_faces(cat, Query(item_id="q", label="q"), k=5, mask=mask, exclude="q")
    assert [h.id for h in got] == ["b", "d"]


def test_a_query_image_embeds_only_the_face_it_searches_with(monkeypatch):
    import artsim.encoders.faces as E
    from artsim.analysis import Analysis, FoundFaces
    from artsim.images import LoadedImage
    from artsim.records import Face
    from tests.images_factory import gradient

    calls: list[int] = []
    monkeypatch.setattr(E, "embed_chips", lambda chips: calls.append(len(chips)) or unit(
        np.stack([np.r_[np.asarray(c, np.float32).mean((0, 1)), np.ones(125)] for c in chips])))  # fmt: skip
    boxes = [(0, 0, 10, 10), (20, 0, 40, 40), (70, 0, 20, 20)]  # the second is the largest
    found = FoundFaces(
        [Face(b, 0.9, "ensemble") for b in boxes],
        np.full((3, 128), np.nan, np.float32),
        [gradient(150, 150, seed=s) for s in range(3)],
        [],
    )
    image = LoadedImage(gradient(100, 60, seed=9), (100, 60))

    def query() -> Query:
        return Query(source=b"image", label="<upload>", analysis=Analysis(image, faces=found))

    chosen = choose_face(_catalog(), query(), None, None, look=False)
    assert chosen["box"] == [20, 0, 40, 40] and calls == [1]
    assert np.isnan(found.identity[0, 0]) and np.isnan(found.identity[2, 0])
    np.testing.assert_array_equal(chosen["identity"], found.identity[1])
    assert choose_face(_catalog(), query(), 2, None, look=False)["box"] == [70, 0, 20, 20]
    assert calls == [1, 1]
    with pytest.raises(ArtsimError, match="--face 3: the query has 3 face"):
        choose_face(_catalog(), query(), 3, None, look=False)
    assert calls == [1, 1]  # nothing embedded for a refused choice
