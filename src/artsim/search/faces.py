"""Face search: the query's face (largest, chosen with `face=N`, or marked with `box=`) against
every indexed face; paintings are ranked by their best-matching face."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from artsim.analysis import Analysis
from artsim.errors import ArtsimError
from artsim.records import SearchResult
from artsim.search import Query, to_result
from artsim.search.regions import best_rows_per_item, box_iou, pick_largest

if TYPE_CHECKING:
    from artsim.catalog import Catalog


def query_faces(
    catalog: Catalog, query: Query, *, look: bool = True, identity: bool = True
) -> list[dict]:
    """The query's faces as dicts with box (original pixels), score, and their vectors
    (identity unless identity=False, for a query image: see `choose_face`; look unless
    look=False)."""
    data = catalog.aspect("face")
    if query.item_id is not None and query.item_id in data.done:
        rows = data.rows_of_item(query.item_id)
        return [
            {
                **data.info[r],
                "identity": data.vectors["identity"][r],
                "look": data.vectors["look"][r],
                "row_id": data.row_ids[r],
            }
            for r in rows
        ]
    return _face_dicts(query.analyse(catalog, {"face"}, look=look), identity)


def _face_dicts(a: Analysis, identity: bool = True) -> list[dict]:
    assert a.faces is not None
    vecs = a.faces.identities() if identity else None
    return [
        {
            "box": list(f.box),
            "score": f.score,
            "detector": f.detector,
            **({"identity": vecs[i]} if vecs is not None else {}),
            **({"look": a.look[i]} if a.look is not None else {}),
        }
        for i, f in enumerate(a.original_faces())
    ]


def _with_identity(query: Query, faces: list[dict], i: int) -> dict:
    """faces[i] with its identity vector, embedding only that face of a query image (a search
    uses one face; embedding the others would cost as much again per face)."""
    if "identity" in faces[i]:
        return faces[i]
    assert query.analysis is not None and query.analysis.faces is not None
    return {**faces[i], "identity": query.analysis.faces.identities([i])[0]}


def parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    """A hand-marked face box "x,y,w,h" (pixels) as given to the CLI and the HTTP API; None if
    empty. The error names the text; callers prefix their option's name."""
    if not text:
        return None
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise ArtsimError(f"{text!r}: expected x,y,w,h in pixels") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ArtsimError(f"{text!r}: expected x,y,w,h as finite numbers of pixels")
    if w <= 0 or h <= 0:
        raise ArtsimError(f"{text!r}: width and height must be positive (x,y,w,h in pixels)")
    return (x, y, w, h)


def face_from_box(
    catalog: Catalog, query: Query, box: tuple[float, float, float, float], *, look: bool = True
) -> dict:
    """Embed a face the user marked by hand (box in original-image pixels)."""
    found = _face_dicts(query.analyse(catalog, {"face"}, look=look, face_box=box))
    return {**found[0], "box": list(box)}


def choose_face(
    catalog: Catalog,
    query: Query,
    face: int | None,
    box: tuple[float, float, float, float] | None,
    *,
    look: bool = True,
) -> dict:
    """The query face to search with. look=False: the look vector is not needed (not computed
    for a query image)."""
    if box is not None:
        found = query_faces(catalog, query, look=look) if query.item_id is not None else []
        matches = [f for f in found if box_iou(f["box"], box) >= 0.5]
        return (
            max(matches, key=lambda f: box_iou(f["box"], box))
            if matches
            else face_from_box(catalog, query, box, look=look)
        )
    faces = query_faces(catalog, query, look=look, identity=False)
    if not faces:
        raise ArtsimError(
            f"no face found in {query.label}; mark one with --box x,y,w,h, or search by --aspect global"
        )
    if face is not None:
        if face >= len(faces):
            raise ArtsimError(
                f"--face {face}: the query has {len(faces)} face(s), numbered 0..{len(faces) - 1}"
            )
        return _with_identity(query, faces, face)
    return _with_identity(query, faces, pick_largest([tuple(f["box"]) for f in faces]))


def search_faces(
    catalog: Catalog,
    query: Query,
    *,
    k: int = 10,
    mask: np.ndarray | None = None,
    exclude: str | None = None,
    face: int | None = None,
    box: tuple[float, float, float, float] | None = None,
    identity: bool = True,
) -> list[SearchResult]:
    name = "identity" if identity else "look"
    chosen = choose_face(catalog, query, face, box, look=not identity)
    data, index = catalog.vector_index("face", name)
    hits = best_rows_per_item(catalog, data, index, chosen[name], k, mask, exclude)
    return [
        to_result(
            catalog,
            data.item_ids[r],
            s,
            "face",
            box=tuple(data.info[r]["box"]),
            face_id=data.row_ids[r],
        )
        for r, s, _ in hits
    ]
