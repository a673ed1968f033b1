"""The face aspect: detect faces, keep their boxes and landmarks, a chip thumbnail, and two
embeddings per face: identity (dlib ResNet, 128-d) and look (the catalog encoder on the crop)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from artsim.catalog.aspects import AspectRow
from artsim.images import LoadedImage
from artsim.records import Face, SourceItem

if TYPE_CHECKING:
    from artsim.catalog import Catalog

FACE_MAX_SIDE = 1024  # small faces in group scenes need the pixels; index and query use the same
IDENTITY_MODEL = "dlib-resnet-v1"


def scale_face(face: Face, scale: float) -> Face:
    """Face coordinates from decoded-image pixels to original-image pixels (or back with 1/scale)."""
    x, y, w, h = face.box
    return Face(
        box=(x * scale, y * scale, w * scale, h * scale),
        score=face.score,
        detector=face.detector,
        landmarks=tuple((px * scale, py * scale) for px, py in face.landmarks),
    )


def analyse_faces(
    image, encoder, detector: str = "default"
) -> tuple[list[Face], np.ndarray, np.ndarray, list]:
    """Faces in a decoded RGB image with identity and look vectors and aligned chips.
    The same function serves indexing and querying, so both see identical faces."""
    from artsim.detectors.faces import detect_faces
    from artsim.encoders.faces import align_faces, embed_chips, face_crops

    faces = detect_faces(image, detector)
    if not faces:
        return [], np.zeros((0, 128), np.float32), np.zeros((0, encoder.dim), np.float32), []
    chips = [
        a.chip for a in align_faces(image, faces)
    ]  # aligned once, used for identity and thumbnail
    identity = embed_chips(chips)
    look = encoder.embed_images(face_crops(image, faces))
    return faces, identity, look, chips


class FaceIndexer:
    aspect = "face"
    max_side = FACE_MAX_SIDE

    def __init__(self, catalog: Catalog, detector: str = "default") -> None:
        self.catalog = catalog
        self.encoder = catalog.encoder
        self.detector = detector
        self.model_key = IDENTITY_MODEL
        self.vector_dims = {"identity": 128, "look": self.encoder.dim}
        self.chip_dir = catalog.path / "cache" / "faces"

    def describe(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "identity": IDENTITY_MODEL,
            "look": self.encoder.name,
            "max_side": self.max_side,
        }

    def process(self, batch: list[tuple[SourceItem, LoadedImage]]) -> list[AspectRow]:
        rows: list[AspectRow] = []
        for item, loaded in batch:
            faces, identity, look, chips = analyse_faces(loaded.image, self.encoder, self.detector)
            if not faces:
                rows.append(AspectRow(item.id, None))
                continue
            for i, face in enumerate(faces):
                row_id = f"{item.id}#face{i}"
                orig = scale_face(face, loaded.scale)
                chip_path = self._save_chip(row_id, chips[i]) if i < len(chips) else None
                rows.append(
                    AspectRow(
                        item.id,
                        row_id,
                        {
                            "box": [round(v, 1) for v in orig.box],
                            "landmarks": [[round(x, 1), round(y, 1)] for x, y in orig.landmarks],
                            "score": round(float(face.score), 4),
                            "detector": face.detector,
                            "chip": chip_path,
                        },
                        {"identity": identity[i], "look": look[i]},
                    )
                )
        return rows

    def _save_chip(self, row_id: str, chip) -> str:
        from artsim.catalog.store import atomic_write_bytes

        name = hashlib.sha1(row_id.encode()).hexdigest()[:20] + ".jpg"
        path = self.chip_dir / name[:2] / name
        import io

        buf = io.BytesIO()
        chip.convert("RGB").save(buf, "JPEG", quality=88)
        atomic_write_bytes(path, buf.getvalue())
        return str(path.relative_to(self.catalog.path))
