"""A 2-D map of a collection: every painting placed by its global vector, similar ones close.

The layout is t-SNE (after PCA to 50 dimensions) for collections of 30 paintings or more and
plain PCA below that, where t-SNE's neighbourhoods are meaningless. It is computed once per
catalog and cached in CATALOG/cache/map.json, keyed on the ids it covers, so adding paintings
recomputes it and nothing else does.

`collection_map(catalog, "map.png")` draws it with matplotlib, thumbnails at the coordinates;
`collection_map(catalog, "map.html")` writes one self-contained page (thumbnails embedded as
base64, pan and zoom in plain JavaScript, no network).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artsim.catalog.store import writer_tag
from artsim.errors import ArtsimError

MAP_CACHE_VERSION = 1
TSNE_MIN_ITEMS = 30  # below this t-SNE has too few neighbours to mean anything: PCA instead
PCA_DIMS = 50
LAYOUT_METHODS = ("auto", "tsne", "pca")


@dataclass(frozen=True, slots=True)
class MapLayout:
    """2-D coordinates in [0, 1] (aspect kept, centred) for the paintings of a catalog."""

    ids: list[str]
    xy: np.ndarray  # (n, 2) float32
    method: str  # "tsne", "pca" or "none" (fewer than 2 paintings)

    def to_dict(self, decimals: int = 4) -> dict[str, Any]:
        return {
            "method": self.method,
            "count": len(self.ids),
            "ids": list(self.ids),
            "x": [round(float(v), decimals) for v in self.xy[:, 0]],
            "y": [round(float(v), decimals) for v in self.xy[:, 1]],
        }


def layout_2d(
    vectors: np.ndarray, *, method: str = "auto", seed: int = 0
) -> tuple[np.ndarray, str]:
    """Project (n, d) vectors to (n, 2) coordinates in [0, 1]. Returns (coordinates, method used)."""
    if method not in LAYOUT_METHODS:
        raise ArtsimError(f"unknown map method {method!r}; choose from {', '.join(LAYOUT_METHODS)}")
    x = np.asarray(vectors, dtype=np.float32)
    n = x.shape[0]
    if n == 0:
        return np.zeros((0, 2), np.float32), "none"
    if n == 1:
        return np.full((1, 2), 0.5, np.float32), "none"
    use_tsne = method == "tsne" or (method == "auto" and n >= TSNE_MIN_ITEMS)
    if use_tsne and n < 4:
        use_tsne = False  # t-SNE needs perplexity < n; nothing to learn from 3 points anyway
    from threadpoolctl import threadpool_limits

    # one BLAS/OpenMP thread: on a shared 2-core server oversubscribed OpenMP made t-SNE 4x slower
    with threadpool_limits(limits=1):
        xy, used = _project(x, use_tsne, seed)
    return _normalise(np.asarray(xy, dtype=np.float64)), used


def _project(x: np.ndarray, use_tsne: bool, seed: int) -> tuple[np.ndarray, str]:
    from sklearn.decomposition import PCA

    n = x.shape[0]
    if use_tsne:
        from sklearn.manifold import TSNE

        dims = min(PCA_DIMS, n, x.shape[1])
        reduced = (
            PCA(n_components=dims, random_state=seed).fit_transform(x) if x.shape[1] > dims else x
        )
        perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
        xy = TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            learning_rate="auto",
            random_state=seed,
        ).fit_transform(reduced)
        used = "tsne"
    else:
        comps = min(2, n, x.shape[1])
        xy = PCA(n_components=comps, random_state=seed).fit_transform(x)
        if comps < 2:
            xy = np.pad(xy, ((0, 0), (0, 2 - comps)))
        used = "pca"
    return xy, used


def _normalise(xy: np.ndarray) -> np.ndarray:
    """Scale both axes by the same factor into [0, 1] and centre the shorter one."""
    lo = xy.min(axis=0)
    span = xy.max(axis=0) - lo
    scale = float(span.max()) or 1.0
    out = (xy - lo) / scale
    out += (1.0 - span / scale) / 2.0
    return out.astype(np.float32)


def _ids_digest(ids: list[str]) -> str:
    h = hashlib.sha256()
    for item_id in ids:
        h.update(item_id.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def map_cache_path(catalog_path: str | Path) -> Path:
    return Path(catalog_path) / "cache" / "map.json"


def collection_layout(
    catalog: Any, *, method: str = "auto", cache: bool = True, seed: int = 0
) -> MapLayout:
    """The catalog's map, from the disk cache when it still covers exactly the catalog's paintings."""
    data = catalog.aspect("global")
    ids = list(data.item_ids)
    digest = _ids_digest(ids)
    path = map_cache_path(catalog.path)
    if cache and path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if (
                saved.get("version") == MAP_CACHE_VERSION
                and saved.get("count") == len(ids)
                and saved.get("ids_sha256") == digest
                and saved.get("requested") == method
                and saved.get("seed") == seed
            ):
                xy = np.array([saved["x"], saved["y"]], dtype=np.float32).T.reshape(-1, 2)
                return MapLayout(ids, xy, saved["method"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable or stale cache: recompute below
    vectors = data.vectors["global"]
    xy, used = layout_2d(vectors, method=method, seed=seed)
    layout = MapLayout(ids, xy, used)
    if cache:
        record = {
            "version": MAP_CACHE_VERSION,
            "count": len(ids),
            "ids_sha256": digest,
            "requested": method,
            "seed": seed,
            "method": used,
            "x": xy[:, 0].tolist(),
            "y": xy[:, 1].tolist(),
        }
        with contextlib.suppress(OSError):  # a read-only catalog still gets its map, uncached
            _atomic_write(path, json.dumps(record).encode())
    return layout


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".{writer_tag()}.tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; maps are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------- drawing
def collection_map(
    catalog: Any,
    out_path: str | Path,
    *,
    method: str = "auto",
    thumb_size: int | None = None,
    title: str | None = None,
) -> Path:
    """Draw the collection map to a .png (matplotlib) or a self-contained interactive .html."""
    out = Path(out_path)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise ArtsimError(
            f"{out}: the map is written as .png or .html, not {suffix or 'no suffix'}"
        )
    layout = collection_layout(catalog, method=method)
    if not layout.ids:
        raise ArtsimError(f"catalog {catalog.path} has no paintings to map")
    out.parent.mkdir(parents=True, exist_ok=True)
    label = title or f"{Path(catalog.path).name}: {len(layout.ids)} paintings ({layout.method})"
    n = len(layout.ids)
    if suffix == ".png":
        _map_png(catalog, layout, out, thumb_size or _auto_thumb(n, _png_side(n), 160), label)
    else:
        _map_html(catalog, layout, out, thumb_size or _auto_thumb(n, 1000, 96), label)
    return out


def _png_side(n: int) -> int:
    return 1500 if n <= 300 else 2100  # pixels of the square plot


def _auto_thumb(n: int, side: int, largest: int) -> int:
    # about the spacing between neighbours: large thumbnails for small collections, and a
    # 5,000-painting HTML page stays under ~10 MB
    return int(max(24, min(largest, 0.8 * side / max(n, 1) ** 0.5)))


def _thumb(catalog: Any, item_id: str, size: int):
    from artsim.visualize.sheets import load_thumbnail

    try:
        return load_thumbnail(catalog, item_id, size)
    except (ArtsimError, OSError):
        return None


def _map_png(catalog: Any, layout: MapLayout, out: Path, thumb: int, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    dpi = 150
    inches = _png_side(len(layout.ids)) / dpi
    fig, ax = plt.subplots(figsize=(inches, inches), dpi=dpi)
    try:
        ax.scatter(layout.xy[:, 0], layout.xy[:, 1], s=2, c="#999999")
        # thumbnails of thumb pixels on a page of inches*dpi pixels; OffsetImage zoom is in points
        zoom = 72.0 / dpi
        for item_id, (x, y) in zip(layout.ids, layout.xy, strict=True):
            im = _thumb(catalog, item_id, thumb)
            if im is None:
                continue
            im.thumbnail((thumb, thumb))
            box = AnnotationBbox(
                OffsetImage(np.asarray(im), zoom=zoom), (float(x), float(y)), frameon=False, pad=0
            )
            ax.add_artist(box)
        margin = 0.04
        ax.set_xlim(-margin, 1 + margin)
        ax.set_ylim(1 + margin, -margin)  # y down, as on the web page
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(label)
        fig.savefig(out, dpi=dpi, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)


def _map_html(catalog: Any, layout: MapLayout, out: Path, thumb: int, label: str) -> None:
    from artsim.visualize.sheets import display_fields

    points = []
    for item_id, (x, y) in zip(layout.ids, layout.xy, strict=True):
        im = _thumb(catalog, item_id, thumb)
        src = ""
        if im is not None:
            im.thumbnail((thumb, thumb))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=75)
            src = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        fields = display_fields(item_id, catalog.item(item_id)["metadata"])
        caption = " · ".join(v for v in (fields["title"], fields["artist"], fields["date"]) if v)
        points.append(
            {
                "id": item_id,
                "x": round(float(x), 5),
                "y": round(float(y), 5),
                "t": caption,
                "src": src,
            }
        )
    # json in a <script type=application/json> block: '</' escaped so no text can close the tag
    payload = json.dumps({"points": points, "thumb": thumb}, ensure_ascii=False).replace(
        "</", "<\\/"
    )
    page = _HTML_TEMPLATE.replace("__TITLE__", html.escape(label)).replace("__DATA__", payload)
    _atomic_write(out, page.encode("utf-8"))


_HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
html,body{margin:0;height:100%;background:#1d1d1f;color:#eee;font:14px system-ui,sans-serif;overflow:hidden}
header{position:absolute;top:0;left:0;right:0;padding:8px 12px;background:rgba(0,0,0,.55);pointer-events:none}
#tip{position:absolute;display:none;padding:4px 8px;background:#000c;border-radius:4px;pointer-events:none;max-width:320px}
canvas{display:block;width:100%;height:100%;cursor:grab}
</style></head><body>
<header>__TITLE__ &mdash; wheel to zoom, drag to pan, hover for titles</header>
<canvas id="c"></canvas><div id="tip"></div>
<script type="application/json" id="data">__DATA__</script>
<script>
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("data").textContent);
  const pts = data.points, canvas = document.getElementById("c"), tip = document.getElementById("tip");
  const ctx = canvas.getContext("2d");
  const imgs = pts.map(function (p) { if (!p.src) return null; const im = new Image(); im.onload = draw; im.src = p.src; return im; });
  let scale = 1, ox = 0, oy = 0, dpr = 1, drag = null, queued = false;
  function fit() {
    dpr = window.devicePixelRatio || 1;
    canvas.width = canvas.clientWidth * dpr; canvas.height = canvas.clientHeight * dpr;
    const s = Math.min(canvas.clientWidth, canvas.clientHeight) * 0.9;
    scale = s; ox = (canvas.clientWidth - s) / 2; oy = (canvas.clientHeight - s) / 2; draw();
  }
  function draw() { if (!queued) { queued = true; requestAnimationFrame(render); } }
  function render() {
    queued = false;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
    const size = Math.max(6, Math.min(data.thumb * 2, scale / Math.sqrt(pts.length) * 0.9));
    for (let i = 0; i < pts.length; i++) {
      const x = ox + pts[i].x * scale, y = oy + pts[i].y * scale;
      if (x < -size || y < -size || x > canvas.clientWidth + size || y > canvas.clientHeight + size) continue;
      const im = imgs[i];
      if (im && im.complete && im.naturalWidth) {
        const r = Math.min(size / im.naturalWidth, size / im.naturalHeight);
        const w = im.naturalWidth * r, h = im.naturalHeight * r;
        ctx.drawImage(im, x - w / 2, y - h / 2, w, h);
      } else { ctx.fillStyle = "#888"; ctx.fillRect(x - 2, y - 2, 4, 4); }
    }
  }
  function nearest(mx, my) {
    let best = -1, bd = 400;
    for (let i = 0; i < pts.length; i++) {
      const dx = ox + pts[i].x * scale - mx, dy = oy + pts[i].y * scale - my, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    const f = Math.exp(-e.deltaY * 0.0015), r = canvas.getBoundingClientRect();
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    ox = mx - (mx - ox) * f; oy = my - (my - oy) * f; scale *= f; draw();
  }, { passive: false });
  canvas.addEventListener("mousedown", function (e) { drag = { x: e.clientX, y: e.clientY }; canvas.style.cursor = "grabbing"; });
  window.addEventListener("mouseup", function () { drag = null; canvas.style.cursor = "grab"; });
  window.addEventListener("mousemove", function (e) {
    if (drag) { ox += e.clientX - drag.x; oy += e.clientY - drag.y; drag = { x: e.clientX, y: e.clientY }; draw(); return; }
    const r = canvas.getBoundingClientRect(), i = nearest(e.clientX - r.left, e.clientY - r.top);
    if (i < 0) { tip.style.display = "none"; return; }
    tip.textContent = pts[i].t || pts[i].id; tip.style.display = "block";
    tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px";
  });
  window.addEventListener("resize", fit);
  fit();
})();
</script></body></html>
"""
