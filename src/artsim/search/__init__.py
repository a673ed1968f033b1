"""Search: turn a query (catalog id, image file, URL, bytes, PIL image) into ranked paintings.

Filters are applied as a mask inside the nearest-neighbour search (never after truncating
to k), and the query painting itself is excluded.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artsim.analysis import Analysis, analyse
from artsim.catalog import AspectData, Catalog
from artsim.catalog.index import VectorIndex
from artsim.errors import ArtsimError
from artsim.images import DEFAULT_MAX_PIXELS
from artsim.records import SearchResult
from artsim.search.filters import fields_mask, parse_where

SEARCH_ASPECTS = ("global", "face", "pose", "fused")


@dataclass(slots=True)
class Query:
    """A resolved query: a catalog item, or image content to analyse."""

    item_id: str | None = None
    source: str | bytes | Image.Image | None = None
    label: str = ""
    # the query image's analysis, made once (`analyse`) and shared by every aspect
    analysis: Analysis | None = field(default=None, repr=False)

    def analyse(
        self,
        catalog: Catalog,
        aspects: Collection[str],
        *,
        look: bool = False,
        face_box: tuple[float, float, float, float] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Analysis:
        """The query image analysed for `aspects` (the stored file for a catalog item): decoded
        once and each analysis run once, by the code that indexing runs. A search asks for
        everything it needs in one call; a later call that asks for no more reuses it. Faces'
        identity vectors are embedded on demand (`FoundFaces.identities`): a search uses one."""
        a = self.analysis
        if a is not None and _covers(a, aspects, look, face_box):
            return a
        src = self.source
        if self.item_id is not None:
            src = catalog.image_of(self.item_id)
        if src is None:
            raise ArtsimError("query has no image")
        self.analysis = analyse(
            src,
            aspects,
            encoder=catalog.encoder,
            look=look,
            face_box=face_box,
            max_pixels=max_pixels,
            embed_identity=False,
        )
        return self.analysis


def _covers(a: Analysis, aspects: Collection[str], look: bool, face_box) -> bool:
    have = {
        "global": a.vector is not None,
        "face": a.faces is not None and (a.look is not None or not look),
        "pose": a.figures is not None,
    }
    # faces analysed for a hand-marked box are not the detected faces, and the reverse
    marked = a.faces is not None and any(f.detector == "user" for f in a.faces.faces)
    if "face" in aspects and marked != (face_box is not None):
        return False
    return all(have.get(x, False) for x in aspects)


def resolve_query(catalog: Catalog, query: Any) -> Query:
    if isinstance(query, Image.Image):
        return Query(source=query, label="<image>")
    if isinstance(query, bytes):
        return Query(source=query, label="<upload>")
    text = str(query)
    if text in catalog:
        return Query(item_id=text, label=text)
    if text.lower().startswith(("http://", "https://")):
        from artsim.sources.iiif import fetch_image

        path = fetch_image(text, catalog.path / "cache" / "queries")
        return Query(source=str(path), label=text)
    if "://" in text:
        raise ArtsimError(f"query {text!r}: only http(s) URLs are supported")
    path = Path(text)
    if path.is_file():
        return Query(source=str(path), label=text)
    raise ArtsimError(
        f"query {text!r} is neither an id in catalog {catalog.path} nor an image file or URL"
    )


def same_file_item(catalog: Catalog, query: Query) -> str | None:
    """The catalog item whose image is the query file, so it can be excluded from results."""
    if query.item_id is not None:
        return query.item_id
    if isinstance(query.source, str):
        target = str(Path(query.source).resolve())
        for item_id, image in zip(catalog.ids, catalog._images, strict=True):
            if image == target:
                return item_id
    return None


def item_mask(catalog: Catalog, where: Sequence[str] | str | None) -> np.ndarray | None:
    """The --where conditions as a mask over the catalog's items (None: no conditions),
    computed over its typed metadata columns, never per-row dicts."""
    return fields_mask(catalog.fields, parse_where(where))


def search(
    catalog: Catalog,
    query: Any,
    *,
    k: int = 10,
    aspect: str = "global",
    where: Sequence[str] | str | None = None,
    **options: Any,
) -> list[SearchResult]:
    """Paintings most like `query` (catalog id, image path, URL, bytes, PIL image or Query),
    best first, the query item excluded. `Catalog.search` calls this."""
    from artsim.search.options import SearchOptions, split_options

    known, extra = split_options(options)  # extras such as whiten go to the aspect's search as is
    opts = SearchOptions.parse(aspect=aspect, k=k, where=where, max_k=None, strict=True, **known)
    aspect, k, where, options = (
        opts.aspect,
        opts.k,
        list(opts.where),
        {**opts.aspect_options(), **extra},
    )
    if aspect != "fused":
        catalog.aspect(aspect)  # a clear error when the catalog lacks this aspect
    q = query if isinstance(query, Query) else resolve_query(catalog, query)
    mask = item_mask(catalog, where)
    exclude = same_file_item(catalog, q)
    # --- photo queries (issue 13): an image query is searched as a photo of paintings ---
    photo = options.pop("photo", "auto")
    if aspect == "global" and q.item_id is None and photo == "auto" and not options:
        from artsim.analysis import decode
        from artsim.search.photo import QUERY_SIDE, search_photo

        if q.source is None:
            raise ArtsimError("query has no image")
        loaded = decode(q.source, QUERY_SIDE)  # the one decode of this query
        return search_photo(
            catalog,
            loaded.image,
            k=k,
            mask=mask,
            exclude=exclude,
            original_size=loaded.original_size,
        )
    # --- end photo queries ---
    if aspect == "global":
        from artsim.search.global_ import search_global

        return search_global(catalog, q, k=k, mask=mask, exclude=exclude, **options)
    if aspect == "face":
        from artsim.search.faces import search_faces

        return search_faces(catalog, q, k=k, mask=mask, exclude=exclude, **options)
    if aspect == "pose":
        from artsim.search.poses import search_poses

        return search_poses(catalog, q, k=k, mask=mask, exclude=exclude, **options)
    from artsim.search.fusion import search_fused

    return search_fused(catalog, q, k=k, mask=mask, exclude=exclude, **options)


search_catalog = search  # its former name


def row_mask(
    row_pos: np.ndarray,
    n_items: int,
    mask: np.ndarray | None,
    exclude: str | None,
    catalog: Catalog,
    in_item_order: bool = False,
) -> np.ndarray | None:
    """Item-level mask and exclusion -> mask over an aspect's rows (None = all rows).
    in_item_order: row i is item i (AspectData.in_item_order), so no gather is needed."""
    if mask is None and exclude is None:
        return None
    item_ok = np.ones(n_items, dtype=bool) if mask is None else mask.copy()
    if exclude is not None and exclude in catalog:
        item_ok[catalog._pos[exclude]] = False
    return item_ok if in_item_order else item_ok[row_pos]


def masked_search(
    catalog: Catalog,
    data: AspectData,
    index: VectorIndex,
    qv: np.ndarray,
    k: int,
    mask: np.ndarray | None,
    exclude: str | None,
    row_ok: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of one aspect for one query vector, honouring the item mask and exclusion,
    and `row_ok` (a mask over the aspect's rows, e.g. figures above a score).
    Returns (scores, rows) with misses removed."""
    if row_ok is not None and row_ok.shape != (len(data),):
        raise ValueError(f"row_ok has shape {row_ok.shape}; the aspect has {len(data)} rows")
    if mask is None and row_ok is None:
        # no filter: over-fetch the excluded item's rows instead of building a mask
        extra = len(data.rows_of_item(exclude)) if exclude is not None else 0
        scores, rows = index.search(qv[None], k + extra)
        scores, rows = scores[0], rows[0]
        if extra:
            keep = np.array([r >= 0 and data.item_ids[r] != exclude for r in rows], dtype=bool)
            scores, rows = scores[keep], rows[keep]
    else:
        rmask = None
        if mask is not None or exclude is not None:
            assert data.row_pos is not None  # set by Catalog.aspect, which loaded `data`
            rmask = row_mask(data.row_pos, len(catalog), mask, exclude, catalog, data.in_item_order)
        if row_ok is not None:
            rmask = row_ok if rmask is None else rmask & row_ok
        scores, rows = index.search(qv[None], k, rmask)
        scores, rows = scores[0], rows[0]
    ok = rows >= 0
    return scores[ok][:k], rows[ok][:k]


def to_result(
    catalog: Catalog, item_id: str, score: float, aspect: str, **extra: Any
) -> SearchResult:
    return SearchResult(
        id=item_id,
        score=float(score),
        image=catalog.image_of(item_id),
        metadata=catalog.metadata(item_id),
        aspect=aspect,
        **extra,
    )


def best_per_item(
    scores: np.ndarray, rows: np.ndarray, row_pos: np.ndarray, k: int
) -> list[tuple[int, int, float]]:
    """Collapse row hits (faces, figures) to paintings: best row per painting, top k paintings.
    Returns (item position, row, score)."""
    seen: dict[int, tuple[int, float]] = {}
    for s, r in zip(scores, rows, strict=True):
        if r < 0:
            continue
        pos = int(row_pos[r])
        if pos not in seen or s > seen[pos][1]:
            seen[pos] = (int(r), float(s))
    ranked = sorted(seen.items(), key=lambda kv: -kv[1][1])[:k]
    return [(pos, r, s) for pos, (r, s) in ranked]
