"""What one app holds: the catalog, what is derived from its metadata, and the upload executor."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from artsim.server.errors import scrub
from artsim.server.uploads import UploadExecutor

STATIC_DIR = Path(__file__).with_name("static")


class State:
    """Loaded once per app; routes get it with the StateDep dependency."""

    def __init__(
        self,
        catalog_path: Path,
        catalog: Any | None,
        map_method: str,
        uploads: UploadExecutor,
        limits: dict[str, int],
    ) -> None:
        self.catalog_path = catalog_path
        self.catalog = catalog
        self.map_method = map_method
        self.uploads = uploads
        self.limits = limits
        # what search_upload gets: a path that worker processes open, or the injected object
        self.upload_target: Any = str(catalog_path) if catalog is None else catalog
        self.lock = threading.Lock()
        self.map_lock = threading.Lock()
        self.map: dict[str, Any] | None = None
        self.cards: dict[str, dict[str, Any]] = {}
        self.metadata: list[dict[str, Any]] = []
        self.facets: dict[str, Any] = {}

    def load(self) -> Any:
        with self.lock:
            if self.catalog is None:
                from artsim.catalog import Catalog

                self.catalog = Catalog.open(self.catalog_path)
            if not self.metadata and len(self.catalog):
                from artsim.server.views import facets

                cat = self.catalog
                self.metadata = [cat.item(i)["metadata"] for i in cat.ids]
                self.facets = facets(self.metadata)
                if "global" in cat.aspect_names() and hasattr(cat, "vector_index"):
                    cat.vector_index("global")  # build the index now, not in racing first requests
            return self.catalog

    def cat(self) -> Any:
        return self.catalog if self.catalog is not None and self.metadata else self.load()

    def lookup(self, item_id: str) -> Any:
        c = self.cat()
        if item_id not in c:
            raise HTTPException(404, f"no painting with id {item_id!r} in this catalog")
        return c

    def scrub(self, message: str) -> str:
        return scrub(message, self.catalog_path)


def get_state(request: Request) -> State:
    return request.app.state.artsim


StateDep = Annotated[State, Depends(get_state)]
