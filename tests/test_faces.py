"""Face detection: placement on real portraits, odd images, determinism and colour order."""

from __future__ import annotations

import csv
import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from artsim.detectors import faces as F
from artsim.detectors.faces import DEFAULT_DETECTOR, DETECTORS, detect_faces, nms, tiles
from artsim.errors import ArtsimError
from artsim.images import load_rgb
from artsim.records import Face

# NGA portraits checked by eye (crops saved and viewed): face centre (x, y) in the 1024 px file.
PORTRAITS = {
    "1128": (431, 457),  # Andrew Jackson, frontal, large face
    "323": (326, 331),  # young man in a black cap, three-quarter view
    "42939": (463, 351),  # young woman, face turned to the right
    "34104": (409, 308),  # man in a black coat
}
GROUP = ("46191", [(169, 361), (437, 463), (542, 371)])  # three figures in a palace hall
LANDSCAPE = "3204"  # sunset over trees and water, no figures


def nga(data_dir: Path, objectid: str) -> Path:
    return data_dir / "nga" / "images" / f"{objectid}.jpg"


def centre(face: Face) -> tuple[float, float]:
    x, y, w, h = face.box
    return x + w / 2, y + h / 2


def inside(face: Face, size: tuple[int, int]) -> bool:
    x, y, w, h = face.box
    return (
        x >= 0
        and y >= 0
        and w > 0
        and h > 0
        and x + w <= size[0] + 1e-6
        and y + h <= size[1] + 1e-6
    )


def near(faces: list[Face], point: tuple[float, float], tol: float) -> bool:
    return any(np.hypot(centre(f)[0] - point[0], centre(f)[1] - point[1]) <= tol for f in faces)


# --------------------------------------------------------------------------- no models needed


def test_detector_names_and_default() -> None:
    assert set(DETECTORS) == {"ensemble", "blazeface", "mtcnn", "dlib-cnn"}
    assert F.resolve_detector("default") == DEFAULT_DETECTOR
    assert set(F.MIN_SCORES) == set(DETECTORS) == set(F.LANDMARKS)
    with pytest.raises(ArtsimError, match=r"unknown face detector 'yolo'.*blazeface"):
        detect_faces(Image.new("RGB", (64, 64)), "yolo")


def test_not_an_image_is_a_user_error() -> None:
    with pytest.raises(ArtsimError, match="expected a PIL image"):
        detect_faces(np.zeros((10, 10, 3), np.uint8))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(224, 224), (1000, 700), (333, 1211), (50, 40)])
def test_tiles_cover_the_image_with_overlap(size: tuple[int, int]) -> None:
    w, h = size
    grid = tiles(w, h, 0.4)
    covered = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in grid:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({t[0] for t in grid})
    tw = grid[0][2] - grid[0][0]
    assert all(b - a <= 0.75 * tw + 1 for a, b in itertools.pairwise(xs))  # >= 25 % overlap


def test_nms_keeps_best_and_drops_overlapping_or_contained() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [52, 52, 56, 56]], float)
    scores = np.array([0.5, 0.9, 0.7, 0.8])
    assert nms(boxes, scores) == [1, 3]  # 0 overlaps 1; the 10 px box 2 contains the better box 3
    assert nms(np.zeros((0, 4)), np.zeros(0)) == []
    tie = nms(np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float), np.array([0.5, 0.5]))
    assert tie == [0]


