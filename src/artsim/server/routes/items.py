"""Browsing: GET /api/items (filtered pages), /api/items/{id} and its thumbnail."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response

from artsim.errors import ArtsimError
from artsim.server.state import StateDep
from artsim.server.views import aspect_rows, item_card

router = APIRouter(tags=["browse"])


@router.get("/api/items")
def list_items(
    state: StateDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 60,
    where: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """The collection in catalog order, optionally filtered."""
    from artsim.search.filters import fields_mask, parse_where

    c = state.cat()
    ids = c.ids
    conditions = parse_where(where or [])  # a FilterError is a 400 naming the filter
    if conditions:
        mask = fields_mask(c.fields, conditions)
        ids = [i for i, ok in zip(ids, mask, strict=True) if ok] if mask is not None else ids
    page = ids[offset : offset + limit]
    return {
        "total": len(ids),
        "offset": offset,
        "items": [dict(item_card(c, i, state.cards)) for i in page],
    }


@router.get("/api/items/{item_id:path}/thumbnail", response_class=Response)
def thumbnail(
    state: StateDep,
    item_id: str,
    size: Annotated[int, Query(description="Longest side; clamped to 32..1024")] = 256,
) -> Response:
    """A JPEG thumbnail (cached on disk under CATALOG/cache/thumbs/)."""
    c = state.lookup(item_id)
    from artsim.visualize.sheets import render_thumbnail, thumbnail_file, thumbnail_size

    headers = {"Cache-Control": "public, max-age=86400"}
    unavailable = f"the image of painting {item_id!r} is unavailable"
    try:
        path = thumbnail_file(c, item_id, size)
        return FileResponse(path, media_type="image/jpeg", headers=headers)
    except ArtsimError:
        raise HTTPException(404, unavailable) from None
    except OSError:  # read-only catalog: make it in memory
        try:
            im = render_thumbnail(c.item(item_id)["image"], thumbnail_size(size))
        except (ArtsimError, OSError):
            raise HTTPException(404, unavailable) from None
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        return Response(buf.getvalue(), media_type="image/jpeg", headers=headers)


@router.get("/api/items/{item_id:path}")
def item(state: StateDep, item_id: str) -> dict[str, Any]:
    """One painting: metadata, size, and the faces and figures found in it."""
    c = state.lookup(item_id)
    out = dict(item_card(c, item_id, state.cards))
    out["metadata"] = c.item(item_id)["metadata"]
    for aspect, key in (("face", "faces"), ("pose", "poses")):
        out[key] = aspect_rows(c, aspect, item_id) if aspect in c.aspect_names() else None
    return out
