"""Face detection on paintings: BlazeFace, MTCNN and dlib's CNN behind one function.

`detect_faces(image, detector)` returns `artsim.records.Face` records with boxes in the pixels of
the image passed in. Detectors (see docs/faces.md for the measurements behind the default):

- ``blazeface``: MediaPipe BlazeFace, full-range (model_selection=1) and short-range
  (model_selection=0) models, over the whole image and over overlapping tiles, merged by NMS.
  BlazeFace shrinks its input to 192 (128) px, so tiles are what lets it see small faces.
- ``mtcnn``: facenet-pytorch's MTCNN (P/R/O-Net cascade), on the image upscaled to at least
  448 px (small paintings) so that its 20 px minimum face is about 10 px in the original.
- ``dlib-cnn``: dlib's MMOD CNN face detector, upscaled the same way. Accurate but slow on CPU
  (seconds per image), so large images are shrunk to 800 px before it runs.
- ``ensemble`` (the default): BlazeFace proposals (both ranges, tiles) re-scored and re-boxed by
  MTCNN's O-Net; score = mean of the BlazeFace score and the O-Net face probability. O-Net rejects
  most of BlazeFace's false faces on landscapes at a few milliseconds per proposal, and adds the
  five MTCNN landmarks. Where that finds no face, the full MTCNN cascade runs as a fallback
  (its faces kept at O-Net probability >= ``MTCNN_FALLBACK_MIN``): BlazeFace proposes nothing
  at all on most of the portraits it misses (woodblock prints, profiles), MTCNN finds some of
  them and is the most precise detector measured; running it only then costs far less than
  running it on every image.

Landmarks (`Face.landmarks`), "left"/"right" meaning the image's left and right:
- ensemble, mtcnn: 5 points ``FIVE_POINTS`` = left eye, right eye, nose tip, left mouth corner,
  right mouth corner (the MTCNN/ArcFace order);
- blazeface: its 6 keypoints ``BLAZEFACE_POINTS`` = left eye, right eye, nose tip, mouth centre,
  left ear tragion, right ear tragion (the first three match FIVE_POINTS);
- dlib-cnn: none (align with `artsim.encoders.faces.align_faces`, which fits dlib's landmarks).

Every detector gets the same RGB uint8 pixels (MediaPipe, dlib and facenet-pytorch all take RGB:
nothing here converts to BGR). Models load lazily, once per process; results are deterministic.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artsim.errors import ArtsimError, ModelUnavailableError
from artsim.records import Face
from artsim.workers import native_stderr_silenced

DETECTORS: tuple[str, ...] = ("ensemble", "blazeface", "mtcnn", "dlib-cnn")
DEFAULT_DETECTOR = "ensemble"

FIVE_POINTS: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
BLAZEFACE_POINTS: tuple[str, ...] = (
    "left_eye",
    "right_eye",
    "nose",
    "mouth_centre",
    "left_ear",
    "right_ear",
)
LANDMARKS: dict[str, tuple[str, ...]] = {
    "ensemble": FIVE_POINTS,
    "mtcnn": FIVE_POINTS,
    "blazeface": BLAZEFACE_POINTS,
    "dlib-cnn": (),
}

# Score thresholds chosen on the sample paintings (benchmarks/eval_faces.py, docs/faces.md):
# the lowest that keeps false faces on landscapes/still lifes/cityscapes near or below 0.2.
MIN_SCORES: dict[str, float] = {
    "ensemble": 0.375,
    "blazeface": 0.6,
    "mtcnn": 0.9,
    "dlib-cnn": 0.3,
}

MTCNN_FALLBACK_MIN = 0.9  # MTCNN's own default final threshold

WORK_MAX_SIDE = 1600  # larger images are shrunk first: faces under ~1/100 of the side are noise
BLAZE_VIEW_MAX_SIDE = 384  # BlazeFace works at 192 px; pre-shrinking views only saves time
UPSCALE_TO = 448  # MTCNN/dlib see small paintings at least this large (224 px WikiArt -> 2x)
DLIB_MAX_SIDE = 800  # dlib's CNN costs ~seconds per megapixel on CPU
MTCNN_MAX_SIDE = 1024
# The fallback's pyramid on a 1024 px painting cost ~0.28 s; at 640 px its smallest face is
# 32 px of a 1024 px image. It runs where BlazeFace found nothing (often no face at all); small
# faces in large group scenes are BlazeFace's tiles' job. Eval images (<= 500 px) are unaffected.
MTCNN_FALLBACK_MAX_SIDE = 640
MTCNN_MIN_FACE = 20  # px at the working scale; also the smallest image MTCNN can run on
DLIB_MIN_SIDE = 20  # dlib raises "filter windows must be small enough" below this

# A raw detection in the pixels of the array a runner was given:
# (x0, y0, x1, y1), score, landmarks as (k, 2) or None.
_Det = tuple[tuple[float, float, float, float], float, np.ndarray | None]


def _box(values: Iterable[float], scale: float = 1.0) -> tuple[float, float, float, float]:
    """A detector's (x0, y0, x1, y1) as floats, divided by the scale its input was resized by."""
    x0, y0, x1, y1 = (float(v) / scale for v in values)
    return x0, y0, x1, y1


