"""JSON shapes the routes share: painting cards, search results, face and pose rows, facets."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


def thumb_url(item_id: str) -> str:
    return f"/api/items/{quote(item_id, safe='')}/thumbnail"


def item_card(
    c: Any, item_id: str, cache: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Title, artist, date, size and thumbnail address of a painting (cached: they never change
    while the catalog is served)."""
    if cache is not None and item_id in cache:
        return cache[item_id]
    from artsim.visualize.sheets import display_fields

    rec = c.item(item_id)
    card = {
        "id": item_id,
        **display_fields(item_id, rec["metadata"]),
        "width": rec["width"],
        "height": rec["height"],
        "thumbnail": thumb_url(item_id),
    }
    if cache is not None:
        cache[item_id] = card
    return card


def result_json(c: Any, r: Any, cache: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    out = dict(r) if isinstance(r, dict) else r.to_dict()
    out.pop("image", None)  # a server path: never sent out
    card = item_card(c, out["id"], cache)
    out.update({k: v for k, v in card.items() if k != "id"})
    return out


def aspect_rows(c: Any, aspect: str, item_id: str) -> list[dict[str, Any]]:
    data = c.aspect(aspect)
    rows = []
    for r in data.rows_of_item(item_id):
        info = {k: v for k, v in (data.info[r] or {}).items() if k not in ("chip", "path", "image")}
        rows.append({"id": data.row_ids[r], **info})
    return rows


def facets(metadata: list[dict[str, Any]]) -> dict[str, Any]:
    """Artists by count and the year range, for the page's filter controls."""
    from artsim.search.filters import _to_float

    counts: dict[str, int] = {}
    years: list[float] = []
    for meta in metadata:
        artists = meta.get("artist")
        for a in artists if isinstance(artists, list) else [artists]:
            if a not in (None, ""):
                counts[str(a)] = counts.get(str(a), 0) + 1
        for key in ("year", "year_end"):
            y = _to_float(meta.get(key))
            if y is not None:
                years.append(y)
    artists_sorted = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))[:2000]
    return {
        "items": len(metadata),
        "artists": [{"name": a, "count": n} for a, n in artists_sorted],
        "years": {"min": int(min(years)), "max": int(max(years))} if years else None,
    }