def test_every_detector_is_given_the_rgb_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The arrays handed to MediaPipe, MTCNN and dlib are the image's own RGB bytes, never BGR."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (300, 360, 3), dtype=np.uint8)
    pixels[..., 0] = 250  # strongly red: a channel swap would show
    image = Image.fromarray(pixels, "RGB")
    seen: list[np.ndarray] = []

    def fake_blaze(arr: np.ndarray, selection: int) -> list:
        seen.append(arr.copy())
        return []

    def fake_cascade(model: object, arr: np.ndarray) -> tuple:
        seen.append(np.asarray(arr).copy())
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))

    class FakeDlib:
        def __call__(self, arr: np.ndarray, upsample: int) -> list:
            seen.append(arr.copy())
            return []

    monkeypatch.setattr(F, "_blazeface_run", fake_blaze)
    monkeypatch.setattr(F, "_mtcnn", lambda: None)
    monkeypatch.setattr(F, "mtcnn_cascade", fake_cascade)
    monkeypatch.setattr(F, "_dlib_cnn", lambda: FakeDlib())
    for name in DETECTORS:
        seen.clear()
        assert detect_faces(image, name) == []
        assert seen, name
        first = seen[0]
        if first.shape == pixels.shape:  # blazeface: the whole image, unscaled (<= 384 px)
            np.testing.assert_array_equal(first, pixels)
        # upscaled views (MTCNN, dlib) keep the channel means of the original, in RGB order
        np.testing.assert_allclose(
            first.reshape(-1, 3).mean(0), pixels.reshape(-1, 3).mean(0), atol=2.0
        )
        assert first[..., 0].mean() > 240, f"{name} saw a channel-swapped image"


def test_ensemble_falls_back_to_mtcnn_only_when_it_finds_no_face(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = Image.new("RGB", (200, 200), (120, 110, 100))
    lms = np.zeros((5, 2))
    mtcnn_dets = [((10.0, 10.0, 50.0, 60.0), 0.97, lms), ((100.0, 100.0, 130.0, 140.0), 0.6, lms)]
    calls: list[str] = []

    def fake_mtcnn(img: Image.Image, max_side: int = F.MTCNN_MAX_SIDE) -> list:
        calls.append("mtcnn")
        return mtcnn_dets

    monkeypatch.setattr(F, "_detect_mtcnn", fake_mtcnn)
    # BlazeFace proposes nothing: MTCNN's confident face is kept, its weak one is not
    monkeypatch.setattr(F, "_detect_blazeface", lambda img: [])
    faces = detect_faces(image, "ensemble")
    assert calls == ["mtcnn"]
    assert [f.box for f in faces] == [(10.0, 10.0, 40.0, 50.0)]
    assert faces[0].score == pytest.approx(0.97)
    # a face the ensemble trusts: MTCNN does not run at all
    calls.clear()
    monkeypatch.setattr(
        F, "_detect_blazeface", lambda img: [((60.0, 60.0, 120.0, 130.0), 0.9, None)]
    )
    monkeypatch.setattr(
        F,
        "onet_refine",
        lambda img, boxes: (np.asarray(boxes, float), np.array([0.95]), np.zeros((1, 5, 2))),
    )
    faces = detect_faces(image, "ensemble")
    assert calls == []
    assert len(faces) == 1 and faces[0].score == pytest.approx(0.925)
    # the trigger is the threshold in force: above the ensemble's best face, MTCNN runs, and
    # its confident face joins the ensemble's (which is then filtered out)
    faces = detect_faces(image, "ensemble", min_score=0.96)
    assert calls == ["mtcnn"]
    assert [f.score for f in faces] == [pytest.approx(0.97)]
    # fallback=False: the ensemble's own candidates only, never MTCNN
    calls.clear()
    assert detect_faces(image, "ensemble", min_score=0.96, fallback=False) == []
    assert calls == []


def test_fallback_sees_large_paintings_at_640_px(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []

    def fake_cascade(model: object, arr: np.ndarray) -> tuple:
        seen.append(arr.shape[:2])
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))

    monkeypatch.setattr(F, "_mtcnn", lambda: None)
    monkeypatch.setattr(F, "mtcnn_cascade", fake_cascade)
    monkeypatch.setattr(F, "_detect_blazeface", lambda img: [])
    assert detect_faces(Image.new("RGB", (1024, 768)), "ensemble") == []
    assert seen == [(480, 640)]
    seen.clear()  # small paintings are upscaled, as for MTCNN itself
    detect_faces(Image.new("RGB", (224, 224)), "ensemble")
    assert seen == [(448, 448)]
    seen.clear()  # MTCNN as the chosen detector keeps its own 1024 px limit
    detect_faces(Image.new("RGB", (1024, 768)), "mtcnn")
    assert seen == [(768, 1024)]