# --------------------------------------------------------------------------- model loading


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def dlib_model_path(filename: str) -> Path:
    """Path of a model file shipped by face_recognition_models (without importing pkg_resources)."""
    root = _package_dir("face_recognition_models")
    if root is None:
        raise ModelUnavailableError(
            "face detection/recognition: package 'face_recognition_models' is not installed; "
            "run: pip install face-recognition-models"
        )
    path = root / "models" / filename
    if not path.is_file():
        raise ModelUnavailableError(
            f"{path}: dlib model file missing; reinstall face-recognition-models"
        )
    return path


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise ModelUnavailableError("dlib is not installed; run: pip install dlib-bin") from exc
    return dlib


@functools.lru_cache(maxsize=2)
def _blazeface(model_selection: int) -> tuple[Any, threading.Lock]:
    """MediaPipe FaceDetection graph (0 = short range, 1 = full range) and a lock: graphs are stateful."""
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise ModelUnavailableError("blazeface: mediapipe is not installed") from exc
    # TFLite and absl log to fd 2 while the graph opens its calculators (asynchronously, done
    # by the end of the first run): build it and run it once on a blank image with fd 2 quiet
    with native_stderr_silenced():
        # 0.5 is MediaPipe's own floor; our per-detector thresholds are applied afterwards
        graph = mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=0.5
        )
        graph.process(np.zeros((64, 64, 3), np.uint8))
    return graph, threading.Lock()


def _import_mtcnn_class() -> type:
    try:
        from facenet_pytorch import MTCNN

        return MTCNN
    except ImportError as exc:
        root = _package_dir("facenet_pytorch")
        if root is None:
            raise ModelUnavailableError(
                "mtcnn: facenet-pytorch is not installed; run: pip install facenet-pytorch==2.5.3"
            ) from exc
    # facenet_pytorch/__init__ also imports InceptionResnetV1, which needs `requests` for weight
    # downloads we never do; import the MTCNN module through a bare package object instead.
    if "facenet_pytorch" not in sys.modules or not hasattr(sys.modules["facenet_pytorch"], "MTCNN"):
        pkg = types.ModuleType("facenet_pytorch")
        pkg.__path__ = [str(root)]
        sys.modules["facenet_pytorch"] = pkg
    from facenet_pytorch.models.mtcnn import MTCNN

    return MTCNN


@functools.lru_cache(maxsize=1)
def _mtcnn() -> Any:
    """facenet-pytorch MTCNN on CPU; weights ship inside the package."""
    mtcnn_cls = _import_mtcnn_class()
    # permissive stage thresholds: the final O-Net probability is thresholded by MIN_SCORES
    model = mtcnn_cls(
        keep_all=True,
        device="cpu",
        min_face_size=20,
        thresholds=[0.5, 0.6, 0.6],
        post_process=False,
    )
    # channels-last weights make every conv and max-pool output channels-last too, where
    # torch's CPU max-pool is ~3x faster: MTCNN's fallback on 224 px WikiArt paintings
    # 207 -> 151 CPU-ms an image, boxes equal within 0.05 px (docs/benchmarks.md)
    import torch

    for net in (model.pnet, model.rnet, model.onet):
        net.to(memory_format=torch.channels_last)
    return model.eval()


