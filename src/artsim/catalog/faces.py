"""The face aspect: detect faces, keep their boxes and landmarks, a chip thumbnail, and two
embeddings per face: identity (dlib ResNet, 128-d) and look (the catalog encoder on the crop)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from artsim.catalog.aspects import AspectRow
from artsim.catalog.parallel import DetectorPool
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


@dataclass(frozen=True, slots=True)
class FoundFaces:
    """What the face aspect derives from one image before the look embedding."""

    faces: list[Face]
    identity: np.ndarray  # (n, 128) unit vectors
    chips: list[Image.Image]  # aligned 150 px chips (identity input, thumbnails)
    crops: list[Image.Image]  # square crops for the look embedding
    # the pose detector's face proposals from the same detection run (None: not computed)
    pose_proposals: list[Face] | None = None


def find_faces(
    image: Image.Image, detector: str = "default", with_pose_proposals: bool = False
) -> FoundFaces:
    """Detect, align and identity-embed the faces of a decoded RGB image. Indexing (in detector
    worker processes or in-process) and querying run this same function.
    with_pose_proposals: also keep the candidates the pose detector would look for (default
    detector only), so that indexing faces and poses together detects faces once."""
    from artsim.detectors.faces import detect_faces, detect_faces_and_candidates, resolve_detector
    from artsim.encoders.faces import align_faces, embed_chips, face_crops

    proposals = None
    if with_pose_proposals and resolve_detector(detector) == "ensemble":
        from artsim.detectors.poses import FACE_PROPOSAL_MIN_SCORE

        faces, proposals = detect_faces_and_candidates(image, FACE_PROPOSAL_MIN_SCORE)
    else:
        faces = detect_faces(image, detector)
    if not faces:
        return FoundFaces([], np.zeros((0, 128), np.float32), [], [], proposals)
    chips = [a.chip for a in align_faces(image, faces)]  # aligned once: identity and thumbnail
    return FoundFaces(faces, embed_chips(chips), chips, face_crops(image, faces), proposals)


def analyse_faces(
    image: Image.Image, encoder, detector: str = "default"
) -> tuple[list[Face], np.ndarray, np.ndarray, list]:
    """Faces in a decoded RGB image with identity and look vectors and aligned chips.
    The same functions serve indexing and querying, so both see identical faces."""
    found = find_faces(image, detector)
    look = (
        encoder.embed_images(found.crops) if found.crops else np.zeros((0, encoder.dim), np.float32)
    )
    return found.faces, found.identity, look, found.chips


class FaceIndexer:
    aspect = "face"
    max_side = FACE_MAX_SIDE

    def __init__(
        self, catalog: Catalog, detector: str = "default", pool: DetectorPool | None = None
    ) -> None:
        self.catalog = catalog
        self.pool = pool or DetectorPool(1)
        self.encoder = catalog.encoder
        self.detector = detector
        self.model_key = IDENTITY_MODEL
        self.vector_dims = {"identity": 128, "look": self.encoder.dim}
        self.chip_dir = catalog.path / "cache" / "faces"
        # set by the catalog when the pose aspect is indexed in the same run
        self.keep_pose_proposals = False
        self.pose_proposals: dict[str, list[Face]] = {}  # item id -> proposals, last batch

    def describe(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "identity": IDENTITY_MODEL,
            "look": self.encoder.name,
            "max_side": self.max_side,
        }

    def process(self, batch: list[tuple[SourceItem, LoadedImage]]) -> list[AspectRow]:
        found = self.pool.map(
            functools.partial(
                find_faces, detector=self.detector, with_pose_proposals=self.keep_pose_proposals
            ),
            [li.image for _, li in batch],
        )
        self.pose_proposals = {
            item.id: f.pose_proposals
            for (item, _), f in zip(batch, found, strict=True)
            if f.pose_proposals is not None
        }
        # one batched look embedding for all the faces of the batch
        crops = [c for f in found for c in f.crops]
        look = self.encoder.embed_images(crops) if crops else None
        rows: list[AspectRow] = []
        start = 0
        for (item, loaded), f in zip(batch, found, strict=True):
            if not f.faces:
                rows.append(AspectRow(item.id, None))
                continue
            for i, face in enumerate(f.faces):
                row_id = f"{item.id}#face{i}"
                orig = scale_face(face, loaded.scale)
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
                        {"identity": f.identity[i], "look": look[start + i]},
                    )
                )
            start += len(f.faces)
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