def test_area_crops_equal_resizing_each_crop_alone() -> None:
    """The batched crops are torch's "area" resize of each crop, value for value, for crops
    smaller and larger than the output, thin ones and the whole image."""
    import torch
    import torch.nn.functional as TF

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    img = torch.as_tensor(pixels.copy())[None].permute(0, 3, 1, 2).type(torch.float32)
    rows = [(0, 97, 0, 131), (5, 6, 7, 8), (10, 13, 0, 131), (0, 97, 60, 61)]
    for _ in range(60):
        y0, x0 = int(rng.integers(0, 96)), int(rng.integers(0, 130))
        rows.append((y0, int(rng.integers(y0 + 1, 98)), x0, int(rng.integers(x0 + 1, 132))))
    for size in (24, 48):
        got = F.area_crops(img, np.array(rows), size)
        want = torch.cat(
            [
                TF.interpolate(img[:, :, a:b, c:d], size=(size, size), mode="area")
                for a, b, c, d in rows
            ]
        )
        assert got.shape == (len(rows), 3, size, size)
        assert torch.equal(got, want)


def test_area_crops_outside_the_image_count_as_zeros() -> None:
    """O-Net's refinement crops reach past the image edge: the same values as a zero-padded
    crop resized alone (what `onet_refine` did crop by crop)."""
    import torch
    import torch.nn.functional as TF

    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
    img = torch.as_tensor(pixels.copy())[None].permute(0, 3, 1, 2).type(torch.float32)
    rows = [(-10, 40, -5, 45), (30, 90, 50, 110), (-20, 80, -20, 100), (0, 1, 82, 83)]
    got = F.area_crops(img, np.array(rows), 48)
    for k, (y0, y1, x0, x1) in enumerate(rows):
        patch = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, 61), max(x0, 0), min(x1, 83)
        patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = pixels[sy0:sy1, sx0:sx1]
        t = torch.from_numpy(patch).permute(2, 0, 1)[None].float()
        assert torch.equal(got[k : k + 1], TF.interpolate(t, size=(48, 48), mode="area"))


def test_area_resize_equals_torch_for_every_pyramid_level() -> None:
    """The P-Net pyramid from one integral image: torch's "area" resize, value for value,
    shrinking and enlarging."""
    import torch
    import torch.nn.functional as TF

    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (149, 223, 3), dtype=np.uint8)
    img = torch.as_tensor(pixels.copy())[None].permute(0, 3, 1, 2).type(torch.float32)
    sampler = F._AreaSampler(pixels)
    for height, width in [(90, 134), (64, 95), (12, 18), (7, 200), (300, 223), (149, 223)]:
        got = sampler.resize(height, width)
        assert got.shape == (1, 3, height, width)
        assert torch.equal(got, TF.interpolate(img, size=(height, width), mode="area"))


# --------------------------------------------------------------------------- real models, few images


@pytest.mark.parametrize("objectid", [*sorted(PORTRAITS)[:2], GROUP[0], LANDSCAPE])
def test_mtcnn_cascade_equals_facenet_detect(data_dir: Path, objectid: str) -> None:
    """artsim's cascade (batched crops) finds what facenet-pytorch's MTCNN.detect finds."""
    image = load_rgb(nga(data_dir, objectid))
    scale = F._upscale_factor(*image.size, F.MTCNN_FALLBACK_MAX_SIDE)
    arr = np.ascontiguousarray(np.asarray(F._resize(image, scale)))
    with F._one_torch_thread():
        boxes, probs, points = F._mtcnn().detect(arr, landmarks=True)
        got = F.mtcnn_cascade(F._mtcnn(), arr)
    if boxes is None:
        assert len(got[0]) == 0
        return
    assert len(got[0]) == len(boxes) > 0
    # the same values, not merely close: the crops are the same numbers (area_crops' test)
    np.testing.assert_array_equal(got[0], np.asarray(boxes, np.float32))
    np.testing.assert_array_equal(got[1], np.asarray(probs, np.float32))
    np.testing.assert_array_equal(got[2], np.asarray(points, np.float32))