@functools.lru_cache(maxsize=1)
def _dlib_cnn() -> Any:
    dlib = _import_dlib()
    return dlib.cnn_face_detection_model_v1(str(dlib_model_path("mmod_human_face_detector.dat")))


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """MTCNN's nets are tiny: on a busy 2-core machine one thread is 10x faster than two
    (measured: O-Net 6 ms vs 65 ms per batch). Also makes results independent of thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- geometry helpers


def _as_rgb(image: Image.Image) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise ArtsimError(f"detect_faces: expected a PIL image, got {type(image).__name__}")
    return image if image.mode == "RGB" else image.convert("RGB")


def _resize(image: Image.Image, scale: float) -> Image.Image:
    if scale == 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    method = Image.Resampling.BILINEAR if scale < 1 else Image.Resampling.BICUBIC
    return image.resize(size, method, reducing_gap=2.0 if scale < 1 else None)


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / (tile * (1 - overlap))) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tiles(
    width: int, height: int, frac: float, overlap: float = 0.25
) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x0, y0, x1, y1) of about `frac` of each side, covering the image."""
    tw, th = max(1, round(width * frac)), max(1, round(height * frac))
    return [
        (x, y, x + tw, y + th)
        for y in _starts(height, th, overlap)
        for x in _starts(width, tw, overlap)
    ]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.3, contain: float = 0.7) -> list[int]:
    """Greedy NMS on (n, 4) x0,y0,x1,y1 boxes; also drops a box mostly inside a better one.

    Ties are broken by index, so the result depends only on the input order (deterministic).
    """
    if len(boxes) == 0:
        return []
    order = sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), i))
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), dtype=bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        iw = np.maximum(np.minimum(x1, x1[i]) - np.maximum(x0, x0[i]), 0)
        ih = np.maximum(np.minimum(y1, y1[i]) - np.maximum(y0, y0[i]), 0)
        inter = iw * ih
        union = area + area[i] - inter
        over = inter / np.maximum(union, 1e-9)
        inside = inter / np.maximum(np.minimum(area, area[i]), 1e-9)
        suppressed |= (over > iou) | (inside > contain)
    return keep


def _merge(dets: list[_Det], iou: float = 0.3) -> list[_Det]:
    if not dets:
        return []
    boxes = np.array([d[0] for d in dets], dtype=np.float64)
    scores = np.array([d[1] for d in dets], dtype=np.float64)
    return [dets[i] for i in nms(boxes, scores, iou=iou)]


def _touches_inner_edge(
    box: tuple[float, ...], view: tuple[int, int, int, int], size: tuple[int, int]
) -> bool:
    """A tile detection cut by a tile edge that is not an image edge (another tile has it whole)."""
    x0, y0, x1, y1 = box
    vx0, vy0, vx1, vy1 = view
    w, h = size
    eps = 2.0
    return (
        (vx0 > 0 and x0 <= vx0 + eps)
        or (vy0 > 0 and y0 <= vy0 + eps)
        or (vx1 < w and x1 >= vx1 - eps)
        or (vy1 < h and y1 >= vy1 - eps)
    )


# --------------------------------------------------------------------------- BlazeFace


