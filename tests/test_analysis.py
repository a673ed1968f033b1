"""The analysis stage: one decode and one face detection per query, and indexing and queries
sharing `analyse`, so a stored row equals the query's vector for the same image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artsim.analysis import (
    FACE_MAX_SIDE,
    FoundFaces,
    analyse,
    analyse_batch,
    decode_side,
    marked_face,
)
from artsim.errors import ArtsimError
from artsim.images import LoadedImage
from artsim.records import Face
from tests.images_factory import gradient

# NGA sample paintings with clearly visible faces and figures (as in test_catalog_regions)
PORTRAITS = ["1128.jpg", "12208.jpg", "1115.jpg"]
# group scenes (People-Art) with 3 and 5 faces found
GROUPS = [
    "Academicism/albert-anker_b-ckligumpen-1866.jpg",
    "Academicism/eugene-de-blaas_flirtation-at-the-well.jpg",
]


class _Encoder:
    """A stand-in whole-image encoder: a vector from each image's mean colour and size."""

    dim = 4

    class preprocess:
        resize = 64

    def __init__(self) -> None:
        self.batches: list[int] = []

    def embed_images(self, images: list[Image.Image], batch_size: int = 32) -> np.ndarray:
        self.batches.append(len(images))
        return np.array(
            [[*np.asarray(im, dtype=np.float32).mean((0, 1)), im.width] for im in images],
            dtype=np.float32,
        )


def test_decode_side_is_the_largest_an_analysis_needs() -> None:
    enc = _Encoder()
    assert decode_side({"global"}, enc) == 64
    assert decode_side({"global", "face"}, enc) == FACE_MAX_SIDE
    assert decode_side(set()) is None
    # keypoints are found on a painting decoded at 260 px at least, whatever the encoder's
    # size, as an index run's local indexer asks (catalog.local.LocalIndexer.max_side)
    from artsim.detectors.keypoints import LOCAL_DECODE_SIDE, LOCAL_SIDE

    assert decode_side({"global", "local"}, enc) == decode_side({"local"}) == LOCAL_DECODE_SIDE
    assert LOCAL_DECODE_SIDE > LOCAL_SIDE


def test_batch_runs_each_analysis_only_where_asked_and_embeds_in_one_batch() -> None:
    enc = _Encoder()
    images = [LoadedImage(gradient(40 + 10 * i, 30, seed=i), (40 + 10 * i, 30)) for i in range(3)]
    out = analyse_batch(images, [{"global"}, set(), {"global"}], encoder=enc)
    assert enc.batches == [2]  # the two images that need it, together
    assert out[0].vector is not None and out[1].vector is None and out[2].vector is not None
    assert out[2].vector[3] == 60  # each image got its own vector back
    assert all(a.faces is None and a.figures is None for a in out)
    with pytest.raises(ArtsimError, match="unknown analysis colour"):
        analyse_batch(images[:1], [{"colour"}], encoder=enc)


def test_a_marked_box_outside_the_image_is_a_clear_error() -> None:
    loaded = LoadedImage(gradient(100, 50, seed=1), (200, 100))  # decoded at half size
    face = marked_face(loaded, (20.0, 10.0, 40.0, 40.0))
    assert face.box == (10.0, 5.0, 20.0, 20.0) and face.detector == "user"
    with pytest.raises(ArtsimError, match="outside the query image"):
        marked_face(loaded, (500.0, 500.0, 10.0, 10.0))


def _fake_embed(calls: list[int]):
    """A stand-in for encoders.faces.embed_chips: a vector from each chip's mean colour."""

    def embed(chips: list[Image.Image]) -> np.ndarray:
        calls.append(len(chips))
        out = np.zeros((len(chips), 128), np.float32)
        for i, c in enumerate(chips):
            out[i, :3] = np.asarray(c, dtype=np.float32).mean((0, 1)) + 1
        return out

    return embed


def test_identities_embed_only_the_faces_asked_for_and_each_once(monkeypatch) -> None:
    import artsim.encoders.faces as E

    calls: list[int] = []
    monkeypatch.setattr(E, "embed_chips", _fake_embed(calls))
    chips = [gradient(150, 150, seed=s) for s in range(3)]
    faces = [Face((0, 0, 10 + i, 10), 0.9, "ensemble") for i in range(3)]
    ff = FoundFaces(faces, np.full((3, 128), np.nan, np.float32), chips, [])
    one = ff.identities([1])
    assert calls == [1] and one.shape == (1, 128)
    assert np.isnan(ff.identity[0, 0]) and np.isnan(ff.identity[2, 0])  # not computed
    assert np.array_equal(ff.identities([1]), one) and calls == [1]  # not embedded twice
    every = ff.identities()
    assert calls == [1, 2] and every.shape == (3, 128) and not np.isnan(every).any()
    assert np.array_equal(every, _fake_embed([])(chips))  # as one batch would give
    assert ff.identities([]).shape == (0, 128)


# ---------------------------------------------------------------------- on real paintings
@pytest.fixture(scope="module")
def catalog(tmp_path_factory, data_dir):
    import artsim.search  # noqa: F401  (Catalog.search)
    from artsim.catalog import Catalog

    tmp = tmp_path_factory.mktemp("analysis")
    src = tmp / "src"
    src.mkdir()
    for n in PORTRAITS:
        (src / n).symlink_to(data_dir / "nga" / "images" / n)
    gradient(300, 200, seed=3).save(src / "no-figure.jpg")
    # one painting per batch: the query embeds one image alone too, so bf16 inference sees
    # the same batches and the vectors can be compared exactly
    Catalog.create(tmp / "cat").add(src, aspects=["face", "pose"], batch_size=1, detector_workers=1)
    return Catalog.open(tmp / "cat"), src


