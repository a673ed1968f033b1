"""Face alignment and identity embeddings (dlib), and face crops for a "looks alike" embedding.

- `align_faces`: dlib's 5-point shape predictor fitted inside each detected box, then
  `dlib.get_face_chip` rotates/scales the face so the eyes and nose sit at fixed places in a
  150x150 chip (padding 0.25, what the descriptor network was trained on).
- `identity_embeddings`: dlib's ResNet-29 face descriptor (128-d, trained with a metric loss on
  ~3M photographs of faces; its weights run in PyTorch, `artsim.encoders.dlib_resnet`) on those
  chips, L2-normalised float32: cosine similarity between two
  faces says how likely they show the same person.
- `face_crops`: square crops around each face with a margin, to feed a whole-image encoder
  (artsim.encoders.load_encoder(...).embed_images(crops)): similar-looking faces, not identity.

The shape predictor was trained on boxes from dlib's own detectors; boxes from other detectors
are first mapped to that convention (BOX_TO_DLIB, measured on sample portraits, docs/faces.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from artsim.detectors.faces import _import_dlib, dlib_model_path
from artsim.records import Face

CHIP_SIZE = 150
CHIP_PADDING = 0.25
EMBEDDING_DIM = 128

# Map a detector's box to a dlib-detector-like box: (dx, dy, sw, sh) with
# centre += (dx * w, dy * h), size *= (sw, sh). Medians over 23 faces found by both the detector
# and dlib's CNN detector on 40 random Baroque portraits (docs/faces.md); |dx| < 0.04 set to 0.
BOX_TO_DLIB: dict[str, tuple[float, float, float, float]] = {
    "dlib-cnn": (0.0, 0.0, 1.0, 1.0),
    "ensemble": (0.0, 0.0, 1.09, 0.90),  # O-Net boxes are taller (forehead) and narrower
    "mtcnn": (0.0, 0.0, 1.10, 0.92),
    "blazeface": (0.0, -0.115, 1.04, 1.04),  # BlazeFace boxes sit lower (chin) than dlib's
}

# dlib 5-point model: outer and inner corner of the eye on the image's right, outer and inner
# corner of the eye on the image's left, base of the nose.
DLIB_FIVE_POINTS: tuple[str, ...] = (
    "right_eye_outer",
    "right_eye_inner",
    "left_eye_outer",
    "left_eye_inner",
    "nose_base",
)


@dataclass(frozen=True, slots=True)
class AlignedFace:
    """A face rotated and scaled to dlib's canonical 150x150 chip, and the landmarks used."""

    chip: Image.Image
    landmarks5: tuple[tuple[float, float], ...]  # image pixels, DLIB_FIVE_POINTS order
    box: tuple[float, float, float, float]  # the (x, y, w, h) box the landmarks were fitted in


@functools.lru_cache(maxsize=1)
def _shape_predictor() -> Any:
    dlib = _import_dlib()
    return dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))


@functools.lru_cache(maxsize=1)
def _shape_predictor_68() -> Any:
    dlib = _import_dlib()
    return dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))


@functools.lru_cache(maxsize=1)
def _face_recognition_model() -> Any:
    """dlib's ResNet descriptor, run in PyTorch (artsim.encoders.dlib_resnet: ~20x faster than
    the BLAS-less dlib wheel; dlib's own numbers to within 1e-5, 5e-7 measured)."""
    from artsim.encoders.dlib_resnet import load_model

    return load_model(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"))


def _rgb_array(image: Image.Image) -> np.ndarray:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def dlib_box(face: Face) -> tuple[float, float, float, float]:
    """The face's box mapped to dlib's detector convention, as (x0, y0, x1, y1)."""
    dx, dy, sw, sh = BOX_TO_DLIB.get(face.detector, (0.0, 0.0, 1.0, 1.0))
    x, y, w, h = face.box
    cx, cy = x + w / 2 + dx * w, y + h / 2 + dy * h
    nw, nh = w * sw, h * sh
    return cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2


def _shapes(arr: np.ndarray, faces: list[Face], predictor: Any) -> list[Any]:
    dlib = _import_dlib()
    out = []
    for face in faces:
        x0, y0, x1, y1 = dlib_box(face)
        rect = dlib.rectangle(round(x0), round(y0), round(x1) - 1, round(y1) - 1)
        out.append(predictor(arr, rect))
    return out


def landmarks68(image: Image.Image, faces: list[Face]) -> list[tuple[tuple[float, float], ...]]:
    """dlib's 68 iBUG landmarks for each face, in image pixels (for drawing or pose)."""
    if not faces:
        return []
    arr = _rgb_array(image)
    return [
        tuple((float(p.x), float(p.y)) for p in shape.parts())
        for shape in _shapes(arr, faces, _shape_predictor_68())
    ]


def align_faces(image: Image.Image, faces: list[Face]) -> list[AlignedFace]:
    """Fit dlib's 5-point landmarks in each face box and cut the aligned 150 px chip."""
    if not faces:
        return []
    dlib = _import_dlib()
    arr = _rgb_array(image)
    out = []
    for face, shape in zip(faces, _shapes(arr, faces, _shape_predictor()), strict=True):
        chip = dlib.get_face_chip(arr, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        points = tuple((float(p.x), float(p.y)) for p in shape.parts())
        out.append(
            AlignedFace(chip=Image.fromarray(np.asarray(chip)), landmarks5=points, box=face.box)
        )
    return out


def embed_chips(chips: list[Image.Image]) -> np.ndarray:
    """dlib descriptors of aligned 150x150 chips -> (n, 128) L2-normalised float32."""
    if not chips:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    from artsim.encoders.dlib_resnet import descriptors

    arrays = np.stack([_rgb_array(c.resize((CHIP_SIZE, CHIP_SIZE))) for c in chips])
    mat = descriptors(_face_recognition_model(), arrays).astype(np.float64)
    mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
    return mat.astype(np.float32)


def identity_embeddings(image: Image.Image, faces: list[Face]) -> np.ndarray:
    """One 128-d unit vector per face (same order as `faces`); cosine ~ same person."""
    return embed_chips([a.chip for a in align_faces(image, faces)])


def face_crops(image: Image.Image, faces: list[Face], margin: float = 0.25) -> list[Image.Image]:
    """Square RGB crops centred on each face, side = longest box side * (1 + 2 * margin).

    The square is shifted to stay inside the image where it fits; otherwise the outside is black.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    crops = []
    for face in faces:
        x, y, w, h = face.box
        side = max(1, round(max(w, h) * (1 + 2 * margin)))
        cx, cy = x + w / 2, y + h / 2
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        if side <= width:
            x0 = min(max(x0, 0), width - side)
        if side <= height:
            y0 = min(max(y0, 0), height - side)
        crops.append(rgb.crop((x0, y0, x0 + side, y0 + side)))
    return crops


__all__ = [
    "BOX_TO_DLIB",
    "CHIP_PADDING",
    "CHIP_SIZE",
    "DLIB_FIVE_POINTS",
    "EMBEDDING_DIM",
    "AlignedFace",
    "align_faces",
    "dlib_box",
    "embed_chips",
    "face_crops",
    "identity_embeddings",
    "landmarks68",
]