def blazeface_views(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The whole image, then 2x2 tiles of 60 %, then (images >= 640 px) 3x3 tiles of 40 %."""
    views = [(0, 0, width, height)]
    if min(width, height) >= 64:
        views += tiles(width, height, 0.6)
    if max(width, height) >= 640:
        views += tiles(width, height, 0.4)
    return views


def _blazeface_run(arr: np.ndarray, model_selection: int) -> list[_Det]:
    graph, lock = _blazeface(model_selection)
    h, w = arr.shape[:2]
    with lock:
        result = graph.process(arr)
    out: list[_Det] = []
    for det in result.detections or ():
        rb = det.location_data.relative_bounding_box
        box = (rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h)
        kps = det.location_data.relative_keypoints
        lms = np.array([[k.x * w, k.y * h] for k in kps], dtype=np.float64) if kps else None
        out.append((box, float(det.score[0]), lms))
    return out


def _detect_blazeface(image: Image.Image) -> list[_Det]:
    width, height = image.size
    dets: list[_Det] = []
    # One shrunk copy of the image per view size (whole, 2x2 tiles, 3x3 tiles), cut into tiles:
    # 3 resizes per image instead of one per view. BlazeFace costs the same whatever the input
    # size (it resamples to 192/128 px itself); the shrink is an antialiasing filter.
    shrunk: dict[float, Image.Image] = {}
    for view in blazeface_views(width, height):
        scale = min(1.0, BLAZE_VIEW_MAX_SIDE / max(view[2] - view[0], view[3] - view[1]))
        if scale not in shrunk:
            shrunk[scale] = _resize(image, scale)
        src = shrunk[scale]
        sx, sy = src.width / width, src.height / height
        cx0, cy0 = round(view[0] * sx), round(view[1] * sy)
        cx1, cy1 = max(cx0 + 1, round(view[2] * sx)), max(cy0 + 1, round(view[3] * sy))
        whole = (cx0, cy0, cx1, cy1) == (0, 0, src.width, src.height)
        arr = np.ascontiguousarray(np.asarray(src if whole else src.crop((cx0, cy0, cx1, cy1))))
        for selection in (1, 0):
            for box, score, lms in _blazeface_run(arr, selection):
                b = (
                    (cx0 + box[0]) / sx,
                    (cy0 + box[1]) / sy,
                    (cx0 + box[2]) / sx,
                    (cy0 + box[3]) / sy,
                )
                if view != (0, 0, width, height) and _touches_inner_edge(b, view, (width, height)):
                    continue
                pts = None
                if lms is not None:
                    pts = (lms + np.array([cx0, cy0], dtype=np.float64)) / np.array([sx, sy])
                dets.append((b, score, pts))
    return _merge(dets)


# --------------------------------------------------------------------------- MTCNN


def _upscale_factor(width: int, height: int, max_side: int) -> float:
    long = max(width, height)
    if long < UPSCALE_TO:
        return min(3.0, UPSCALE_TO / long)
    return min(1.0, max_side / long)


def _detect_mtcnn(image: Image.Image, max_side: int = MTCNN_MAX_SIDE) -> list[_Det]:
    scale = _upscale_factor(*image.size, max_side)
    if min(image.size) * scale < MTCNN_MIN_FACE:  # no pyramid level fits: facenet would fail
        return []
    arr = np.ascontiguousarray(np.asarray(_resize(image, scale)))
    with _one_torch_thread():
        boxes, probs, points = mtcnn_cascade(_mtcnn(), arr)
    if not len(boxes):
        return []
    dets: list[_Det] = [
        (_box(box, scale), float(p), np.asarray(pts, dtype=np.float64) / scale)
        for box, p, pts in zip(boxes, probs, points, strict=True)
    ]
    return _merge(dets)


class _AreaSampler:
    """torch's "area" resize (adaptive average pooling) of one image and of any of its crops,
    from one integral image: the P-Net pyramid and the R-Net and O-Net crops of a cascade
    share it, instead of one `interpolate` call per pyramid level (a tenth of the fallback's
    time on a channels-last image). Each cell is torch's window (floor/ceil of
    i * length / size), its sum exact in integers, divided as torch divides (by the window's
    height, then its width, in float32): the same values as torch's own resize. Crops may
    reach outside the image, which then counts as zeros (the integral's indices are clipped)."""

    def __init__(self, pixels: np.ndarray) -> None:
        """pixels: (H, W, C) integer values 0-255, of any numeric dtype."""
        h, w, c = pixels.shape
        # int32 sums are exact up to 8 million pixels of 0-255 (and half the memory of int64)
        dtype = np.int32 if 255 * h * w < 2**31 else np.int64
        integral = np.zeros((h + 1, w + 1, c), dtype)
        np.cumsum(pixels.astype(dtype), 0, dtype=dtype, out=integral[1:, 1:])
        np.cumsum(integral[1:, 1:], 1, dtype=dtype, out=integral[1:, 1:])
        self.h, self.w, self.integral = h, w, integral

    @staticmethod
    def _windows(start: np.ndarray, end: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(size, dtype=np.int64)
        length = (end - start)[:, None]
        return start[:, None] + i * length // size, start[:, None] - (-(i + 1) * length // size)

    def resize(self, height: int, width: int) -> Any:
        """The whole image at ``height`` x ``width``: ``F.interpolate(img, mode="area")``."""
        import torch

        zero = np.zeros(1, np.int64)
        r0, r1 = (a[0] for a in self._windows(zero, np.array([self.h]), height))
        c0, c1 = (a[0] for a in self._windows(zero, np.array([self.w]), width))
        g = self.integral
        # rows first, then columns: two contiguous-row gathers instead of one per cell
        top, bottom = g[r0], g[r1]
        sums = bottom[:, c1] - top[:, c1] - bottom[:, c0] + top[:, c0]
        kh = (r1 - r0).astype(np.float32)[:, None, None]
        kw = (c1 - c0).astype(np.float32)[None, :, None]
        cells = sums.astype(np.float32) / kh / kw
        return torch.from_numpy(cells)[None].permute(0, 3, 1, 2)  # channels-last, like img

    def crops(self, boxes: np.ndarray, size: int) -> Any:
        """Crops resized to ``size`` x ``size``; see `area_crops`."""
        import torch

        h, w, c = self.h, self.w, self.integral.shape[2]
        flat = self.integral.reshape(-1, c)  # gathers by one linear index beat two
        b = np.asarray(boxes, np.int64).reshape(-1, 4)
        cells = np.empty((len(b), size, size, c), np.float32)
        for at in range(0, len(b), 512):  # bounded temporaries for thousands of candidates
            part = b[at : at + 512]
            r0, r1 = self._windows(part[:, 0], part[:, 1], size)  # (n, size) each
            c0, c1 = self._windows(part[:, 2], part[:, 3], size)
            top = (np.clip(r0, 0, h) * (w + 1))[:, :, None]
            bottom = (np.clip(r1, 0, h) * (w + 1))[:, :, None]
            left, right = np.clip(c0, 0, w)[:, None, :], np.clip(c1, 0, w)[:, None, :]
            sums = flat[bottom + right] - flat[top + right] - flat[bottom + left] + flat[top + left]
            kh = (r1 - r0).astype(np.float32)[:, :, None, None]
            kw = (c1 - c0).astype(np.float32)[:, None, :, None]
            cells[at : at + 512] = sums.astype(np.float32) / kh / kw
        return torch.from_numpy(cells).permute(0, 3, 1, 2)  # channels-last, like the nets


def area_crops(img: Any, boxes: np.ndarray, size: int) -> Any:
    """Many crops of ``img`` (a (1, C, H, W) float tensor of integer pixel values) resized to
    ``size`` x ``size`` by torch's "area" mode, in one pass over an integral image instead of
    one `interpolate` call per crop. ``boxes``: (n, 4) int rows y0, y1, x0, x1, end exclusive,
    at least one pixel each; outside the image counts as zeros. The same values as resizing
    each (zero-padded) crop alone."""
    return _AreaSampler(img[0].permute(1, 2, 0).numpy()).crops(boxes, size)


def mtcnn_cascade(model: Any, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MTCNN's three stages on one RGB image, as facenet-pytorch's ``MTCNN.detect`` runs them
    (the same nets, thresholds, NMS and box updates, faces largest first), except that each
    stage's crops are resized in one `area_crops` call: resizing its ~300 R-Net candidates
    one by one was over a third of the fallback's time. Returns boxes (n, 4) x0, y0, x1, y1,
    probabilities (n,) and landmarks (n, 5, 2), in ``arr``'s pixels."""
    import torch

    with torch.inference_mode():
        return _cascade(model, arr)


def _cascade(model: Any, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch
    from facenet_pytorch.models.utils.detect_face import (
        batched_nms_numpy,
        bbreg,
        fixed_batch_process,
        generateBoundingBox,
        pad,
        rerec,
    )
    from torchvision.ops import batched_nms

    def nms(boxes: Any, scores: Any, iou: float) -> Any:
        # facenet's own call, one image index: past 1,000 boxes torchvision switches to an
        # implementation that orders ties differently from plain nms
        return batched_nms(boxes, scores, torch.zeros(len(boxes), dtype=torch.int64), iou)

    # the layout MTCNN.detect makes: NHWC pixels viewed as NCHW (strides kept)
    img = torch.as_tensor(arr.copy())[None].permute(0, 3, 1, 2).type(torch.float32)
    h, w = img.shape[2:4]
    thresholds = model.thresholds
    none = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    # stage 1: P-Net over the scale pyramid, NMS per scale then over all scales
    scale = 12.0 / model.min_face_size
    scales, minl = [], min(h, w) * scale
    while minl >= 12:  # multiplied step by step, as facenet-pytorch does (same rounding)
        scales.append(scale)
        scale, minl = scale * model.factor, minl * model.factor
    found = []
    sampler = _AreaSampler(arr)
    for scale in scales:
        data = sampler.resize(int(h * scale + 1), int(w * scale + 1))
        reg, probs = model.pnet((data - 127.5) * 0.0078125)
        boxes, _ = generateBoundingBox(reg, probs[:, 1], scale, thresholds[0])
        found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
    boxes = torch.cat(found)
    boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
    if not len(boxes):
        return none
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack(
        [
            boxes[:, 0] + boxes[:, 5] * bw,
            boxes[:, 1] + boxes[:, 6] * bh,
            boxes[:, 2] + boxes[:, 7] * bw,
            boxes[:, 3] + boxes[:, 8] * bh,
            boxes[:, 4],
        ]
    ).permute(1, 0)
    boxes = rerec(boxes)

    def crops(boxes: Any, size: int) -> tuple[Any, Any]:
        y, ey, x, ex = pad(boxes, w, h)
        # a box pushed outside the image by regression has no pixels: facenet skips its crop
        # (and then misaligns the rest); here the box goes with it
        keep = (ey > y - 1) & (ex > x - 1)
        rows = np.stack([y - 1, ey, x - 1, ex], axis=1)[keep]
        data = sampler.crops(rows, size)
        return boxes[torch.from_numpy(keep)], (data - 127.5) * 0.0078125

    # stage 2: R-Net re-scores and re-boxes every candidate
    boxes, data = crops(boxes, 24)
    if not len(boxes):
        return none
    reg, probs = fixed_batch_process(data, model.rnet)
    score = probs[:, 1]
    ok = score > thresholds[1]
    boxes = torch.cat((boxes[ok, :4], score[ok].unsqueeze(1)), dim=1)
    reg = reg[ok]
    pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
    boxes = rerec(bbreg(boxes[pick], reg[pick]))
    if not len(boxes):
        return none

    # stage 3: O-Net scores, re-boxes and finds the five landmarks
    boxes, data = crops(boxes, 48)
    if not len(boxes):
        return none
    reg, points, probs = fixed_batch_process(data, model.onet)
    score = probs[:, 1]
    ok = score > thresholds[2]
    points = points[ok].permute(1, 0)
    boxes = torch.cat((boxes[ok, :4], score[ok].unsqueeze(1)), dim=1)
    reg = reg[ok]
    bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    px = bw.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
    py = bh.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
    points = torch.stack((px, py)).permute(2, 1, 0)
    boxes = bbreg(boxes, reg)
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], torch.zeros(len(boxes)), 0.7, "Min")
    box, point = boxes[pick].numpy(), points[pick].numpy()
    if not len(box):
        return none
    order = np.argsort((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))[::-1]  # select_largest
    return box[order, :4], box[order, 4], point[order]


def onet_refine(
    image: Image.Image, boxes: np.ndarray, rounds: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score and re-box candidate faces with MTCNN's O-Net.

    boxes: (n, 4) x0,y0,x1,y1. Each round squares the box, crops it (zero padding outside the
    image), resizes to 48x48 and applies O-Net's box regression. Returns (boxes (n, 4),
    face probabilities (n,), landmarks (n, 5, 2) in FIVE_POINTS order), from the last round.
    """
    import torch

    onet = _mtcnn().onet
    sampler = _AreaSampler(np.asarray(image))  # zero padding outside, as a crop of each box
    cur = np.asarray(boxes, dtype=np.float64).copy()
    probs = np.zeros(len(cur))
    lms = np.zeros((len(cur), 5, 2))
    if len(cur) == 0:
        return cur.reshape(0, 4), probs, lms
    for _ in range(rounds):
        side = np.maximum(cur[:, 2] - cur[:, 0], cur[:, 3] - cur[:, 1])
        cx, cy = (cur[:, 0] + cur[:, 2]) / 2, (cur[:, 1] + cur[:, 3]) / 2
        sq = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)
        ints = np.stack(
            [np.floor(sq[:, 0]), np.floor(sq[:, 1]), np.ceil(sq[:, 2]), np.ceil(sq[:, 3])], 1
        )
        ints = ints.astype(np.int64)
        # a box of no pixels was a 1 px black patch: the sampler gives it a pixel, then zeros
        empty = (ints[:, 2] <= ints[:, 0]) | (ints[:, 3] <= ints[:, 1])
        y1, x1 = np.maximum(ints[:, 3], ints[:, 1] + 1), np.maximum(ints[:, 2], ints[:, 0] + 1)
        rows = np.stack([ints[:, 1], y1, ints[:, 0], x1], axis=1)
        crops = sampler.crops(rows, 48)
        crops[torch.from_numpy(empty)] = 0.0
        batch = (crops - 127.5) * 0.0078125
        with _one_torch_thread():
            reg, pts, prob = onet(batch)
        reg, pts, prob = (
            reg.numpy().astype(np.float64),
            pts.numpy().astype(np.float64),
            prob.numpy(),
        )
        bw = (ints[:, 2] - ints[:, 0]).astype(np.float64)
        bh = (ints[:, 3] - ints[:, 1]).astype(np.float64)
        probs = prob[:, 1].astype(np.float64)
        lms = np.stack(
            [ints[:, :1] + bw[:, None] * pts[:, :5], ints[:, 1:2] + bh[:, None] * pts[:, 5:]],
            axis=2,
        )
        cur = np.stack(
            [
                ints[:, 0] + reg[:, 0] * bw,
                ints[:, 1] + reg[:, 1] * bh,
                ints[:, 2] + reg[:, 2] * bw,
                ints[:, 3] + reg[:, 3] * bh,
            ],
            axis=1,
        )
    return cur, probs, lms


def _detect_ensemble(image: Image.Image) -> list[_Det]:
    """BlazeFace proposals re-boxed and re-scored by O-Net (no fallback: see detect_faces)."""
    proposals = _detect_blazeface(image)
    if not proposals:
        return []
    boxes = np.array([d[0] for d in proposals], dtype=np.float64)
    refined, probs, lms = onet_refine(image, boxes)
    return _merge(
        [
            (_box(refined[i]), (proposals[i][1] + float(probs[i])) / 2.0, lms[i])
            for i in range(len(proposals))
        ]
    )


def with_fallback(dets: list[_Det], image: Image.Image, threshold: float) -> list[_Det]:
    """The ensemble's fallback: where no face reaches `threshold`, add MTCNN's faces with
    O-Net probability >= MTCNN_FALLBACK_MIN (their score is that probability)."""
    if any(score >= threshold for _, score, _ in dets):
        return dets
    found = _detect_mtcnn(image, MTCNN_FALLBACK_MAX_SIDE)
    return _merge(dets + [d for d in found if d[1] >= MTCNN_FALLBACK_MIN])


# --------------------------------------------------------------------------- dlib CNN


def _detect_dlib_cnn(image: Image.Image) -> list[_Det]:
    scale = _upscale_factor(*image.size, DLIB_MAX_SIDE)
    if min(image.size) * scale < DLIB_MIN_SIDE:
        return []
    arr = np.ascontiguousarray(np.asarray(_resize(image, scale)))
    found = _dlib_cnn()(arr, 0)
    dets: list[_Det] = []
    for d in found:
        r = d.rect
        box = (r.left() / scale, r.top() / scale, (r.right() + 1) / scale, (r.bottom() + 1) / scale)
        dets.append((box, float(d.confidence), None))
    return _merge(dets)


_RUNNERS: dict[str, Callable[[Image.Image], list[_Det]]] = {
    "ensemble": _detect_ensemble,
    "blazeface": _detect_blazeface,
    "mtcnn": _detect_mtcnn,
    "dlib-cnn": _detect_dlib_cnn,
}


# --------------------------------------------------------------------------- public API


def resolve_detector(detector: str) -> str:
    """'default' -> DEFAULT_DETECTOR; raise ArtsimError for an unknown name."""
    name = DEFAULT_DETECTOR if detector == "default" else detector
    if name not in _RUNNERS:
        raise ArtsimError(
            f"unknown face detector {detector!r}; choose one of: default, {', '.join(DETECTORS)}"
        )
    return name


def detect_faces(
    image: Image.Image,
    detector: str = "default",
    *,
    min_score: float | None = None,
    fallback: bool = True,
) -> list[Face]:
    """Find faces in an RGB PIL image (other modes are converted to RGB).

    Returns faces sorted by score (best first), boxes (x, y, w, h) in the pixels of `image`,
    clipped to it. `min_score` overrides the detector's threshold in MIN_SCORES. For the
    ensemble, `fallback` runs MTCNN where no face reaches that threshold (`with_fallback`);
    fallback=False gives the ensemble's own candidates only (used by the evaluation).
    """
    name = resolve_detector(detector)
    threshold = MIN_SCORES[name] if min_score is None else float(min_score)
    return _faces_of(_run_detector(image, name), threshold, fallback)


def detect_faces_and_candidates(
    image: Image.Image, candidate_min_score: float
) -> tuple[list[Face], list[Face]]:
    """From one run of the ensemble: what `detect_faces(image)` returns (default threshold,
    fallback included) and what `detect_faces(image, "ensemble", min_score=candidate_min_score,
    fallback=False)` returns. Indexing faces and poses together uses both (the pose detector
    proposes figures below the candidates) without detecting twice."""
    run = _run_detector(image, "ensemble")
    faces = _faces_of(run, MIN_SCORES["ensemble"], fallback=True)
    return faces, _faces_of(run, float(candidate_min_score), fallback=False)


@dataclass(frozen=True, slots=True)
class _Run:
    name: str  # the resolved detector
    work: Image.Image  # the image the detector saw (shrunk to WORK_MAX_SIDE)
    shrink: float
    size: tuple[int, int]  # the caller's image size
    dets: list[_Det]


def _run_detector(image: Image.Image, name: str) -> _Run:
    rgb = _as_rgb(image)
    shrink = min(1.0, WORK_MAX_SIDE / max(rgb.size))
    work = _resize(rgb, shrink)
    return _Run(name, work, shrink, rgb.size, _RUNNERS[name](work))


def _faces_of(run: _Run, threshold: float, fallback: bool) -> list[Face]:
    """A detector run's faces at `threshold`, with the ensemble's MTCNN fallback if asked."""
    name, width, height, shrink = run.name, *run.size, run.shrink
    dets = run.dets
    if name == "ensemble" and fallback:
        dets = with_fallback(dets, run.work, threshold)
    faces: list[Face] = []
    for (x0, y0, x1, y1), score, lms in dets:
        if score < threshold:
            continue
        cx0, cy0 = min(max(x0 / shrink, 0.0), width), min(max(y0 / shrink, 0.0), height)
        cx1, cy1 = min(max(x1 / shrink, 0.0), width), min(max(y1 / shrink, 0.0), height)
        if cx1 - cx0 < 1 or cy1 - cy0 < 1:
            continue
        points: tuple[tuple[float, float], ...] = ()
        if lms is not None:
            points = tuple(
                (round(float(px) / shrink, 2), round(float(py) / shrink, 2)) for px, py in lms
            )
        box = (round(cx0, 2), round(cy0, 2), round(cx1 - cx0, 2), round(cy1 - cy0, 2))
        faces.append(Face(box=box, score=round(float(score), 6), detector=name, landmarks=points))
    faces.sort(key=lambda f: (-f.score, f.box[1], f.box[0]))
    return faces


def face_centre(face: Face) -> tuple[float, float]:
    x, y, w, h = face.box
    return x + w / 2, y + h / 2


__all__ = [
    "BLAZEFACE_POINTS",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "FIVE_POINTS",
    "LANDMARKS",
    "MIN_SCORES",
    "detect_faces",
    "detect_faces_and_candidates",
    "dlib_model_path",
    "face_centre",
    "nms",
    "onet_refine",
    "resolve_detector",
    "tiles",
]
