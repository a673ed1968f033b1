"""Geometric verification: RootSIFT matches and a RANSAC homography, and the local-feature
store (parts on disk, memory-mapped)."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

from artsim.catalog.local import LocalFeatures, LocalStore, extract_local
from artsim.search.photo import MIN_INLIERS
from artsim.search.verify import MIN_SPREAD, spread, verify_candidates
from tests.test_paintings import generated_painting


def photo_of(
    painting: Image.Image, corners: list[list[float]] | None = None
) -> tuple[Image.Image, np.ndarray]:
    """The painting warped into a 640 x 480 photo on a grey wall, onto ``corners`` (None: a
    fixed quadrilateral); returns its corners."""
    w, h = painting.size
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32(corners or [[120, 90], [520, 60], [540, 400], [100, 420]])
    H = cv2.getPerspectiveTransform(src, dst)
    arr = cv2.warpPerspective(
        np.asarray(painting), H, (640, 480), borderMode=cv2.BORDER_CONSTANT, borderValue=(128,) * 3
    )
    return Image.fromarray(arr), dst


def test_the_photographed_painting_verifies_and_is_located() -> None:
    painting = generated_painting(21, 400, 400)
    photo, corners = photo_of(painting)
    query = extract_local(photo, max_side=768, n_features=1000)
    same = extract_local(painting)
    other = extract_local(generated_painting(22, 400, 400))
    good, bad = verify_candidates(query, photo.size, [same, other])
    # the catalog's 128 px features of this plain generated painting (24 keypoints)
    assert good.inliers >= MIN_INLIERS
    assert bad.inliers < good.inliers / 3
    err = np.linalg.norm(np.asarray(good.quad) - corners, axis=1).max()
    assert err < 15  # px in the photo
    assert good.spread > 0.3  # matched across the painting, not on one motif


def test_spread_is_the_inliers_hull_over_the_painting_shown() -> None:
    quad = np.float32([[100, 100], [300, 100], [300, 300], [100, 300]])  # 200 x 200
    corners = np.float32([[100, 100], [300, 100], [300, 300], [100, 300]])
    assert spread(corners, quad, (640, 480)) == 1.0
    motif = np.float32([[110, 110], [130, 110], [130, 130], [110, 130], [120, 120]])
    assert abs(spread(motif, quad, (640, 480)) - 400 / 40_000) < 1e-6
    # half the painting outside the photo: measured against the half shown
    half_out = quad - np.float32([200, 0])
    shown = np.float32([[0, 100], [100, 100], [100, 300], [0, 300]])
    assert spread(shown, half_out, (640, 480)) == 1.0
    assert spread(motif[:2], quad, (640, 480)) == 0.0  # no area
    assert spread(corners, quad + 1000, (640, 480)) == 0.0  # nothing shown


def test_too_few_query_features_verify_nothing() -> None:
    blank = extract_local(Image.new("RGB", (200, 200), (90, 90, 90)))
    assert len(blank) == 0
    (v,) = verify_candidates(blank, (200, 200), [extract_local(generated_painting(1))])
    assert v.inliers == 0 and v.quad is None


def test_rootsift_descriptors_are_compact_and_unit_comparable() -> None:
    f = extract_local(generated_painting(5, 600, 450))
    assert 0 < len(f) <= 256
    assert f.desc.dtype == np.uint8 and f.xy.dtype == np.float16
    assert float(f.xy.min()) >= 0 and float(f.xy.max()) <= 1
    norms = np.linalg.norm(f.unit_desc(), axis=1)
    assert np.allclose(norms, 1, atol=1e-5)


def test_store_computes_missing_features_once_and_reopens(tmp_path) -> None:
    images = {}
    for i in range(3):
        images[f"p{i}"] = tmp_path / f"p{i}.png"
        generated_painting(30 + i).save(images[f"p{i}"])
    images["broken"] = tmp_path / "broken.jpg"
    images["broken"].write_text("not an image")
    catalog = SimpleNamespace(path=tmp_path / "cat", image_of=lambda i: str(images[i]))
    store = LocalStore(catalog)
    got = store.ensure(["p0", "p1", "broken"])
    assert len(got["p0"]) > 0 and len(got["broken"]) == 0  # a bad file: no keypoints, no error
    again = LocalStore(catalog)  # from disk
    assert "p1" in again and "p2" not in again
    assert np.array_equal(again.get("p0").desc, got["p0"].desc)
    again.ensure(["p2"])
    assert len(LocalStore(catalog)) == 4


@pytest.mark.parametrize("chunk", [1, 3, 8, 64])
def test_nearest_two_matches_a_per_candidate_search(chunk: int) -> None:
    """The top-2 over candidates taken a chunk at a time (shortest first, each chunk padded
    to its longest) equals searching each on its own, whatever the chunk size."""
    from artsim.search.verify import _nearest_two

    rng = np.random.default_rng(4)

    def feats(n: int) -> LocalFeatures:
        desc = rng.integers(0, 256, (n, 128)).astype(np.uint8)
        return LocalFeatures(np.zeros((n, 2), np.float16), desc, (100, 100))

    cands = [feats(n) for n in (256, 3, 0, 40, 256, 1, 17, 100, 9, 0, 2)]
    qd = feats(50).unit_desc()
    nearest, s1, s2 = _nearest_two(qd, cands, chunk)
    assert nearest.shape == s1.shape == s2.shape == (50, len(cands))
    for i, c in enumerate(cands):
        if len(c) == 0:
            assert np.all(s1[:, i] == -np.inf) and np.all(s2[:, i] == -np.inf)
            continue
        if len(c) == 1:
            assert np.allclose(s1[:, i], (qd @ c.unit_desc().T)[:, 0], atol=1e-6)
            assert np.all(s2[:, i] == -np.inf) and np.all(nearest[:, i] == 0)
            continue
        sims = qd @ c.unit_desc().T
        order = np.argsort(-sims, axis=1)
        assert np.array_equal(nearest[:, i], order[:, 0])
        assert np.allclose(s1[:, i], sims[np.arange(len(qd)), order[:, 0]], atol=1e-6)
        assert np.allclose(s2[:, i], sims[np.arange(len(qd)), order[:, 1]], atol=1e-6)


def test_matches_on_one_shared_motif_verify_nothing() -> None:
    # prints of one artist share a seal or a signature cartouche; a different print that
    # matches the photo only there must not be taken for the photographed one
    rng = np.random.default_rng(3)
    blocks = (rng.random((12, 12, 3)) > 0.5).astype(np.uint8) * 255
    seal = Image.fromarray(blocks).resize((64, 64), Image.Resampling.NEAREST)
    shown, other = generated_painting(21, 400, 400), generated_painting(22, 400, 400)
    shown.paste(seal, (30, 30))
    other.paste(seal, (290, 280))
    photo, _ = photo_of(shown)
    query = extract_local(photo, max_side=768, n_features=1000)
    # at 256 px: at the default 128 px the 64 px seal is too small to hold keypoints
    stored = [extract_local(shown, max_side=256), extract_local(other, max_side=256)]
    _, on_seal = verify_candidates(query, photo.size, stored, min_spread=0.0)
    assert on_seal.inliers >= 20 and on_seal.spread < MIN_SPREAD  # a strong match, on one motif
    good, bad = verify_candidates(query, photo.size, stored)
    assert good.inliers >= 20 and good.quad is not None
    assert bad.inliers == 0 and bad.quad is None and bad.spread == on_seal.spread