def test_mtcnn_cascade_runs_outside_any_grad_context(data_dir: Path) -> None:
    portrait = np.asarray(F._resize(load_rgb(nga(data_dir, "1128")), 0.5))
    boxes, probs, points = F.mtcnn_cascade(F._mtcnn(), np.ascontiguousarray(portrait))
    assert len(boxes) >= 1 and len(probs) == len(points) == len(boxes)
    flat = np.full((120, 160, 3), 200, np.uint8)  # P-Net proposes nothing
    boxes, probs, points = F.mtcnn_cascade(F._mtcnn(), flat)
    assert boxes.shape == (0, 4) and probs.shape == (0,) and points.shape == (0, 5, 2)


@pytest.mark.parametrize("objectid", sorted(PORTRAITS))
def test_default_finds_the_sitter_where_expected(data_dir: Path, objectid: str) -> None:
    image = load_rgb(nga(data_dir, objectid))
    faces = detect_faces(image)
    assert faces, f"no face in NGA {objectid}"
    assert all(inside(f, image.size) for f in faces)
    assert near(faces, PORTRAITS[objectid], tol=0.05 * max(image.size)), [centre(f) for f in faces]
    best = faces[0]
    assert best.detector == DEFAULT_DETECTOR and best.score >= F.MIN_SCORES[DEFAULT_DETECTOR]
    assert len(best.landmarks) == 5
    lx, rx = best.landmarks[0][0], best.landmarks[1][0]
    assert lx < rx  # FIVE_POINTS: the image-left eye comes first
    x, y, w, h = best.box
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in best.landmarks)


def test_group_scene_finds_each_figure(data_dir: Path) -> None:
    objectid, expected = GROUP
    faces = detect_faces(load_rgb(nga(data_dir, objectid)))
    for point in expected:
        assert near(faces, point, tol=25), (point, [centre(f) for f in faces])


def test_landscape_has_no_face(data_dir: Path) -> None:
    assert detect_faces(load_rgb(nga(data_dir, LANDSCAPE))) == []


def test_same_image_gives_identical_faces(data_dir: Path) -> None:
    image = load_rgb(nga(data_dir, "46191"))
    assert detect_faces(image) == detect_faces(image.copy())


def test_faces_and_candidates_from_one_run_equal_two_runs(data_dir: Path) -> None:
    for objectid in ("46191", "1128", "34104"):
        image = load_rgb(nga(data_dir, objectid))
        faces, candidates = F.detect_faces_and_candidates(image, 0.35)
        assert faces == detect_faces(image)
        assert candidates == detect_faces(image, "ensemble", min_score=0.35, fallback=False)
        assert candidates


def test_pil_image_and_disk_load_agree_and_bgr_differs(data_dir: Path) -> None:
    """Index time (load_rgb from disk) and query time (an uploaded PIL image) see the same pixels."""
    path = nga(data_dir, "1128")
    with Image.open(path) as raw:
        uploaded = raw.convert("RGB")
    from_disk = load_rgb(path)
    assert detect_faces(uploaded) == detect_faces(from_disk)
    swapped = Image.fromarray(np.asarray(from_disk)[..., ::-1].copy(), "RGB")
    assert detect_faces(swapped) != detect_faces(from_disk)  # the API does not swap channels


