"""HTTP API and web page over one catalog.

Routes (all JSON errors are {"error": message}; see docs/web.md):
  GET  /                                   the web page (static files, no build step, no CDN)
  GET  /api/info                           catalog name, size, aspects, limits
  GET  /api/search?id=...&aspect=...&k=... search from a catalog painting
  POST /api/search                         search from an uploaded image (multipart field `file`)
  GET  /api/items?offset=&limit=&where=    browse the collection
  GET  /api/items/{id}                     one painting: metadata, faces, poses
  GET  /api/items/{id}/thumbnail?size=     JPEG thumbnail from the disk cache
  GET  /api/map                            2-D coordinates of the whole collection
  GET  /api/facets                         artists and year range for the filter controls
  GET  /healthz

Security choices: ids are only ever looked up in the catalog (never joined to a path), uploads
are identified by their sha256 and never written to disk, the server never fetches URLs,
request bodies are capped before they are read, decoded pixels are capped before decoding,
CORS is off unless origins are configured, and errors never carry a stack trace.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artsim.errors import ArtsimError, CatalogError, ImageLoadError

log = logging.getLogger("artsim.server")

STATIC_DIR = Path(__file__).with_name("static")
DEFAULT_MAX_UPLOAD_BYTES = 20_000_000
DEFAULT_MAX_PIXELS = (
    40_000_000  # ~7,300 x 5,500: any museum JPEG a visitor uploads; far below bombs
)
MAX_K = 100
FORM_OVERHEAD_BYTES = 256 * 1024  # multipart boundaries and the small form fields around the file
SEARCH_ASPECTS = ("global", "face", "pose", "fused")
UPLOAD_FORMATS = (
    "JPEG",
    "PNG",
    "TIFF",
    "WEBP",
    "BMP",
    "GIF",
)  # never EPS & co. (external decoders)
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class SearchOptions(BaseModel):
    """Search parameters shared by GET (query string) and POST (form fields or query string)."""

    aspect: str = Field("global", description="global (overall look), face, pose or fused")
    k: int = Field(12, ge=1, le=MAX_K, description="number of results")
    where: list[str] = Field(
        default_factory=list,
        description="filters, repeatable or ';'-separated: artist=rembrandt, year=1600..1650",
    )
    weights: str | None = Field(None, description="fused: e.g. global=1,face=2,pose=0.5")
    mirror: bool = Field(False, description="pose, fused: also match left-right mirrored poses")
    face: int | None = Field(None, ge=0, description="face, fused: which face of the query")
    figure: int | None = Field(None, ge=0, description="pose, fused: which figure of the query")
    min_score: float = Field(
        0.0, ge=0.0, le=1.0, description="pose: only indexed figures scoring at least this"
    )
    box: str | None = Field(None, description="face, fused: the query face as x,y,w,h pixels")
    identity: bool = Field(True, description="face: same sitter (true) or look of the face crop")
    photo: str = Field(
        "auto",
        pattern="^(auto|off)$",
        description="global, uploads: auto finds the painting in a photo and verifies the "
        "match (results carry quad and inliers); off searches the whole image as is",
    )


def _search_params_doc() -> list[dict[str, Any]]:
    """OpenAPI entries for GET /api/search, from SearchOptions (parsed by hand in the route)."""
    schema = SearchOptions.model_json_schema()["properties"]
    params = [
        {
            "name": "id",
            "in": "query",
            "required": True,
            "description": "a catalog id (never a URL or a server path)",
            "schema": {"type": "string"},
        }
    ]
    for name, prop in schema.items():
        doc = {k: v for k, v in prop.items() if k != "description"}
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": prop.get("description", ""),
                "schema": doc,
            }
        )
    return params


class _State:
    """Everything loaded once per app: the catalog and what is derived from its metadata."""

    def __init__(
        self, catalog_path: Path, catalog: Any | None, map_method: str, upload_slots: int
    ) -> None:
        self.catalog_path = catalog_path
        self.upload_slots = threading.BoundedSemaphore(max(1, upload_slots))
        # uploads are analysed in worker processes when we open the catalog ourselves
        self.workers = _UploadWorkers(catalog_path, upload_slots) if catalog is None else None
        self.catalog = catalog
        self.map_method = map_method
        self.lock = threading.Lock()
        self.map_lock = threading.Lock()
        self.encoder_lock = threading.Lock()
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
                cat = self.catalog
                self.metadata = [cat.item(i)["metadata"] for i in cat.ids]
                self.facets = _facets(self.metadata)
                if "global" in cat.aspect_names() and hasattr(cat, "vector_index"):
                    cat.vector_index("global")  # build the index now, not in racing first requests
            return self.catalog


# ---------------------------------------------------------------------- app factory
def create_app(
    catalog_path: str | Path,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    cors_origins: Sequence[str] | None = None,
    catalog: Any | None = None,
    map_method: str = "auto",
    warm: bool = False,
    max_concurrent_uploads: int | None = None,
) -> FastAPI:
    """The FastAPI app serving one catalog.

    catalog: an already opened Catalog (or a stand-in with the same interface, for tests);
    by default the catalog at catalog_path is opened at startup, and uploads are analysed in
    worker processes (with an injected catalog, in the server's threads). warm: start the
    upload workers (encoder loaded) and compute the collection map right after startup, so the
    first upload and map are fast. max_concurrent_uploads: uploaded images analysed at once,
    one worker process each (default: half the CPU cores); more wait their turn, so that
    searches by id stay fast while uploads are busy.
    """
    path = Path(catalog_path)
    if catalog is None and not (path / "manifest.json").is_file():
        raise CatalogError(f"{path}: no artsim catalog here (missing manifest.json)")
    if max_concurrent_uploads is None:
        max_concurrent_uploads = max(1, (os.cpu_count() or 2) // 2)
    state = _State(path, catalog, map_method, max_concurrent_uploads)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(state.load)
        if warm:
            threading.Thread(target=_warm, args=(state,), name="artsim-warm", daemon=True).start()
        try:
            yield
        finally:
            if state.workers is not None:
                state.workers.close()

    app = FastAPI(
        title="artsim",
        summary="Find similar paintings: overall look, faces and poses.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.artsim = state
    app.state.limits = {"max_upload_bytes": int(max_upload_bytes), "max_pixels": int(max_pixels)}
    _install_error_handlers(app, state)

    def cat() -> Any:
        return state.catalog if state.catalog is not None and state.metadata else state.load()

    def scrub(message: str) -> str:
        """Error messages name files; never the server's folders."""
        for p in {str(state.catalog_path.resolve()), str(state.catalog_path)}:
            if p and p not in (".", "/"):
                message = message.replace(p, state.catalog_path.name or "catalog")
        return message

    def lookup(item_id: str) -> Any:
        c = cat()
        if item_id not in c:
            raise HTTPException(404, f"no painting with id {item_id!r} in this catalog")
        return c

    # ------------------------------------------------------------------ page and health
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "items": len(cat())}

    @app.get("/api/info", tags=["meta"])
    def info() -> dict[str, Any]:
        c = cat()
        aspects = list(c.aspect_names())
        searchable = [a for a in ("global", "face", "pose") if a in aspects]
        if "global" in aspects and len(searchable) > 1:
            searchable.append("fused")
        model = getattr(c, "model_name", None)
        return {
            "name": state.catalog_path.name,
            "items": len(c),
            "aspects": aspects,
            "search_aspects": searchable,
            "model": model,
            "limits": app.state.limits,
        }

    @app.get("/api/facets", tags=["browse"])
    def facets() -> dict[str, Any]:
        cat()
        return state.facets

    # ------------------------------------------------------------------ search
    def run_search(query: Any, opts: SearchOptions, describe: dict[str, Any]) -> dict[str, Any]:
        c = cat()
        aspect = opts.aspect
        if aspect not in SEARCH_ASPECTS:
            raise HTTPException(
                400, f"unknown aspect {aspect!r}; choose from {', '.join(SEARCH_ASPECTS)}"
            )
        have = c.aspect_names()
        if aspect in ("face", "pose", "global") and aspect not in have:
            raise HTTPException(
                404, f"this catalog has no '{aspect}' aspect (index it with --aspects {aspect})"
            )
        where = _split_where(opts.where)
        options: dict[str, Any] = {}
        if aspect == "face":
            options = {"face": opts.face, "box": _parse_box(opts.box), "identity": opts.identity}
        elif aspect == "pose":
            options = {"figure": opts.figure, "mirror": opts.mirror, "min_score": opts.min_score}
        elif aspect == "fused":
            weights = _parse_weights(opts.weights)
            missing = [a for a, w in (weights or {}).items() if w > 0 and a not in have]
            if missing:
                raise HTTPException(
                    404, f"this catalog has no {', '.join(repr(m) for m in missing)} aspect to fuse"
                )
            options = {"weights": weights, "mirror": opts.mirror, "face": opts.face,
                       "box": _parse_box(opts.box), "figure": opts.figure}  # fmt: skip
        if aspect == "global" and query.source is not None:  # photo queries (issue 13)
            options["photo"] = opts.photo
        started = time.perf_counter()
        try:
            if query.source is None:
                results = c.search(query, k=opts.k, aspect=aspect, where=where or None, **options)
            elif state.workers is not None:
                results = state.workers.search(
                    query.source, query.label, opts.k, aspect, where, options
                )
            else:  # an injected catalog object: analyse here, a few uploads at a time
                with state.upload_slots:
                    if hasattr(c, "encoder"):
                        with state.encoder_lock:  # loads once, not once per racing thread
                            _ = c.encoder
                    results = c.search(
                        query, k=opts.k, aspect=aspect, where=where or None, **options
                    )
        except ImageLoadError as exc:
            raise HTTPException(400, scrub(str(exc))) from None
        except ImportError as exc:
            log.warning("search aspect %s unavailable: %s", aspect, exc)
            raise HTTPException(
                501, f"'{aspect}' search is not available in this artsim installation"
            ) from None
        except ArtsimError as exc:
            raise HTTPException(400, scrub(str(exc))) from None
        took = (time.perf_counter() - started) * 1000
        return {
            "query": describe,
            "aspect": aspect,
            "k": opts.k,
            "where": where,
            "took_ms": round(took, 2),
            "count": len(results),
            "results": [_result_json(c, r, state.cards) for r in results],
        }

    # parameters parsed by one pydantic validation instead of one per parameter: this halves
    # the server's time per id search (see benchmarks/bench_server.py)
    @app.get("/api/search", tags=["search"], openapi_extra={"parameters": _search_params_doc()})
    def search_by_id(request: Request) -> JSONResponse:
        """Paintings most like a catalog painting."""
        qp = request.query_params
        if "url" in qp:
            raise HTTPException(
                400, "this server does not fetch URLs: search by catalog id or upload an image"
            )
        item_id = qp.get("id")
        if not item_id:
            raise HTTPException(400, "give a catalog id (?id=...) or POST an image to /api/search")
        raw: dict[str, Any] = {name: qp[name] for name in SearchOptions.model_fields if name in qp}
        raw["where"] = qp.getlist("where")
        opts = SearchOptions.model_validate(raw)
        c = cat()
        if item_id not in c:
            if "://" in item_id or item_id.lower().startswith("file:"):
                raise HTTPException(
                    400, "this server does not fetch URLs: search by catalog id or upload an image"
                )
            raise HTTPException(404, f"no painting with id {item_id!r} in this catalog")
        from artsim.search import Query as SearchQuery

        query = SearchQuery(item_id=item_id, label=item_id)
        return JSONResponse(run_search(query, opts, {"id": item_id}))

    @app.post("/api/search", tags=["search"])
    def search_by_upload(
        request: Request,
        file: Annotated[
            UploadFile, File(description="An image: JPEG, PNG, TIFF, WebP, BMP or GIF.")
        ],
        aspect: Annotated[str | None, Form()] = None,
        k: Annotated[int | None, Form(ge=1, le=MAX_K)] = None,
        where: Annotated[list[str] | None, Form()] = None,
        weights: Annotated[str | None, Form()] = None,
        mirror: Annotated[bool | None, Form()] = None,
        face: Annotated[int | None, Form(ge=0)] = None,
        figure: Annotated[int | None, Form(ge=0)] = None,
        box: Annotated[str | None, Form()] = None,
        identity: Annotated[bool | None, Form()] = None,
        min_score: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
        photo: Annotated[str | None, Form()] = None,
        url: Annotated[str | None, Form(include_in_schema=False)] = None,
    ) -> JSONResponse:
        """Paintings most like an uploaded image. Parameters as form fields or in the query string."""
        qp = request.query_params
        if url is not None or "url" in qp:
            raise HTTPException(400, "this server does not fetch URLs: upload the image itself")
        form = {"aspect": aspect, "k": k, "weights": weights, "mirror": mirror, "face": face,
                "figure": figure, "box": box, "identity": identity,
                "min_score": min_score, "photo": photo}  # fmt: skip
        merged: dict[str, Any] = {name: qp[name] for name in form if name in qp}
        merged.update({name: v for name, v in form.items() if v is not None})
        merged["where"] = list(where or []) + qp.getlist("where")
        opts = SearchOptions.model_validate(merged)
        limit = app.state.limits["max_upload_bytes"]
        if file.size is not None and file.size > limit:
            raise HTTPException(413, f"upload is {file.size:,} bytes; the limit is {limit:,}")
        data = file.file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"upload is over the limit of {limit:,} bytes")
        if not data:
            raise HTTPException(400, "the uploaded file is empty")
        width, height, fmt = _check_image(data, app.state.limits["max_pixels"])
        digest = hashlib.sha256(data).hexdigest()
        from artsim.search import Query as SearchQuery

        # the upload is known by its content only: file name and client content-type are ignored
        query = SearchQuery(source=data, label=f"upload:{digest[:16]}")
        describe = {
            "upload": {
                "sha256": digest,
                "bytes": len(data),
                "width": width,
                "height": height,
                "format": fmt,
            }
        }
        return JSONResponse(run_search(query, opts, describe))

    # ------------------------------------------------------------------ items
    @app.get("/api/items", tags=["browse"])
    def list_items(
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 60,
        where: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        """The collection in catalog order, optionally filtered."""
        c = cat()
        ids = c.ids
        clauses = _split_where(where or [])
        if clauses:
            from artsim.search.filters import filter_mask, parse_where

            try:
                mask = filter_mask(state.metadata, parse_where(clauses))
            except ArtsimError as exc:
                raise HTTPException(400, str(exc)) from None
            ids = [i for i, ok in zip(ids, mask, strict=True) if ok] if mask is not None else ids
        page = ids[offset : offset + limit]
        return {
            "total": len(ids),
            "offset": offset,
            "items": [dict(_item_card(c, i, state.cards)) for i in page],
        }

    @app.get("/api/items/{item_id:path}/thumbnail", tags=["browse"], response_class=Response)
    def thumbnail(
        item_id: str,
        size: Annotated[int, Query(description="Longest side; clamped to 32..1024")] = 256,
    ):
        """A JPEG thumbnail (cached on disk under CATALOG/cache/thumbs/)."""
        c = lookup(item_id)
        from artsim.visualize.sheets import render_thumbnail, thumbnail_file, thumbnail_size

        headers = {"Cache-Control": "public, max-age=86400"}
        try:
            path = thumbnail_file(c, item_id, size)
            return FileResponse(path, media_type="image/jpeg", headers=headers)
        except ArtsimError:
            raise HTTPException(404, f"the image of painting {item_id!r} is unavailable") from None
        except OSError:  # read-only catalog: make it in memory
            try:
                im = render_thumbnail(c.item(item_id)["image"], thumbnail_size(size))
            except ArtsimError:
                raise HTTPException(
                    404, f"the image of painting {item_id!r} is unavailable"
                ) from None
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85)
            return Response(buf.getvalue(), media_type="image/jpeg", headers=headers)

    @app.get("/api/items/{item_id:path}", tags=["browse"])
    def item(item_id: str) -> dict[str, Any]:
        """One painting: metadata, size, and the faces and figures found in it."""
        c = lookup(item_id)
        out = dict(_item_card(c, item_id, state.cards))
        out["metadata"] = c.item(item_id)["metadata"]
        for aspect, key in (("face", "faces"), ("pose", "poses")):
            out[key] = _aspect_rows(c, aspect, item_id) if aspect in c.aspect_names() else None
        return out

    # ------------------------------------------------------------------ map
    @app.get("/api/map", tags=["browse"])
    def collection_map() -> dict[str, Any]:
        """2-D coordinates in [0, 1] of every painting (t-SNE, or PCA for tiny catalogs)."""
        return _map_payload(state)

    # added innermost first: security headers wrap everything, so 413s and CORS replies carry them too
    app.add_middleware(_BodyLimit, limit=int(max_upload_bytes) + FORM_OVERHEAD_BYTES)
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(_SecurityHeaders)
    return app


