"""The analysis stage: everything artsim derives from a painting's pixels, in one place.

`analyse_batch` (indexing: a batch of decoded paintings, detectors in worker processes) and
`analyse` (a query: one image, decoded once) run the same functions, so a stored row and a
query vector come from the same code. Each requested analysis runs once per image:

- "global": the catalog encoder's whole-image vector;
- "face": faces (boxes, landmarks), aligned chips, identity vectors (dlib) and, when asked,
  look vectors (the catalog encoder on a square crop);
- "pose": figures (BlazePose keypoints) and their descriptors. With "face" requested too, the
  pose detector's face proposals come from the same face detection run;
- "local": RootSIFT keypoints at 128 px (`artsim.detectors.keypoints`), for verifying photo
  queries against the catalog.

Coordinates in an `Analysis` are in decoded-image pixels; `original_faces`/`original_poses`
give them in the original image's pixels, which is what the catalog stores.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from PIL import Image

from artsim.errors import ArtsimError
from artsim.images import DEFAULT_MAX_PIXELS, LoadedImage, open_image
from artsim.records import Face, Pose

if TYPE_CHECKING:
    from artsim.detectors.keypoints import LocalFeatures

ANALYSES = ("global", "face", "pose", "local")
FACE_MAX_SIDE = 1024  # small faces in group scenes need the pixels; index and query use the same
POSE_MAX_SIDE = 1024

T = TypeVar("T")

ImageSource = str | Path | bytes | Image.Image


class Mapper(Protocol):
    """Runs a function over images: in this process, or over detector worker processes
    (`artsim.catalog.parallel.DetectorPool`)."""

    def map(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]: ...


class _InProcess:
    def map(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        return [fn(x) for x in items]


@dataclass(frozen=True, slots=True)
class FoundFaces:
    """What face detection and identity embedding derive from one image (before the look
    embedding, which batches over images in the main process).

    Indexing embeds every face's identity at once. A query embeds on demand (`identities`):
    a search uses one face of the query (the largest, or the one named), so the others'
    identity vectors are never computed unless asked for. A chip embedded alone gives the same
    vector as in a batch (dlib's ResNet is batch-invariant; tests/test_analysis.py checks)."""

    faces: list[Face]
    identity: np.ndarray  # (n, 128) unit vectors; NaN rows: not embedded yet (`identities`)
    chips: list[Image.Image]  # aligned 150 px chips (identity input, thumbnails)
    crops: list[Image.Image]  # square crops for the look embedding
    # the pose detector's face proposals from the same detection run (None: not computed)
    pose_proposals: list[Face] | None = None

    def identities(self, rows: Sequence[int] | None = None) -> np.ndarray:
        """The identity vectors of these faces (all when None), embedding those not yet done
        (in one batch; filled in place, so each face is embedded once)."""
        want = list(range(len(self.faces))) if rows is None else [int(r) for r in rows]
        todo = sorted({r for r in want if np.isnan(self.identity[r, 0])})
        if todo:
            from artsim.encoders.faces import embed_chips

            self.identity[todo] = embed_chips([self.chips[r] for r in todo])
        return self.identity[want]


@dataclass(frozen=True, slots=True)
class Figures:
    """Figures found in one image and their pose descriptors (row i describes poses[i])."""

    poses: list[Pose]
    descriptors: np.ndarray  # (n, POSE_DIM)


@dataclass(slots=True)
class Analysis:
    """What was derived from one decoded image; None for what was not asked."""

    image: LoadedImage
    vector: np.ndarray | None = None  # "global": the whole-image vector
    faces: FoundFaces | None = None  # "face"
    look: np.ndarray | None = None  # "face" with look=True: (n_faces, dim), rows as faces
    figures: Figures | None = None  # "pose"
    local: LocalFeatures | None = None  # "local": RootSIFT keypoints (positions relative)

    def original_faces(self) -> list[Face]:
        """The faces in original-image pixels."""
        found = self.faces.faces if self.faces is not None else []
        return [scale_face(f, self.image.scale) for f in found]

    def original_poses(self) -> list[Pose]:
        """The figures in original-image pixels."""
        found = self.figures.poses if self.figures is not None else []
        return [scale_pose(p, self.image.scale) for p in found]


# ---------------------------------------------------------------------------- decoding
def decode_side(aspects: Collection[str], encoder: Any = None) -> int | None:
    """The side an image is decoded at for these analyses: the largest any of them needs.
    Indexing and queries use this one rule, so the same analyses see the same pixels."""
    sides = []
    if "global" in aspects:
        sides.append(encoder.preprocess.resize)
    if "face" in aspects:
        sides.append(FACE_MAX_SIDE)
    if "pose" in aspects:
        sides.append(POSE_MAX_SIDE)
    if "local" in aspects:
        from artsim.detectors.keypoints import LOCAL_DECODE_SIDE

        sides.append(LOCAL_DECODE_SIDE)  # as an index run decodes (catalog.local.LocalIndexer)
    return max(sides) if sides else None


def decode(
    source: ImageSource, max_side: int | None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Decode a query image: a file, bytes, or a PIL image (taken as it is)."""
    if isinstance(source, Image.Image):
        from artsim.images import _to_rgb

        rgb = _to_rgb(source)
        return LoadedImage(rgb, rgb.size)
    return open_image(source, max_side=max_side, max_pixels=max_pixels)


# ---------------------------------------------------------------------------- per image
def scale_face(face: Face, scale: float) -> Face:
    """Face coordinates from decoded-image pixels to original-image pixels (or back with 1/scale)."""
    x, y, w, h = face.box
    return Face(
        box=(x * scale, y * scale, w * scale, h * scale),
        score=face.score,
        detector=face.detector,
        landmarks=tuple((px * scale, py * scale) for px, py in face.landmarks),
    )


def scale_pose(pose: Pose, scale: float) -> Pose:
    x, y, w, h = pose.box
    return Pose(
        keypoints=tuple((px * scale, py * scale) for px, py in pose.keypoints),
        visibility=pose.visibility,
        box=(x * scale, y * scale, w * scale, h * scale),
        score=pose.score,
    )


def find_faces(
    image: Image.Image,
    detector: str = "default",
    with_pose_proposals: bool = False,
    marked: Sequence[Face] | None = None,
    embed: bool = True,
) -> FoundFaces:
    """Detect, align and identity-embed the faces of a decoded RGB image. Indexing (in detector
    worker processes or in-process) and querying run this same function.
    with_pose_proposals: also keep the candidates the pose detector would look for (default
    detector only), so that faces and poses together detect faces once.
    marked: faces given by hand (decoded-image pixels): embedded instead of detected.
    embed=False: leave the identity vectors to `FoundFaces.identities` (a query)."""
    from artsim.detectors.faces import detect_faces, detect_faces_and_candidates, resolve_detector
    from artsim.encoders.faces import align_faces, embed_chips, face_crops

    proposals = None
    if marked is not None:
        faces = list(marked)
    elif with_pose_proposals and resolve_detector(detector) == "ensemble":
        from artsim.detectors.poses import FACE_PROPOSAL_MIN_SCORE

        faces, proposals = detect_faces_and_candidates(image, FACE_PROPOSAL_MIN_SCORE)
    else:
        faces = detect_faces(image, detector)
    if not faces:
        return FoundFaces([], np.zeros((0, 128), np.float32), [], [], proposals)
    chips = [a.chip for a in align_faces(image, faces)]  # aligned once: identity and thumbnail
    identity = embed_chips(chips) if embed else np.full((len(faces), 128), np.nan, np.float32)
    return FoundFaces(faces, identity, chips, face_crops(image, faces), proposals)


def find_figures(image: Image.Image, faces: Sequence[Face] | None = None) -> Figures:
    """Figures in a decoded RGB image and their descriptors.
    faces: the pose detector's face proposals when already found (FoundFaces.pose_proposals,
    the same faces it would find itself); None finds them."""
    from artsim.detectors.poses import detect_poses
    from artsim.encoders.poses import POSE_DIM, pose_descriptor

    poses = detect_poses(image, faces=faces)
    if not poses:
        return Figures([], np.zeros((0, POSE_DIM), np.float32))
    return Figures(poses, np.stack([pose_descriptor(p) for p in poses]).astype(np.float32))


def _find_figures_star(args: tuple[Image.Image, Sequence[Face] | None]) -> Figures:
    return find_figures(*args)


def marked_face(loaded: LoadedImage, box: tuple[float, float, float, float]) -> Face:
    """A face the user marked by hand (box in original-image pixels), in decoded pixels."""
    s = 1.0 / loaded.scale
    x, y, w, h = box
    W, H = loaded.image.size
    x0, y0 = max(0.0, x * s), max(0.0, y * s)
    x1, y1 = min(float(W), (x + w) * s), min(float(H), (y + h) * s)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ArtsimError(
            f"--box {','.join(f'{v:g}' for v in box)} lies (almost) entirely outside the query "
            f"image ({loaded.original_size[0]}x{loaded.original_size[1]})"
        )
    return Face(box=(x0, y0, x1 - x0, y1 - y0), score=1.0, detector="user")


# ---------------------------------------------------------------------------- the stage
def analyse_batch(
    images: Sequence[LoadedImage],
    aspects: Sequence[Collection[str]],
    *,
    encoder: Any = None,
    detector: str = "default",
    look: bool = True,
    pool: Mapper | None = None,
    marked: Sequence[Sequence[Face] | None] | None = None,
    embed_identity: bool = True,
    local_params: tuple[int, int] | None = None,
) -> list[Analysis]:
    """Analyse decoded images; `aspects[i]` names what image i needs (an index run that resumes
    may need faces for one painting and not for the next).

    encoder: the whole-image encoder ("global" and the look vectors). pool: runs the face and
    pose detectors (one image at a time each, so worker processes use the other cores); None
    runs them here. The global and look vectors are embedded in one batch each.
    marked: per image, faces marked by hand (decoded pixels) to embed instead of detecting.
    embed_identity=False: faces' identity vectors on demand (`FoundFaces.identities`).
    local_params: the side and keypoint count of "local" (a catalog's own, `local_params`);
    None: the defaults."""
    if len(aspects) != len(images):
        raise ValueError(f"{len(images)} images but {len(aspects)} aspect sets")
    unknown = {a for want in aspects for a in want} - set(ANALYSES)
    if unknown:
        raise ArtsimError(
            f"unknown analysis {', '.join(sorted(unknown))}; choose from {', '.join(ANALYSES)}"
        )
    out = [Analysis(image=li) for li in images]

    # local features in two threads (OpenCV releases the GIL) while the encoder runs
    todo = [i for i, want in enumerate(aspects) if "local" in want]
    local_pending = None
    if todo:
        from artsim.detectors.keypoints import LOCAL_SIDE, N_FEATURES, extract_local

        side, count = local_params or (LOCAL_SIDE, N_FEATURES)
        local_pool = ThreadPoolExecutor(max_workers=2)
        local_pending = (
            todo,
            [
                local_pool.submit(extract_local, images[i].image, max_side=side, n_features=count)
                for i in todo
            ],
        )
        local_pool.shutdown(wait=False)

    todo = [i for i, want in enumerate(aspects) if "global" in want]
    pending = None
    if todo:
        batch = [images[i].image for i in todo]
        detecting = any(want & {"face", "pose"} for want in map(set, aspects))
        # torch's thread count is one per process, and MTCNN sets it to 1 while it runs: an
        # encoder on PyTorch's CPU threads runs beside detectors in this process only for a
        # query (as before); ONNX Runtime, OpenVINO and CUDA keep their own threads
        own_threads = (
            getattr(encoder, "runner", None) is not None
            or getattr(encoder, "device", "cpu") != "cpu"
        )
        detectors_apart = getattr(pool, "workers", 1) > 1  # DetectorPool's processes
        if detecting and (pool is None or own_threads or detectors_apart):
            # the encoder runs beside the face and figure detectors (in this thread or in the
            # pool's processes; torch, the runtimes and the detectors release the GIL), so no
            # core waits for the other stage; same calls, same vectors
            executor = ThreadPoolExecutor(max_workers=1)
            pending = executor.submit(encoder.embed_images, batch, max(1, len(todo)))
            executor.shutdown(wait=False)
        else:
            _set_vectors(out, todo, encoder.embed_images(batch, batch_size=max(1, len(todo))))
    pool = pool or _InProcess()

    todo = [i for i, want in enumerate(aspects) if "face" in want]
    if todo:
        found = pool.map(
            _find_faces_star,
            [
                (
                    images[i].image,
                    detector,
                    "pose" in aspects[i],
                    marked[i] if marked is not None else None,
                    embed_identity,
                )
                for i in todo
            ],
        )
        for i, f in zip(todo, found, strict=True):
            out[i].faces = f
        if look:  # one batched look embedding for all the faces of the batch
            crops = [c for f in found for c in f.crops]
            vecs = encoder.embed_images(crops) if crops else np.zeros((0, encoder.dim), np.float32)
            start = 0
            for i, f in zip(todo, found, strict=True):
                out[i].look = vecs[start : start + len(f.faces)]
                start += len(f.faces)

    todo = [i for i, want in enumerate(aspects) if "pose" in want]
    if todo:
        figures = pool.map(
            _find_figures_star,
            [
                (images[i].image, faces.pose_proposals if (faces := out[i].faces) else None)
                for i in todo
            ],
        )
        for i, fig in zip(todo, figures, strict=True):
            out[i].figures = fig
    if pending is not None:
        _set_vectors(
            out, [i for i, want in enumerate(aspects) if "global" in want], pending.result()
        )
    if local_pending is not None:
        for i, fut in zip(*local_pending, strict=True):
            out[i].local = fut.result()
    return out


def _set_vectors(out: list[Analysis], todo: list[int], vecs: np.ndarray) -> None:
    for i, v in zip(todo, vecs, strict=True):
        out[i].vector = v


def _find_faces_star(
    args: tuple[Image.Image, str, bool, Sequence[Face] | None, bool],
) -> FoundFaces:
    return find_faces(*args)


def analyse(
    image: LoadedImage | ImageSource,
    aspects: Collection[str],
    *,
    encoder: Any = None,
    detector: str = "default",
    look: bool = True,
    face_box: tuple[float, float, float, float] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    embed_identity: bool = True,
) -> Analysis:
    """Analyse one image (a query): decoded once, at the side the analyses need, then each
    analysis run once. face_box: a face marked by hand (original pixels), embedded instead of
    detecting faces. embed_identity=False: the faces' identity vectors are embedded when asked
    for (`FoundFaces.identities`): a search needs only the face it searches with."""
    loaded = (
        image
        if isinstance(image, LoadedImage)
        else decode(image, decode_side(aspects, encoder), max_pixels)
    )
    marked = [marked_face(loaded, face_box)] if face_box is not None else None
    return analyse_batch(
        [loaded],
        [aspects],
        encoder=encoder,
        detector=detector,
        look=look,
        marked=[marked] if marked is not None else None,
        embed_identity=embed_identity,
    )[0]


__all__ = [
    "ANALYSES",
    "FACE_MAX_SIDE",
    "POSE_MAX_SIDE",
    "Analysis",
    "Figures",
    "FoundFaces",
    "Mapper",
    "analyse",
    "analyse_batch",
    "decode",
    "decode_side",
    "find_faces",
    "find_figures",
    "marked_face",
    "scale_face",
    "scale_pose",
]
