"""The search stage's entry (artsim.search): query resolution, the analysis a query reuses,
masks over rows, results collapsed to paintings, and search() dispatching to each aspect."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from artsim.analysis import Analysis, FoundFaces
from artsim.errors import ArtsimError
from artsim.images import LoadedImage
from artsim.records import Face
from artsim.search import (
    Query,
    _covers,
    best_per_item,
    masked_search,
    resolve_query,
    row_mask,
    same_file_item,
    search,
)
from tests.search_support import MemoryCatalog, Painting, standing, unit


def _catalog() -> MemoryCatalog:
    g = unit(np.random.default_rng(2).normal(size=(4, 8)))
    face = unit(np.ones(128))
    return MemoryCatalog([
        Painting("a", g[0], [((0, 0, 10, 10), face)], [standing(0)], {"artist": "Alice"}),
        Painting("b", g[1], [((0, 0, 10, 10), face), ((20, 0, 10, 10), face)], [], {"artist": "Bob"}),
        Painting("c", g[2], [], [standing(0, arm=1)], {"artist": "Alice"}),
        Painting("d", g[3], [], [], {"artist": "Carla"}),
    ])  # fmt: skip


def test_resolve_query_tells_ids_files_bytes_and_images_apart(tmp_path):
    cat = _catalog()
    assert resolve_query(cat, "a") == Query(item_id="a", label="a")
    f = tmp_path / "q.jpg"
    Image.new("RGB", (8, 8)).save(f)
    assert resolve_query(cat, str(f)) == Query(source=str(f), label=str(f))
    assert resolve_query(cat, b"\xff\xd8").source == b"\xff\xd8"
    im = Image.new("RGB", (4, 4))
    assert resolve_query(cat, im).source is im
    with pytest.raises(ArtsimError, match="only http\\(s\\) URLs are supported"):
        resolve_query(cat, "ftp://example.org/a.jpg")
    with pytest.raises(ArtsimError) as err:
        resolve_query(cat, "nope.jpg")
    assert str(err.value) == (
        "query 'nope.jpg' is neither an id in catalog memory-catalog nor an image file or URL"
    )


def test_a_query_file_that_is_in_the_catalog_is_excluded_from_its_results(tmp_path):
    cat = _catalog()
    f = tmp_path / "b.jpg"
    f.write_bytes(b"")
    cat._images[1] = str(f.resolve())
    assert same_file_item(cat, Query(source=str(f), label="b.jpg")) == "b"
    assert same_file_item(cat, Query(item_id="c", label="c")) == "c"
    assert same_file_item(cat, Query(source=b"bytes", label="<upload>")) is None


def test_an_analysis_is_reused_only_when_it_covers_what_is_asked():
    image = LoadedImage(Image.new("RGB", (8, 8)), (8, 8))
    faces = FoundFaces([Face((0, 0, 4, 4), 0.9, "ensemble")], np.zeros((1, 128)), [], [])
    a = Analysis(image, vector=np.zeros(8), faces=faces)
    assert _covers(a, {"global"}, False, None) and _covers(a, {"global", "face"}, False, None)
    assert not _covers(a, {"face"}, True, None)  # look vectors were not computed
    assert not _covers(a, {"pose"}, False, None)
    assert not _covers(a, {"face"}, False, (0, 0, 4, 4))  # detected faces are not a marked box
    marked = Analysis(
        image, faces=FoundFaces([Face((0, 0, 4, 4), 1.0, "user")], faces.identity, [], [])
    )
    assert _covers(marked, {"face"}, False, (0, 0, 4, 4))
    assert not _covers(marked, {"face"}, False, None)


def test_row_mask_and_best_per_item():
    cat = _catalog()
    data = cat.aspect("face")  # rows: a#f0, b#f0, b#f1
    assert row_mask(data.row_pos, len(cat), None, None, cat) is None
    assert row_mask(data.row_pos, len(cat), None, "b", cat).tolist() == [True, False, False]
    mask = np.array([False, True, True, True])
    assert row_mask(data.row_pos, len(cat), mask, None, cat).tolist() == [False, True, True]
    # rows 1 and 2 belong to painting 1: its best row wins, paintings best first
    hits = best_per_item(np.array([0.5, 0.7, 0.9]), np.array([0, 1, 2]), data.row_pos, k=5)
    assert hits == [(1, 2, pytest.approx(0.9)), (0, 0, pytest.approx(0.5))]
    assert best_per_item(np.array([0.5, 0.1]), np.array([-1, 0]), data.row_pos, k=1) == [
        (0, 0, pytest.approx(0.1))
    ]


def test_masked_search_checks_the_row_mask_shape():
    cat = _catalog()
    data, index = cat.vector_index("face", "identity")
    with pytest.raises(ValueError, match=r"row_ok has shape \(2,\); the aspect has 3 rows"):
        masked_search(
            cat, data, index, data.vectors["identity"][0], 2, None, None, np.ones(2, bool)
        )
    scores, rows = masked_search(cat, data, index, data.vectors["identity"][0], 5, None, "b")
    assert scores.shape == (1,) and scores[0] == pytest.approx(1.0)
    assert rows.tolist() == [0]  # b's two faces were left out, not just cut from the top k


def test_search_dispatches_each_aspect_and_applies_where():
    cat = _catalog()
    assert {h.aspect for h in search(cat, "a", k=3)} == {"global"}
    assert [h.id for h in search(cat, "a", aspect="face")] == ["b"]
    assert [h.id for h in search(cat, "a", aspect="pose")] == ["c"]
    assert [h.id for h in search(cat, "a", k=3, where="artist=alice")] == ["c"]
    fused = search(cat, "a", k=3, aspect="fused")
    assert fused and all(h.aspect == "fused" and h.id != "a" for h in fused)
    with pytest.raises(ArtsimError, match="unknown aspect"):
        search(cat, "a", aspect="colour")
    with pytest.raises(ArtsimError, match="figure applies only with aspect pose or fused"):
        search(cat, "a", aspect="face", figure=1)
