"""Pose search (artsim.search.poses): the query figure chosen (largest or numbered), mirrored
matches, figures below a detection score left out, and the errors that name what to do.
Searches by catalog id on MemoryCatalog read stored figures only (no detector runs)."""

from __future__ import annotations

import numpy as np
import pytest

from artsim.errors import ArtsimError
from artsim.records import Pose
from artsim.search import Query
from artsim.search.poses import choose_pose, query_poses, search_poses
from tests.search_support import MemoryCatalog, Painting, standing, unit


def _mirrored(p: Pose, width: float = 200.0) -> Pose:
    from artsim.encoders.poses import mirror_pose

    return mirror_pose(p, width)


def _catalog() -> MemoryCatalog:
    g = unit(np.random.default_rng(0).normal(size=(6, 8)))
    raised = standing(0, arm=1.0)
    return MemoryCatalog([
        Painting("q", g[0], figures=[standing(0, 0.2), raised.__class__(
            raised.keypoints, raised.visibility, (0, 0, 80, 120), 0.95)]),  # the larger one
        Painting("same", g[1], figures=[standing(100, arm=1.0)]),
        Painting("mirror", g[2], figures=[_mirrored(standing(0, arm=1.0))]),
        Painting("down", g[3], figures=[standing(0, arm=0.0)]),
        Painting("weak", g[4], figures=[standing(0, arm=1.0, score=0.2)]),
        Painting("empty", g[5]),
    ])  # fmt: skip


def test_stored_figures_are_read_back_as_poses():
    cat = _catalog()
    poses = query_poses(cat, Query(item_id="same", label="same"))
    assert len(poses) == 1 and len(poses[0].keypoints) == 33 and poses[0].score == 0.9
    assert query_poses(cat, Query(item_id="empty", label="empty")) == []


def test_the_largest_figure_is_searched_unless_another_is_named():
    cat = _catalog()
    q = Query(item_id="q", label="q")
    assert choose_pose(cat, q, None).box == (0, 0, 80, 120)
    assert choose_pose(cat, q, 0).box != (0, 0, 80, 120)
    with pytest.raises(
        ArtsimError, match=r"--figure 5: the query has 2 figure\(s\), numbered 0..1"
    ):
        choose_pose(cat, q, 5)
    with pytest.raises(ArtsimError, match="no figure found in empty; try --aspect global"):
        choose_pose(cat, Query(item_id="empty", label="empty"), None)


def test_the_same_pose_ranks_first_and_mirrored_poses_need_mirror():
    cat = _catalog()
    q = Query(item_id="q", label="q")
    plain = search_poses(cat, q, k=4, exclude="q")
    ids = [h.id for h in plain]
    assert ids[0] in ("same", "weak") and ids.index("same") < ids.index("down")
    assert plain[0].pose_id.endswith("#p0") and len(plain[0].keypoints) == 33
    assert all(h.mirrored is None for h in plain)
    both = search_poses(cat, q, k=4, exclude="q", mirror=True)
    by_id = {h.id: h for h in both}
    assert by_id["mirror"].mirrored is True and by_id["same"].mirrored is False
    assert (
        by_id["mirror"].score > {h.id: h for h in plain}.get("mirror", by_id["down"]).score - 1e-6
    )


def test_min_score_leaves_weak_figures_out_and_is_checked():
    cat = _catalog()
    q = Query(item_id="q", label="q")
    assert "weak" in [h.id for h in search_poses(cat, q, k=5, exclude="q")]
    assert "weak" not in [h.id for h in search_poses(cat, q, k=5, exclude="q", min_score=0.5)]
    with pytest.raises(ArtsimError, match=r"--min-score 1\.5: a figure score lies between 0 and 1"):
        search_poses(cat, q, min_score=1.5)
