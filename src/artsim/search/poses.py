"""Pose search: the query's figure (largest, or `figure=N`) against every indexed figure;
with `mirror=True` the left/right-flipped pose is searched too and the better score kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from artsim.errors import ArtsimError
from artsim.records import Pose, SearchResult
from artsim.search import Query, to_result
from artsim.search.regions import best_rows_per_item, pick_largest

if TYPE_CHECKING:
    from artsim.catalog import Catalog


def query_poses(catalog: Catalog, query: Query) -> list[Pose]:
    """The query's figures in original-image pixels (stored ones for a catalog item)."""
    data = catalog.aspect("pose")
    if query.item_id is not None and query.item_id in data.done:
        return [
            Pose(
                keypoints=tuple(tuple(p) for p in data.info[r]["keypoints"]),
                visibility=tuple(data.info[r]["visibility"]),
                box=tuple(data.info[r]["box"]),
                score=data.info[r].get("score", 1.0),
            )
            for r in data.rows_of_item(query.item_id)
        ]
    return query.analyse(catalog, {"pose"}).original_poses()


def choose_pose(catalog: Catalog, query: Query, figure: int | None) -> Pose:
    poses = query_poses(catalog, query)
    if not poses:
        raise ArtsimError(f"no figure found in {query.label}; try --aspect global or --aspect face")
    if figure is not None:
        if figure >= len(poses):
            raise ArtsimError(
                f"--figure {figure}: the query has {len(poses)} figure(s), numbered 0..{len(poses) - 1}"
            )
        return poses[figure]
    return poses[pick_largest([p.box for p in poses])]


def search_poses(
    catalog: Catalog,
    query: Query,
    *,
    k: int = 10,
    mask: np.ndarray | None = None,
    exclude: str | None = None,
    figure: int | None = None,
    mirror: bool = False,
    min_score: float = 0.0,
) -> list[SearchResult]:
    """Paintings ranked by their best-matching figure. min_score: only indexed figures whose
    detection score is at least this take part (low scores are mostly invented figures;
    docs/poses.md measures what a threshold leaves)."""
    from artsim.encoders.poses import query_descriptors

    if not 0.0 <= min_score <= 1.0:
        raise ArtsimError(f"--min-score {min_score}: a figure score lies between 0 and 1")
    pose = choose_pose(catalog, query, figure)
    data, index = catalog.vector_index("pose", "pose")
    row_ok = None
    if min_score > 0:
        row_ok = np.array([i.get("score", 1.0) >= min_score for i in data.info], dtype=bool)
    hits = best_rows_per_item(
        catalog, data, index, query_descriptors(pose, mirror), k, mask, exclude, row_ok
    )
    return [
        to_result(
            catalog,
            data.item_ids[r],
            s,
            "pose",
            box=tuple(data.info[r]["box"]),
            pose_id=data.row_ids[r],
            keypoints=data.info[r]["keypoints"],
            # row 1 of the query is the mirrored pose (query_descriptors)
            mirrored=bool(q == 1) if mirror else None,
        )
        for r, s, q in hits
    ]