def test_grayscale_painting(data_dir: Path) -> None:
    image = load_rgb(nga(data_dir, "1128")).convert("L")
    faces = detect_faces(image)
    assert near(faces, PORTRAITS["1128"], tol=50)


def test_faces_at_the_edge_are_clipped(data_dir: Path) -> None:
    image = load_rgb(nga(data_dir, "1128"))
    for box in [(360, 0, 859, 1024), (0, 0, 500, 1024), (0, 330, 859, 1024)]:
        crop = image.crop(box)
        faces = detect_faces(crop)
        assert faces, box
        assert all(inside(f, crop.size) for f in faces)
    left = detect_faces(image.crop((360, 0, 859, 1024)))[0]
    assert left.box[0] == 0.0  # the face runs off the left edge: its box starts at 0


@pytest.mark.parametrize("detector", DETECTORS)
def test_tiny_and_odd_images_do_not_fail(detector: str) -> None:
    rng = np.random.default_rng(1)
    for size in [(32, 32), (1, 1), (300, 7)]:
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        faces = detect_faces(image, detector)
        assert all(inside(f, image.size) for f in faces)


def test_huge_generated_image(data_dir: Path) -> None:
    portrait = load_rgb(nga(data_dir, "1128")).resize((1259, 1500))
    canvas = Image.new("RGB", (6000, 4000), (90, 80, 70))
    canvas.paste(portrait, (3000, 1500))
    faces = detect_faces(canvas)
    expected = (3000 + 431 * 1259 / 859, 1500 + 457 * 1500 / 1024)
    assert near(faces, expected, tol=60), [centre(f) for f in faces]
    assert all(inside(f, canvas.size) for f in faces)


def test_min_score_filters(data_dir: Path) -> None:
    image = load_rgb(nga(data_dir, "46191"))
    everything = detect_faces(image, min_score=0.0)
    strict = detect_faces(image, min_score=0.9)
    assert len(strict) < len(everything)
    assert all(f.score >= 0.9 for f in strict)
    assert [f.score for f in everything] == sorted((f.score for f in everything), reverse=True)


def test_mirrored_portrait_mirrors_the_box(data_dir: Path) -> None:
    image = load_rgb(nga(data_dir, "34104"))
    a = detect_faces(image)[0]
    b = detect_faces(ImageOps.mirror(image))[0]
    assert (
        abs((a.box[0] + a.box[2] / 2) - (image.width - b.box[0] - b.box[2] / 2))
        < 0.05 * image.width
    )


# --------------------------------------------------------------------------- slow: many images


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["blazeface", "mtcnn", "dlib-cnn"])
def test_each_detector_finds_a_clear_portrait(data_dir: Path, detector: str) -> None:
    image = load_rgb(nga(data_dir, "34104"), max_side=400)
    scale = image.width / 848
    faces = detect_faces(image, detector)
    assert near(faces, (409 * scale, 308 * scale), tol=30), [centre(f) for f in faces]
    assert all(f.detector == detector for f in faces)
    assert all(len(f.landmarks) == len(F.LANDMARKS[detector]) for f in faces)


@pytest.mark.slow
def test_recall_and_false_faces_on_a_sample(data_dir: Path) -> None:
    """Loose floor on 40 Baroque portraits and 40 landscapes (full numbers: docs/faces.md)."""
    with open(data_dir / "wikiart" / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rng = random.Random(3)
    portraits = rng.sample(
        [r for r in rows if r["genre"] == "portrait" and r["style"] == "Baroque"], 40
    )
    landscapes = rng.sample([r for r in rows if r["genre"] == "landscape"], 40)
    root = data_dir / "wikiart" / "images"
    found = sum(bool(detect_faces(load_rgb(root / r["path"]))) for r in portraits)
    false = sum(len(detect_faces(load_rgb(root / r["path"]))) for r in landscapes)
    assert found / 40 >= 0.85
    assert false / 40 <= 0.3
