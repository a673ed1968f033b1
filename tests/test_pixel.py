"""SSIM baseline on generated images (and a small real-data check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from artsim.evaluation.pixel import mean_ssim, ssim, ssim_topk_vs_random


def structured(seed: int, size: tuple[int, int] = (180, 140)) -> Image.Image:
    """Bars, a gradient and a disc: clear structure for SSIM to latch on to."""
    rng = np.random.default_rng(seed)
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    period = rng.uniform(12, 40)
    arr = 120 + 80 * np.sign(np.sin(2 * np.pi * (xs * np.cos(seed) + ys * np.sin(seed)) / period))
    arr += 40 * ys / h
    cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, rng.uniform(0.1, 0.25) * w
    arr[(xs - cx) ** 2 + (ys - cy) ** 2 < r**2] = 20
    grey = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")


def noise(seed: int, size: tuple[int, int] = (180, 140)) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr, "RGB")


def test_identical_images_score_one() -> None:
    im = structured(1)
    assert ssim(im, im.copy()) == pytest.approx(1.0)
    assert mean_ssim([(im, im), (structured(2), structured(2))]) == pytest.approx(1.0)


def test_noise_scores_lower_than_a_mild_change_of_the_same_structure() -> None:
    im = structured(3)
    blurred = im.filter(ImageFilter.GaussianBlur(1.0))
    near = ssim(im, blurred)
    far = ssim(im, noise(3))
    other = ssim(im, structured(7))
    assert 0.5 < near < 1.0
    assert far < 0.1
    assert other < near
    assert mean_ssim([(im, blurred), (im, noise(3))]) == pytest.approx((near + far) / 2)


def test_common_size_makes_different_shapes_comparable() -> None:
    im = structured(4)
    # the same picture stored at a different size and aspect ratio still scores high
    resized = im.resize((260, 150), Image.Resampling.LANCZOS)
    assert ssim(im, resized, size=128) > 0.8


def test_mean_ssim_needs_pairs() -> None:
    with pytest.raises(ValueError, match="at least one pair"):
        mean_ssim([])


def _save(folder: Path, name: str, im: Image.Image) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    im.save(folder / name)
    return f"{folder.name}/{name}"


def test_paths_relative_to_root(tmp_path: Path) -> None:
    a = _save(tmp_path / "imgs", "a.png", structured(5))
    assert mean_ssim([(a, a)], size=64, root=tmp_path) == pytest.approx(1.0)
    assert mean_ssim([(tmp_path / a, structured(5))], size=64) == pytest.approx(1.0)


def test_topk_beats_random_when_results_are_near_copies(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    queries, results, collection = [], [], []
    for i in range(4):
        q = _save(folder, f"q{i}.png", structured(10 + i))
        copies = [
            _save(folder, f"q{i}_c{j}.png", structured(10 + i).filter(ImageFilter.GaussianBlur(j)))
            for j in (1, 2)
        ]
        queries.append(q)
        results.append([q, *copies])  # the query itself is skipped
        collection += [q, *copies]
    collection += [_save(folder, f"n{i}.png", noise(i)) for i in range(12)]
    out = ssim_topk_vs_random(
        queries, results, collection, np.random.default_rng(0), k=2, size=64, root=tmp_path
    )
    assert out["topk_pairs"] == 8
    assert out["random_pairs"] == 8
    assert out["topk"] > 0.5
    assert out["random"] < out["topk"]
    # reproducible with the same seed; a mapping keyed by query works the same way
    again = ssim_topk_vs_random(
        queries,
        dict(zip(queries, results, strict=True)),
        collection,
        np.random.default_rng(0),
        k=2,
        size=64,
        root=tmp_path,
    )
    assert again == out


def test_topk_vs_random_edge_cases(tmp_path: Path) -> None:
    q = _save(tmp_path / "e", "q.png", structured(1))
    out = ssim_topk_vs_random([q], [[]], [q], np.random.default_rng(0), size=32, root=tmp_path)
    assert out == {"topk": None, "random": None, "topk_pairs": 0, "random_pairs": 0}
    with pytest.raises(ValueError, match="result lists for"):
        ssim_topk_vs_random([q], [], [q], np.random.default_rng(0))
    with pytest.raises(ValueError, match="k must be"):
        ssim_topk_vs_random([q], [[q]], [q], np.random.default_rng(0), k=0)


def test_same_painting_pairs_beat_random_pairs(data_dir: Path) -> None:
    from artsim.evaluation.groundtruth import load_instance_pairs

    pairs = [
        p
        for p in load_instance_pairs(data_dir / "groundtruth")
        if p.source == "nga:fullres~downscaled"
    ][:5]
    if not pairs:
        pytest.skip("no fullres~downscaled pairs in this ground truth")
    same = mean_ssim([(p.query_path, p.target_path) for p in pairs], size=128, root=data_dir)
    shuffled = mean_ssim(
        [(a.query_path, b.target_path) for a, b in zip(pairs, pairs[1:] + pairs[:1], strict=True)],
        size=128,
        root=data_dir,
    )
    assert same > 0.9  # the same photo at two resolutions
    assert shuffled < same - 0.3
