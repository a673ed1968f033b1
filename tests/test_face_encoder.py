"""Face alignment, identity embeddings and face crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from artsim.detectors.faces import detect_faces
from artsim.encoders.faces import (
    CHIP_SIZE,
    EMBEDDING_DIM,
    align_faces,
    dlib_box,
    face_crops,
    identity_embeddings,
    landmarks68,
)
from artsim.images import load_rgb
from artsim.records import Face


def nga(data_dir: Path, objectid: str) -> Path:
    return data_dir / "nga" / "images" / f"{objectid}.jpg"


def main_face(image: Image.Image) -> list[Face]:
    faces = detect_faces(image)
    assert faces
    return faces[:1]


# --------------------------------------------------------------------------- no models needed


def test_face_crops_are_square_with_margin_and_stay_inside() -> None:
    image = Image.fromarray(
        np.arange(200 * 300 * 3, dtype=np.uint32).reshape(200, 300, 3).astype(np.uint8)
    )
    faces = [
        Face(box=(100, 50, 40, 60), score=1.0, detector="ensemble"),
        Face(box=(0, 0, 30, 30), score=1.0, detector="ensemble"),  # at the corner: shifted inward
        Face(box=(10, 10, 190, 180), score=1.0, detector="ensemble"),  # larger than the image
    ]
    crops = face_crops(image, faces, margin=0.25)
    assert [c.size for c in crops] == [(90, 90), (45, 45), (285, 285)]
    assert all(c.mode == "RGB" for c in crops)
    # the corner face's crop is the image's own top-left square, not black padding
    np.testing.assert_array_equal(np.asarray(crops[1]), np.asarray(image)[:45, :45])
    assert face_crops(image, []) == []
    assert face_crops(image.convert("L"), faces[:1])[0].mode == "RGB"


def test_dlib_box_mapping() -> None:
    face = Face(box=(10, 20, 100, 100), score=1.0, detector="dlib-cnn")
    assert dlib_box(face) == (10, 20, 110, 120)
    ens = dlib_box(Face(box=(10, 20, 100, 100), score=1.0, detector="ensemble"))
    assert ens[2] - ens[0] > 100 > ens[3] - ens[1]  # O-Net boxes are made wider and shorter


def test_no_faces_gives_empty_results() -> None:
    image = Image.new("RGB", (64, 64))
    assert align_faces(image, []) == []
    empty = identity_embeddings(image, [])
    assert empty.shape == (0, EMBEDDING_DIM) and empty.dtype == np.float32
    assert landmarks68(image, []) == []


# --------------------------------------------------------------------------- real models


def test_alignment_chip_and_landmarks(data_dir: Path) -> None:
    image = load_rgb(nga(data_dir, "1128"))
    faces = main_face(image)
    (aligned,) = align_faces(image, faces)
    assert aligned.chip.size == (CHIP_SIZE, CHIP_SIZE) and aligned.chip.mode == "RGB"
    assert len(aligned.landmarks5) == 5
    x, y, w, h = faces[0].box
    for px, py in aligned.landmarks5:
        assert x - 0.2 * w <= px <= x + 1.2 * w and y - 0.2 * h <= py <= y + 1.2 * h
    # dlib order: eye on the image's right (outer, inner), then the left eye, then the nose
    (r_out, _), (r_in, _), (l_out, _), (l_in, _), (nose_x, _) = aligned.landmarks5
    assert l_out < l_in < nose_x < r_in < r_out
    points68 = landmarks68(image, faces)
    assert len(points68) == 1 and len(points68[0]) == 68


def test_identity_embeddings_are_unit_128d_float32(data_dir: Path) -> None:
    image = load_rgb(nga(data_dir, "46191"))
    faces = detect_faces(image)
    vecs = identity_embeddings(image, faces)
    assert vecs.shape == (len(faces), EMBEDDING_DIM) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_query_time_equals_index_time(data_dir: Path) -> None:
    path = nga(data_dir, "34104")
    a = load_rgb(path)
    with Image.open(path) as raw:
        b = raw.convert("RGB")
    ea = identity_embeddings(a, detect_faces(a))
    eb = identity_embeddings(b, detect_faces(b))
    np.testing.assert_array_equal(ea, eb)
    np.testing.assert_array_equal(ea, identity_embeddings(a, detect_faces(a)))


def test_same_sitter_closer_than_another_sitter(data_dir: Path) -> None:
    image = load_rgb(nga(data_dir, "1128"))
    base = identity_embeddings(image, main_face(image))[0]
    flipped = ImageOps.mirror(image)
    small = load_rgb(nga(data_dir, "1128"), max_side=300)  # decoded at a quarter of the size
    same = [identity_embeddings(im, main_face(im))[0] for im in (flipped, small)]
    others = []
    for objectid in ("323", "34104", "42939"):
        other = load_rgb(nga(data_dir, objectid))
        others.append(identity_embeddings(other, main_face(other))[0])
    worst_same = min(float(base @ v) for v in same)
    best_other = max(float(base @ v) for v in others)
    assert worst_same > best_other, (worst_same, best_other)
    assert worst_same > 0.95


def test_grayscale_face_embeds(data_dir: Path) -> None:
    gray = load_rgb(nga(data_dir, "1128")).convert("L")
    vec = identity_embeddings(gray, main_face(gray))
    colour = load_rgb(nga(data_dir, "1128"))
    ref = identity_embeddings(colour, main_face(colour))
    assert vec.shape == (1, EMBEDDING_DIM)
    assert float(vec[0] @ ref[0]) > 0.9


@pytest.mark.slow
def test_face_crops_feed_the_global_encoder(data_dir: Path) -> None:
    from artsim.encoders import load_encoder

    image = load_rgb(nga(data_dir, "1128"))
    crops = face_crops(image, main_face(image))
    encoder = load_encoder("efficientnet-lite2")
    vecs = encoder.embed_images(crops)
    assert vecs.shape == (1, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
