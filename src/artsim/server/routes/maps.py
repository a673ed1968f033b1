"""GET /api/map: the whole collection on a 2-D map, computed once and cached."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from artsim.server.state import State, StateDep

router = APIRouter()


@router.get("/api/map", tags=["browse"])
def collection_map(state: StateDep) -> dict[str, Any]:
    """2-D coordinates in [0, 1] of every painting (t-SNE, or PCA for tiny catalogs)."""
    return map_payload(state)


def map_payload(state: State) -> dict[str, Any]:
    with state.map_lock:
        if state.map is None:
            from artsim.visualize.maps import collection_layout
            from artsim.visualize.sheets import display_fields

            c = state.load()
            if "global" not in c.aspect_names():
                raise HTTPException(404, "this catalog has no global vectors to map")
            layout = collection_layout(c, method=state.map_method)
            payload = layout.to_dict()
            labels = []
            for item_id in layout.ids:
                f = display_fields(item_id, c.item(item_id)["metadata"])
                labels.append(" · ".join(v for v in (f["title"], f["artist"], f["date"]) if v))
            payload["labels"] = labels
            state.map = payload
        return state.map
