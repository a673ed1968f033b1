"""The web page, its static files, /healthz, /api/info and /api/facets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from artsim.server.state import STATIC_DIR, StateDep

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/healthz", tags=["meta"])
def healthz(state: StateDep) -> dict[str, Any]:
    return {"status": "ok", "items": len(state.cat())}


@router.get("/api/info", tags=["meta"])
def info(state: StateDep) -> dict[str, Any]:
    c = state.cat()
    aspects = list(c.aspect_names())
    searchable = [a for a in ("global", "face", "pose") if a in aspects]
    if "global" in aspects and len(searchable) > 1:
        searchable.append("fused")
    return {
        "name": state.catalog_path.name,
        "items": len(c),
        "aspects": aspects,
        "search_aspects": searchable,
        "model": getattr(c, "model_name", None),
        "limits": state.limits,
        "uploads": state.uploads.stats(),
    }


@router.get("/api/facets", tags=["browse"])
def facets(state: StateDep) -> dict[str, Any]:
    state.cat()
    return state.facets