# ---------------------------------------------------------------------- helpers
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("artsim")
    except Exception:
        return "0"


def _warm(state: _State) -> None:
    """Start the upload workers (catalog and encoder loaded) and compute the map, in the
    background after startup."""
    try:
        state.load()
        if state.workers is not None:
            state.workers.warm()
        _map_payload(state)
    except Exception:
        log.exception("warm-up failed (the server still works; first requests will be slower)")


def _map_payload(state: _State) -> dict[str, Any]:
    with state.map_lock:
        if state.map is None:
            from artsim.visualize.maps import collection_layout

            c = state.load()
            if "global" not in c.aspect_names():
                raise HTTPException(404, "this catalog has no global vectors to map")
            layout = collection_layout(c, method=state.map_method)
            payload = layout.to_dict()
            from artsim.visualize.sheets import display_fields

            labels = []
            for item_id in layout.ids:
                f = display_fields(item_id, c.item(item_id)["metadata"])
                labels.append(" · ".join(v for v in (f["title"], f["artist"], f["date"]) if v))
            payload["labels"] = labels
            state.map = payload
        return state.map


def _thumb_url(item_id: str) -> str:
    return f"/api/items/{quote(item_id, safe='')}/thumbnail"


def _item_card(
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
        "thumbnail": _thumb_url(item_id),
    }
    if cache is not None:
        cache[item_id] = card
    return card