QUERIES = [
    ("global", {}),
    ("face", {}),
    ("face", {"identity": False}),
    ("pose", {}),
    ("fused", {}),
    ("fused", {"weights": {"global": 1.0, "face": 1.0, "pose": 1.0}}),
    ("fused", {"weights": {"global": 1.0, "face": 0.0, "pose": 1.0}}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("aspect", "options"), QUERIES)
def test_a_query_decodes_its_image_once_and_detects_faces_once(
    catalog, monkeypatch, aspect, options
) -> None:
    import artsim.detectors.faces as F

    cat, src = catalog
    path = src / PORTRAITS[0]
    # models loaded, and the candidates' local features cached (photo queries compute them
    # on demand from the stored paintings), before counting the query's own decodes
    for warm in (str(path), path.read_bytes()):
        cat.search(warm, aspect=aspect, k=2, **options)
    opened: list[object] = []
    detections: list[str] = []
    real_open, real_run = Image.open, F._run_detector
    monkeypatch.setattr(
        Image, "open", lambda fp, *a, **kw: opened.append(fp) or real_open(fp, *a, **kw)
    )
    monkeypatch.setattr(
        F, "_run_detector", lambda image, name: detections.append(name) or real_run(image, name)
    )
    for query in (str(path), path.read_bytes()):
        opened.clear()
        detections.clear()
        hits = cat.search(query, aspect=aspect, k=2, **options)
        assert hits
        assert len(opened) == 1, opened
        # face, pose and every fused mix here look for faces (poses propose figures below them)
        assert len(detections) == (0 if aspect == "global" else 1), detections


@pytest.mark.slow
def test_stored_rows_equal_the_query_analysis_of_the_same_file(catalog) -> None:
    from artsim.search import resolve_query

    cat, src = catalog
    faces, poses, glob_ = cat.aspect("face"), cat.aspect("pose"), cat.aspect("global")
    checked = 0
    for name in PORTRAITS:
        # the file as a query (not the catalog id, which would reuse the stored rows)
        q = resolve_query(cat, str(src / name))
        assert q.item_id is None
        a = q.analyse(cat, {"global", "face", "pose"}, look=True)
        np.testing.assert_array_equal(
            a.vector, glob_.vectors["global"][glob_.rows_of_item(name)[0]]
        )
        rows = faces.rows_of_item(name)
        assert a.faces is not None and len(rows) == len(a.faces.faces)
        np.testing.assert_array_equal(a.faces.identities(), faces.vectors["identity"][rows])
        np.testing.assert_array_equal(a.look, faces.vectors["look"][rows])
        boxes = [[round(v, 1) for v in f.box] for f in a.original_faces()]
        assert boxes == [faces.info[r]["box"] for r in rows]
        rows = poses.rows_of_item(name)
        assert a.figures is not None and len(rows) == len(a.figures.poses)
        np.testing.assert_array_equal(a.figures.descriptors, poses.vectors["pose"][rows])
        checked += len(rows) + len(faces.rows_of_item(name))
    assert checked > 0  # the portraits have faces and figures to compare


@pytest.mark.slow
def test_analyse_takes_files_bytes_and_pil_images_alike(catalog) -> None:
    cat, src = catalog
    path = src / PORTRAITS[1]
    by_path = analyse(str(path), {"face"}, encoder=cat.encoder, look=False)
    by_bytes = analyse(path.read_bytes(), {"face"}, encoder=cat.encoder, look=False)
    assert by_path.look is None and by_path.faces is not None and by_path.faces.faces
    assert by_path.faces.faces == by_bytes.faces.faces
    pil = Image.open(io.BytesIO(path.read_bytes()))
    whole = analyse(pil, {"face"}, encoder=cat.encoder, look=False)  # taken as it is
    assert whole.image.image.size == pil.size and whole.image.scale == 1.0


@pytest.mark.slow
def test_a_fused_query_embeds_one_face_and_finds_what_embedding_all_finds(
    catalog, data_dir, monkeypatch
) -> None:
    import artsim.encoders.faces as E
    from artsim.search import Query

    cat, _src = catalog
    embedded: list[int] = []
    real = E.embed_chips
    monkeypatch.setattr(E, "embed_chips", lambda chips: embedded.append(len(chips)) or real(chips))
    checked = 0
    for path in (str(data_dir / "peopleart" / "JPEGImages" / p) for p in GROUPS):
        name = Path(path).name
        eager = analyse(path, {"global", "face"}, encoder=cat.encoder, look=False)
        assert eager.faces is not None and len(eager.faces.faces) >= 2
        embedded.clear()
        lazy = cat.search(Query(source=path, label=name), aspect="fused", k=5)
        assert embedded == [1]  # the largest face only, of several
        full = cat.search(Query(source=path, label=name, analysis=eager), aspect="fused", k=5)
        assert [(h.id, h.score, h.face_id) for h in lazy] == [
            (h.id, h.score, h.face_id) for h in full
        ]
        # a chip embedded alone gives the vector it gets in a batch
        single = np.stack([real([c])[0] for c in eager.faces.chips])
        np.testing.assert_array_equal(single, eager.faces.identity)
        checked += 1
    assert checked == len(GROUPS)
