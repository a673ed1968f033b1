"""The face aspect: faces with their boxes and landmarks, a chip thumbnail, and two
embeddings per face: identity (dlib ResNet, 128-d) and look (the catalog encoder on the crop).
The faces are found by the analysis stage (`artsim.analysis`), which queries share."""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from artsim.analysis import (
    FACE_MAX_SIDE,
    Analysis,
    FoundFaces,
    analyse,
    find_faces,
    scale_face,
)
from artsim.catalog.aspects import AspectRow
from artsim.records import Face, SourceItem

if TYPE_CHECKING:
    from artsim.catalog import Catalog
    from artsim.encoders.base import Encoder

IDENTITY_MODEL = "dlib-resnet-v1"

# FACE_MAX_SIDE, FoundFaces, find_faces and scale_face live in artsim.analysis; their names
# stay importable from here
__all__ = [
    "FACE_MAX_SIDE",
    "IDENTITY_MODEL",
    "FaceIndexer",
    "FoundFaces",
    "analyse_faces",
    "find_faces",
    "scale_face",
]


def analyse_faces(
    image: Image.Image, encoder: Encoder, detector: str = "default"
) -> tuple[list[Face], np.ndarray, np.ndarray, list]:
    """Faces in a decoded RGB image with identity and look vectors and aligned chips
    (the face part of `artsim.analysis.analyse`)."""
    from artsim.images import LoadedImage

    a = analyse(LoadedImage(image, image.size), {"face"}, encoder=encoder, detector=detector)
    assert a.faces is not None and a.look is not None
    return a.faces.faces, a.faces.identity, a.look, a.faces.chips


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

    def rows(self, item: SourceItem, analysis: Analysis) -> list[AspectRow]:
        f, look = analysis.faces, analysis.look
        assert f is not None and look is not None, "analysed without 'face' or its look vectors"
        if not f.faces:
            return [AspectRow(item.id, None)]
        rows = []
        for i, (face, orig) in enumerate(zip(f.faces, analysis.original_faces(), strict=True)):
            row_id = f"{item.id}#face{i}"
            rows.append(
                AspectRow(
                    item.id,
                    row_id,
                    {
                        "box": [round(v, 1) for v in orig.box],
                        "landmarks": [[round(x, 1), round(y, 1)] for x, y in orig.landmarks],
                        "score": round(float(face.score), 4),
                        "detector": face.detector,
                        "chip": self._save_chip(row_id, f.chips[i]),
                    },
                    {"identity": f.identity[i], "look": look[i]},
                )
            )
        return rows

    def _save_chip(self, row_id: str, chip) -> str:
        from artsim.catalog.store import atomic_write_bytes

        name = hashlib.sha1(row_id.encode()).hexdigest()[:20] + ".jpg"
        path = self.chip_dir / name[:2] / name
        buf = io.BytesIO()
        chip.convert("RGB").save(buf, "JPEG", quality=88)
        atomic_write_bytes(path, buf.getvalue())
        return str(path.relative_to(self.catalog.path))