def _result_json(c: Any, r: Any, cache: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    out = dict(r) if isinstance(r, dict) else r.to_dict()
    out.pop("image", None)  # a server path: never sent out
    card = _item_card(c, out["id"], cache)
    out.update({k: v for k, v in card.items() if k != "id"})
    return out


def _aspect_rows(c: Any, aspect: str, item_id: str) -> list[dict[str, Any]]:
    data = c.aspect(aspect)
    rows = []
    for r in data.rows_of_item(item_id):
        info = {k: v for k, v in (data.info[r] or {}).items() if k not in ("chip", "path", "image")}
        rows.append({"id": data.row_ids[r], **info})
    return rows


def _facets(metadata: list[dict[str, Any]]) -> dict[str, Any]:
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


# a ';' starts a new filter only when a FIELD<op> follows: "artist==A; B" keeps NGA's joined names
_WHERE_SPLIT = re.compile(r";\s*(?=[A-Za-z_][\w.]*\s*(?:==|!=|>=|<=|=|>|<))")


def _split_where(clauses: Sequence[str]) -> list[str]:
    parts = (part.strip(" \t;") for clause in clauses for part in _WHERE_SPLIT.split(clause))
    return [p for p in parts if p]


def _parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    from artsim.search.faces import parse_box

    try:
        return parse_box(text)
    except ArtsimError as exc:
        raise HTTPException(400, f"box {exc}") from None


def _parse_weights(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in ("global", "face", "pose"):
            raise HTTPException(
                400, f"weights {text!r}: unknown aspect {name!r} (global, face, pose)"
            )
        try:
            w = float(value)
        except ValueError:
            raise HTTPException(
                400, f"weights {text!r}: expected e.g. global=1,face=2,pose=0.5"
            ) from None
        if not (w >= 0 and w < float("inf")):
            raise HTTPException(400, f"weights {text!r}: weights must be finite and >= 0")
        out[name] = w
    if not any(out.values()):
        raise HTTPException(400, f"weights {text!r}: at least one weight must be positive")
    return out


def _check_image(data: bytes, max_pixels: int) -> tuple[int, int, str]:
    """Identify the upload from its header only: (width, height, format). 415 when it is not one
    of the accepted image formats, 413 when it would decode to more than max_pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as im:
                width, height = im.size
                fmt = im.format or "?"
    except Image.DecompressionBombError as exc:
        raise HTTPException(413, f"image refused: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise HTTPException(
            415, f"not an image this server reads ({', '.join(UPLOAD_FORMATS)})"
        ) from None
    if width <= 0 or height <= 0:
        raise HTTPException(415, "the image has no pixels")
    if width * height > max_pixels:
        raise HTTPException(
            413,
            f"image is {width}x{height} = {width * height:,} pixels, over this server's limit of {max_pixels:,}",
        )
    return width, height, fmt


# ---------------------------------------------------------------------- upload workers
class _UploadWorkers:
    """Searches from uploaded images run in worker processes, each with its own copy of the
    catalog and models. In the server process the encoder and detectors starved the event loop
    (they hold the GIL between their many short native calls) and searches by id waited behind
    them; workers also run at a lower CPU priority (nice +5), so id searches answer first.

    Workers are plain subprocesses (`python -c ...`) speaking length-prefixed pickles over
    pipes, not multiprocessing: spawn re-imports the caller's __main__, which breaks scripts
    that create the app at top level. `processes` run at once; past `max_waiting` queued
    uploads the server answers 503 rather than queueing without bound."""

    def __init__(self, catalog_path: Path, processes: int, max_waiting: int | None = None) -> None:
        import queue

        self.catalog_path = str(catalog_path)
        self.processes = max(1, processes)
        self.max_waiting = max_waiting or 16 * self.processes
        self._lock = threading.Lock()
        self._waiting = 0
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        cores = os.cpu_count() or 2
        self._threads = max(1, cores // self.processes - (1 if cores > 2 else 0))
        for _ in range(self.processes):
            w = _Worker(self.catalog_path, self._threads)
            self._all.append(w)
            self._idle.put(w)

    def _call(self, request: tuple) -> Any:
        worker = self._idle.get()
        try:
            return worker.call(request)
        finally:
            self._idle.put(worker)

    def warm(self) -> None:
        workers = [self._idle.get() for _ in range(self.processes)]
        try:
            for w in workers:
                w.call(("warm",))
        finally:
            for w in workers:
                self._idle.put(w)

    def search(
        self, data: Any, label: str, k: int, aspect: str, where: list[str], options: dict
    ) -> list[dict]:
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise HTTPException(
                    503,
                    "too many uploads in progress; try again in a moment",
                    headers={"Retry-After": "5"},
                )
            self._waiting += 1
        try:
            return self._call(("search", data, label, k, aspect, where, options))
        finally:
            with self._lock:
                self._waiting -= 1

    def close(self) -> None:
        for w in self._all:
            w.stop()


class _Worker:
    """One worker subprocess, started on first use and restarted if it dies."""

    def __init__(self, catalog_path: str, threads: int) -> None:
        self.catalog_path = catalog_path
        self.threads = threads
        self.proc: Any = None

    def _start(self) -> None:
        import subprocess
        import sys

        env = {**os.environ, "ARTSIM_WORKER_THREADS": str(self.threads)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from artsim.server.app import _worker_main; _worker_main()",
                self.catalog_path,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def call(self, request: tuple) -> Any:
        import pickle

        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            _send(self.proc.stdin, pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
            reply = pickle.loads(_receive(self.proc.stdout))
        except (OSError, EOFError, pickle.UnpicklingError):
            log.error("an upload worker died (out of memory?); it restarts on the next upload")
            self.stop()
            raise HTTPException(503, "the image analysis worker failed; try again") from None
        status, payload = reply
        if status == "ok":
            return payload
        kind, message = payload
        errors = {
            "ImageLoadError": ImageLoadError,
            "ArtsimError": ArtsimError,
            "ImportError": ImportError,
        }
        if kind in errors:
            raise errors[kind](message)
        raise RuntimeError(f"upload worker: {kind}: {message}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # the worker exits at end of input
        try:
            proc.wait(timeout=5)
        except Exception:
            proc.kill()
            proc.wait()


def _send(stream: Any, payload: bytes) -> None:
    stream.write(len(payload).to_bytes(8, "big") + payload)
    stream.flush()


def _receive(stream: Any) -> bytes:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("worker closed its pipe")
    size = int.from_bytes(head, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("worker closed its pipe")
    return data


def _warm_worker(catalog: Any) -> None:
    """Load what uploads need: the encoder, and the face and pose models (by searching a blank
    image, which finds nothing)."""
    from PIL import Image

    from artsim.search import Query as SearchQuery

    if "global" in catalog.aspect_names():
        _ = catalog.encoder
        catalog.vector_index("global")
    blank = Image.new("RGB", (64, 64), (128, 128, 128))
    for aspect in ("face", "pose"):
        if aspect in catalog.aspect_names():
            with contextlib.suppress(ArtsimError, ImportError):
                catalog.search(SearchQuery(source=blank, label="warm-up"), k=1, aspect=aspect)


def _worker_main() -> None:
    """Entry point of an upload worker: requests on stdin, replies on the original stdout."""
    import pickle
    import sys

    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever libraries print goes to stderr, not into the replies
    proto_in = sys.stdin.buffer
    with contextlib.suppress(OSError):
        os.nice(5)  # below the server process: searches by id answer first
    threads = int(os.environ.get("ARTSIM_WORKER_THREADS", "1"))
    from artsim.catalog import Catalog
    from artsim.search import Query as SearchQuery

    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)
    catalog = Catalog.open(sys.argv[1])
    while True:
        try:
            request = pickle.loads(_receive(proto_in))
        except EOFError:
            return
        try:
            if request[0] == "warm":
                _warm_worker(catalog)
                reply: tuple = ("ok", None)
            else:
                _, data, label, k, aspect, where, options = request
                query = SearchQuery(source=data, label=label)
                results = catalog.search(query, k=k, aspect=aspect, where=where or None, **options)
                reply = ("ok", [r.to_dict() for r in results])
        except ImageLoadError as exc:
            reply = ("error", ("ImageLoadError", str(exc)))
        except ArtsimError as exc:
            reply = ("error", ("ArtsimError", str(exc)))
        except ImportError as exc:
            reply = ("error", ("ImportError", str(exc)))
        except Exception as exc:  # reported to the server, which logs it and answers 500
            reply = ("error", (type(exc).__name__, str(exc)))
        _send(proto_out, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


# ---------------------------------------------------------------------- errors
def _install_error_handlers(app: FastAPI, state: _State) -> None:
    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    def validation_message(errors: Sequence[dict[str, Any]]) -> str:
        parts = []
        for e in errors[:5]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body"))
            parts.append(
                f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg", "invalid"))
            )
        return "invalid request: " + "; ".join(parts)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, validation_message(exc.errors()))

    @app.exception_handler(ValidationError)
    async def model_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        return error(422, validation_message(exc.errors()))

    @app.exception_handler(ArtsimError)
    async def artsim_error(request: Request, exc: ArtsimError) -> JSONResponse:
        message = str(exc).replace(str(state.catalog_path.resolve()), state.catalog_path.name)
        return error(400, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, "internal server error (details are in the server log)")


# ---------------------------------------------------------------------- ASGI wrappers
class _BodyLimit:
    """Refuse request bodies over `limit` bytes with 413 before reading them: by Content-Length
    when the client sends one, else by counting the stream as it arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _json(send, 400, "invalid Content-Length header")
                    return
        if length is not None and length > self.limit:
            await _json(
                send, 413, f"request body of {length:,} bytes is over the limit of {self.limit:,}"
            )
            return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    await _json(
                        send, 413, f"request body is over the limit of {self.limit:,} bytes"
                    )
                    return {
                        "type": "http.disconnect"
                    }  # the app stops parsing; its reply is dropped
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded_send)


class _SecurityHeaders:
    """nosniff and no-referrer everywhere, and a strict Content-Security-Policy on the page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if page:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _json(send: Send, status: int, message: str) -> None:
    import json

    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
