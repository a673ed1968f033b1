"""GET /api/search (from a catalog painting) and POST /api/search (from an uploaded image).

Both convert their parameters and hand them to artsim.search.options.SearchOptions, which
checks them for the CLI and the Python API as well (a bad one is a 400 naming it). Searches by
id run in AnyIO's threads; uploads await the upload executor and never hold one of them.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import warnings
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.requests import ClientDisconnect

from artsim.errors import ArtsimError
from artsim.search.options import SearchOptions
from artsim.server.state import State, StateDep
from artsim.server.uploads import search_upload
from artsim.server.views import result_json

log = logging.getLogger("artsim.server")
router = APIRouter(tags=["search"])

MAX_K = 100
UPLOAD_FORMATS = (
    "JPEG",
    "PNG",
    "TIFF",
    "WEBP",
    "BMP",
    "GIF",
    "AVIF",
    "HEIF",  # phones' photos (pillow-heif: artsim.images.register_heif)
)  # never EPS & co. (external decoders)
NO_URLS = "this server does not fetch URLs: search by catalog id or upload an image"
# name, type, description: the search options as documented for both routes
OPTION_DOCS = (
    ("aspect", "string", "global (overall look), face, pose or fused; default global"),
    ("k", "integer", f"number of results, 1..{MAX_K}; default 12"),
    ("where", "array", "filters, repeatable or ';'-separated: artist=rembrandt, year=1600..1650"),
    ("weights", "string", "fused: e.g. global=1,face=2,pose=0.5"),
    ("mirror", "boolean", "pose, fused: also match left-right mirrored poses"),
    ("face", "integer", "face, fused: which face of the query (0, 1, ...)"),
    ("figure", "integer", "pose, fused: which figure of the query (0, 1, ...)"),
    ("min_score", "number", "pose: only indexed figures scoring at least this (0..1)"),
    ("box", "string", "face, fused: the query face as x,y,w,h pixels"),
    ("identity", "boolean", "face: same sitter (true) or look of the face crop"),
    (
        "photo",
        "string",
        "global, uploads: auto finds the painting in a photo and verifies the "
        "match (results carry quad and inliers, and detail when the photo shows part of "
        "the painting); off searches the whole image as is",
    ),
)


def _params_doc() -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [{
        "name": "id", "in": "query", "required": True,
        "description": "a catalog id (never a URL or a server path)", "schema": {"type": "string"},
    }]  # fmt: skip
    for name, kind, text in OPTION_DOCS:
        schema: dict[str, Any] = {"type": kind}
        if kind == "array":
            schema["items"] = {"type": "string"}
        params.append({"name": name, "in": "query", "required": False, "description": text,
                       "schema": schema})  # fmt: skip
    return params


def parse_options(raw: dict[str, Any]) -> SearchOptions:
    """HTTP parameters (strings) to checked options; an OptionError is answered as 400."""
    raw.setdefault("k", 12)
    return SearchOptions.parse(**raw, max_k=MAX_K)


def check_aspects(c: Any, opts: SearchOptions) -> None:
    """404 when the catalog lacks what the search needs."""
    have = c.aspect_names()
    if opts.aspect != "fused" and opts.aspect not in have:
        raise HTTPException(
            404,
            f"this catalog has no '{opts.aspect}' aspect (index it with --aspects {opts.aspect})",
        )
    missing = [a for a, w in (opts.weights or ()) if w > 0 and a not in have]
    if missing:
        raise HTTPException(
            404, f"this catalog has no {', '.join(repr(m) for m in missing)} aspect to fuse"
        )


def answer(
    state: State, opts: SearchOptions, describe: dict[str, Any], results: list[Any], started: float
) -> JSONResponse:
    c = state.cat()
    return JSONResponse({
        "query": describe,
        "aspect": opts.aspect,
        "k": opts.k,
        "where": list(opts.where),
        "took_ms": round((time.perf_counter() - started) * 1000, 2),
        "count": len(results),
        "results": [result_json(c, r, state.cards) for r in results],
    })  # fmt: skip


def engine_error(state: State, opts: SearchOptions, exc: Exception) -> HTTPException:
    if isinstance(exc, ImportError):
        log.warning("search aspect %s unavailable: %s", opts.aspect, exc)
        return HTTPException(
            501, f"'{opts.aspect}' search is not available in this artsim installation"
        )
    return HTTPException(400, state.scrub(str(exc)))


# parameters are read by hand (one SearchOptions.parse) rather than one FastAPI validation per
# parameter: that halves the server's time per id search (benchmarks/bench_server.py)
@router.get("/api/search", openapi_extra={"parameters": _params_doc()})
def search_by_id(request: Request, state: StateDep) -> JSONResponse:
    """Paintings most like a catalog painting."""
    qp = request.query_params
    if "url" in qp:
        raise HTTPException(400, NO_URLS)
    item_id = qp.get("id")
    if not item_id:
        raise HTTPException(400, "give a catalog id (?id=...) or POST an image to /api/search")
    raw: dict[str, Any] = {name: qp[name] for name, _, _ in OPTION_DOCS if name in qp}
    raw["where"] = qp.getlist("where")
    opts = parse_options(raw)
    c = state.cat()
    if item_id not in c:
        if "://" in item_id or item_id.lower().startswith("file:"):
            raise HTTPException(400, NO_URLS)
        raise HTTPException(404, f"no painting with id {item_id!r} in this catalog")
    check_aspects(c, opts)
    from artsim.search import Query

    started = time.perf_counter()
    try:
        results = c.search(
            Query(item_id=item_id, label=item_id), k=opts.k, aspect=opts.aspect,
            where=list(opts.where) or None, **opts.aspect_options(),
        )  # fmt: skip
    except (ArtsimError, ImportError) as exc:
        raise engine_error(state, opts, exc) from None
    return answer(state, opts, {"id": item_id}, results, started)


def _upload_doc() -> dict[str, Any]:
    """OpenAPI request body of POST /api/search (the form is read by hand, after admission)."""
    props: dict[str, Any] = {
        "file": {"type": "string", "format": "binary",
                 "description": "An image: JPEG, PNG, TIFF, WebP, BMP, GIF, AVIF or HEIC."},
    }  # fmt: skip
    for name, kind, text in OPTION_DOCS:
        props[name] = {"type": kind, "description": text}
        if kind == "array":
            props[name]["items"] = {"type": "string"}
    schema = {"type": "object", "properties": props, "required": ["file"]}
    return {"requestBody": {"required": True,
                            "content": {"multipart/form-data": {"schema": schema}}}}  # fmt: skip


@router.post("/api/search", openapi_extra=_upload_doc())
async def search_by_upload(request: Request, state: StateDep) -> JSONResponse:
    """Paintings most like an uploaded image (multipart field `file`). Parameters as form fields
    or in the query string (a form field wins). When the server is too busy to answer within a
    few seconds it says so at once: 503 with Retry-After, before reading the image."""
    qp = request.query_params
    if "url" in qp:
        raise HTTPException(400, "this server does not fetch URLs: upload the image itself")
    arrived = time.monotonic()
    reservation = state.uploads.admit()  # 503 now, not after the body has been read
    try:
        async with request.form(max_files=1, max_fields=64) as form:
            if form.get("url") is not None:
                raise HTTPException(400, "this server does not fetch URLs: upload the image itself")
            raw: dict[str, Any] = {}
            for name, _, _ in OPTION_DOCS:
                value = form.get(name, qp.get(name))
                if name != "where" and isinstance(value, str):
                    raw[name] = value
            raw["where"] = [w for w in form.getlist("where") if isinstance(w, str)]
            raw["where"] += qp.getlist("where")
            opts = parse_options(raw)
            upload = form.get("file")
            if not isinstance(upload, StarletteUpload):
                raise HTTPException(422, "invalid request: file: Field required")
            data = await _read_upload(upload, state.limits["max_upload_bytes"])
        width, height, fmt = check_image(data, state.limits["max_pixels"])
        c = state.cat()
        check_aspects(c, opts)
        digest = hashlib.sha256(data).hexdigest()
        # the upload is known by its content only: file name and client content-type are ignored
        label = f"upload:{digest[:16]}"
        started = time.perf_counter()
    except ClientDisconnect:  # gone, or cut off by the body limit (which has answered 413)
        reservation.release()
        raise HTTPException(400, "the upload was interrupted") from None
    except BaseException:
        reservation.release()
        raise
    try:
        results = await state.uploads.run_admitted(
            reservation, search_upload, state.upload_target, data, label, opts, started=arrived
        )
    except (ArtsimError, ImportError) as exc:
        raise engine_error(state, opts, exc) from None
    describe = {"upload": {"sha256": digest, "bytes": len(data), "width": width,
                           "height": height, "format": fmt}}  # fmt: skip
    return answer(state, opts, describe, results, started)


async def _read_upload(upload: StarletteUpload, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise HTTPException(413, f"upload is {upload.size:,} bytes; the limit is {limit:,}")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"upload is over the limit of {limit:,} bytes")
    if not data:
        raise HTTPException(400, "the uploaded file is empty")
    return data


def check_image(data: bytes, max_pixels: int) -> tuple[int, int, str]:
    """Identify the upload from its header only: (width, height, format). 415 when it is not one
    of the accepted image formats, 413 when it would decode to more than max_pixels."""
    from PIL import Image, UnidentifiedImageError

    from artsim.images import looks_like_heif, register_heif

    register_heif()  # Pillow's plugins, then pillow-heif's "HEIF" (absent without it)
    formats = tuple(f for f in UPLOAD_FORMATS if f in Image.OPEN)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=formats) as im:
                width, height = im.size
                fmt = im.format or "?"
    except Image.DecompressionBombError as exc:
        raise HTTPException(413, f"image refused: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, RuntimeError):
        hint = (
            "; for HEIC photos the server needs pillow-heif (pip install pillow-heif)"
            if "HEIF" not in formats and looks_like_heif(data[:16])
            else ""
        )
        raise HTTPException(
            415, f"not an image this server reads ({', '.join(formats)}){hint}"
        ) from None
    if width <= 0 or height <= 0:
        raise HTTPException(415, "the image has no pixels")
    if width * height > max_pixels:
        raise HTTPException(
            413,
            f"image is {width}x{height} = {width * height:,} pixels, over this server's limit of {max_pixels:,}",
        )
    return width, height, fmt
