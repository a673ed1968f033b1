// artsim web page: plain JavaScript, no build step, no third-party code.
// Talks to the JSON API of artsim.server.app; every painting is known by its catalog id.
(function () {
  "use strict";

  // BlazePose's 33-keypoint skeleton (mediapipe POSE_CONNECTIONS)
  const POSE_CONNECTIONS = [
    [0, 1], [1, 2], [2, 3], [3, 7], [0, 4], [4, 5], [5, 6], [6, 8], [9, 10],
    [11, 12], [11, 13], [13, 15], [15, 17], [15, 19], [15, 21], [17, 19],
    [12, 14], [14, 16], [16, 18], [16, 20], [16, 22], [18, 20],
    [11, 23], [12, 24], [23, 24], [23, 25], [24, 26], [25, 27], [26, 28],
    [27, 29], [28, 30], [29, 31], [30, 32], [27, 31], [28, 32],
  ];
  const ASPECT_LABEL = { global: "overall look", face: "face", pose: "pose", fused: "fused" };
  const PAGE = 48;
  const CLEAR_FIGURE_SCORE = 0.4; // pose score below which figures are mostly invented (docs/poses.md)

  const $ = (sel) => document.querySelector(sel);
  const state = {
    info: null,
    facets: null,
    view: "browse",
    query: null, // {kind: "id", id, label} | {kind: "upload", file, url, label}
    browseOffset: 0,
    browseTotal: null,
    browseLoading: false,
    searchSeq: 0,
    map: null,
  };

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children || []) if (c) node.appendChild(c);
    return node;
  }

  function thumbSize(px) {
    return Math.round(px * Math.min(2, window.devicePixelRatio || 1));
  }

  function thumbUrl(id, px) {
    return "/api/items/" + encodeURIComponent(id) + "/thumbnail?size=" + thumbSize(px);
  }

  function setStatus(text, isError) {
    const s = $("#status");
    s.textContent = text || "";
    s.classList.toggle("error", !!isError);
  }

  // retries: how many times a 503 (server busy with uploads) is tried again after its Retry-After
  async function api(url, options, retries) {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(url, options);
      let body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      if (res.ok) return body;
      const wait = Number(res.headers.get("Retry-After"));
      if (res.status === 503 && attempt < (retries || 0) && wait > 0 && wait <= 10) {
        setStatus("the server is busy; trying again in " + wait + " s…");
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        continue;
      }
      const msg = body && body.error ? body.error : res.status + " " + res.statusText;
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
  }

  function currentAspect() {
    const checked = document.querySelector('input[name="aspect"]:checked');
    return checked ? checked.value : "global";
  }

  function filters() {
    const where = [];
    const artist = $("#artist").value;
    if (artist) where.push("artist==" + artist);
    const from = $("#year-from").value.trim(), to = $("#year-to").value.trim();
    if (from || to) where.push("year=" + from + ".." + to);
    return where;
  }

  function searchParams() {
    const p = new URLSearchParams();
    const aspect = currentAspect();
    p.set("aspect", aspect);
    p.set("k", $("#k").value);
    for (const w of filters()) p.append("where", w);
    if (aspect === "fused") {
      p.set("weights", ["global", "face", "pose"].map((a) => a + "=" + $("#w-" + a).value).join(","));
    }
    if ((aspect === "pose" || aspect === "fused") && $("#mirror").checked) p.set("mirror", "true");
    if (aspect === "pose" && $("#clear-figures").checked) p.set("min_score", String(CLEAR_FIGURE_SCORE));
    return p;
  }

  // ------------------------------------------------------------------ overlays
  // Boxes and keypoints come in original-image pixels; the canvas covers the shown thumbnail.
  function drawOverlay(canvas, img, item, marks) {
    const w = img.clientWidth, h = img.clientHeight;
    // details come in [0, 1] of the painting; boxes and keypoints need its size
    if (!w || !h || (!item.width && !marks.every((m) => m.detail))) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const sx = w / item.width, sy = h / item.height;
    const lw = Math.max(1.5, Math.min(w, h) / 90);
    for (const m of marks) {
      if (m.keypoints && m.keypoints.length) {
        const vis = m.visibility || null;
        const ok = (i) => i < m.keypoints.length && (!vis || vis[i] === undefined || vis[i] >= 0.5);
        ctx.strokeStyle = "#00dcff";
        ctx.lineWidth = lw;
        ctx.lineCap = "round";
        ctx.beginPath();
        for (const [a, b] of POSE_CONNECTIONS) {
          if (!ok(a) || !ok(b)) continue;
          ctx.moveTo(m.keypoints[a][0] * sx, m.keypoints[a][1] * sy);
          ctx.lineTo(m.keypoints[b][0] * sx, m.keypoints[b][1] * sy);
        }
        ctx.stroke();
        ctx.fillStyle = "#ff3c78";
        for (let i = 0; i < m.keypoints.length; i++) {
          if (!ok(i)) continue;
          ctx.beginPath();
          ctx.arc(m.keypoints[i][0] * sx, m.keypoints[i][1] * sy, lw * 1.2, 0, Math.PI * 2);
          ctx.fill();
        }
      }
      if (m.detail) {
        ctx.strokeStyle = "#ffd400";
        ctx.lineWidth = lw;
        ctx.setLineDash([3 * lw, 2 * lw]);
        ctx.beginPath();
        m.detail.forEach(([x, y], j) => (j ? ctx.lineTo(x * w, y * h) : ctx.moveTo(x * w, y * h)));
        ctx.closePath();
        ctx.stroke();
        ctx.setLineDash([]);
      }
      if (m.box && m.box.length >= 4) {
        ctx.strokeStyle = "#ffd60a";
        ctx.lineWidth = lw;
        ctx.strokeRect(m.box[0] * sx, m.box[1] * sy, m.box[2] * sx, m.box[3] * sy);
      }
    }
    canvas.dataset.marks = String(marks.length);
  }

  function marksOf(result) {
    // a photo of a detail: where in the painting the photo was taken
    if (result.detail) return [{ detail: result.detail }];
    // a pose result's box is the figure's extent: only matched faces are boxed
    const box = result.box && (result.face_id || !result.keypoints) ? result.box : null;
    if (box || result.keypoints) return [{ box: box, keypoints: result.keypoints }];
    return [];
  }

  // ------------------------------------------------------------------ cards and grid
  function card(item, opts) {
    const img = el("img", { src: thumbUrl(item.id, 200), alt: item.title || item.id, loading: "lazy", decoding: "async" });
    const overlay = el("canvas", { class: "overlay" });
    const marks = marksOf(item);
    if (marks.length) {
      const paint = () => drawOverlay(overlay, img, item, marks);
      img.addEventListener("load", paint);
      if (img.complete) requestAnimationFrame(paint);
    }
    const thumb = el("div", { class: "thumb", title: "find paintings like this one" }, [img, overlay]);
    thumb.addEventListener("click", () => searchById(item.id, item.title));
    const score = typeof item.score === "number"
      ? el("span", { class: "score", title: "similarity" }, [
          (() => { const b = el("span", { class: "bar" }); b.style.width = Math.max(2, Math.min(60, Math.round(40 * Math.max(0, item.score)))) + "px"; return b; })(),
          document.createTextNode(item.score.toFixed(3)),
        ])
      : el("span", { class: "score muted", text: "" });
    const more = el("button", { type: "button", class: "more", text: "more like this", title: "search from this painting" });
    more.addEventListener("click", () => searchById(item.id, item.title));
    const info = el("button", { type: "button", text: "details" });
    info.addEventListener("click", () => showDetails(item.id, item.detail));
    const node = el("article", { class: "card" + (opts && opts.query ? " query-card" : ""), "data-id": item.id }, [
      el("div", { class: "thumb-box" }, [thumb]),
      el("div", { class: "title", text: item.title || item.id, title: item.title || item.id }),
      el("div", { class: "artist", text: item.artist || "" }),
      el("div", { class: "date", text: item.date || "" }),
      el("div", { class: "foot" }, [score, ...(item.mirrored ? [el("span", { class: "mirrored", text: "\u21c4 mirrored", title: "this figure matches the query's pose reversed left to right" })] : []), ...(item.detail ? [el("span", { class: "detail-tag", text: "photo shows a part", title: "your photo shows the outlined part of this painting" })] : []), el("div", { class: "actions" }, [info, more])]),
    ]);
    return node;
  }

  function showGrid(items, append) {
    const grid = $("#view-grid");
    if (!append) grid.replaceChildren();
    const frag = document.createDocumentFragment();
    for (const it of items) frag.appendChild(card(it));
    grid.appendChild(frag);
  }

  // ------------------------------------------------------------------ views
  function setView(view) {
    state.view = view;
    for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.view === view));
    const isMap = view === "map";
    $("#view-map").hidden = !isMap;
    $("#view-grid").hidden = isMap;
    $("#sentinel").hidden = isMap;
    if (isMap) openMap();
  }

  async function loadBrowse(reset) {
    if (state.browseLoading) return;
    if (reset) { state.browseOffset = 0; state.browseTotal = null; }
    if (state.browseTotal !== null && state.browseOffset >= state.browseTotal) return;
    state.browseLoading = true;
    const p = new URLSearchParams({ offset: state.browseOffset, limit: PAGE });
    for (const w of filters()) p.append("where", w);
    try {
      const data = await api("/api/items?" + p);
      state.browseTotal = data.total;
      showGrid(data.items, !reset);
      state.browseOffset += data.items.length;
      if (state.view === "browse") setStatus(data.total + " paintings" + (filters().length ? " match the filters" : "") + " · click one to search from it");
    } catch (e) {
      setStatus(e.message, true);
    } finally {
      state.browseLoading = false;
    }
  }

  // ------------------------------------------------------------------ search
  function showQuery(src, label) {
    $("#query-preview").hidden = false;
    $("#query-img").onerror = null;
    $("#query-img").src = src;
    $("#query-label").textContent = label;
    drawQueryOutline([]);
  }

  // --- photo queries (issue 13): outline the paintings found in the uploaded photo ---
  // quads come in the photo's own pixels; verified matches (inliers > 0) are drawn solid,
  // each numbered by its place in the results: a photo of a wall shows up to 4 paintings.
  // Another copy of a painting verified in the same place adds no second outline.
  const OUTLINE_COLOURS = ["#ffd400", "#4fc3f7", "#ff7aa2", "#9ccc65"];
  function samePlace(a, b) {
    const span = Math.max(...a.map((p) => Math.max(Math.abs(p[0] - a[0][0]), Math.abs(p[1] - a[0][1]))), 1);
    return a.every((p, i) => Math.hypot(p[0] - b[i][0], p[1] - b[i][1]) < 0.05 * span);
  }
  function drawQueryOutline(results) {
    const img = $("#query-img"), canvas = $("#query-outline");
    if (!canvas) return;
    const quads = [];  // [quad, place in the results (1-based)]
    results.forEach((r, i) => {
      if (!r.quad || !(r.inliers > 0) || quads.length >= OUTLINE_COLOURS.length) return;
      if (quads.some(([q]) => samePlace(q, r.quad))) return;
      quads.push([r.quad, i + 1]);
    });
    const draw = () => {
      const w = img.clientWidth, h = img.clientHeight, dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
      canvas.style.left = img.offsetLeft + "px";
      canvas.style.top = img.offsetTop + "px";
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      const sx = (w * dpr) / (img.naturalWidth || 1), sy = (h * dpr) / (img.naturalHeight || 1);
      ctx.lineWidth = 2 * dpr;
      ctx.font = `bold ${Math.round(13 * dpr)}px sans-serif`;
      ctx.textBaseline = "top";
      quads.forEach(([q, place], i) => {
        ctx.strokeStyle = OUTLINE_COLOURS[i];
        ctx.beginPath();
        q.forEach(([x, y], j) => (j ? ctx.lineTo(x * sx, y * sy) : ctx.moveTo(x * sx, y * sy)));
        ctx.closePath();
        ctx.stroke();
        // its place in the results, on a dark tag at the top-left corner
        const [x0, y0] = [q[0][0] * sx, q[0][1] * sy], label = String(place);
        const tw = ctx.measureText(label).width + 8 * dpr, th = 17 * dpr;
        ctx.fillStyle = "rgba(0, 0, 0, 0.7)";
        ctx.fillRect(x0, y0, tw, th);
        ctx.fillStyle = OUTLINE_COLOURS[i];
        ctx.fillText(label, x0 + 4 * dpr, y0 + 2 * dpr);
      });
      canvas.dataset.quads = String(quads.length);
      canvas.dataset.places = quads.map(([, place]) => place).join(",");
    };
    if (img.complete && img.naturalWidth) draw();
    else img.onload = draw;
  }
  // --- end photo queries ---

  function searchById(id, label) {
    state.query = { kind: "id", id: id, label: label || id };
    showQuery(thumbUrl(id, 180), label || id);
    if (!label) {  // e.g. from the address: show the painting's title once known
      api("/api/items/" + encodeURIComponent(id)).then((item) => {
        if (state.query && state.query.id === id) {
          state.query.label = item.title || id;
          $("#query-label").textContent = [item.title, item.artist].filter(Boolean).join(" · ");
        }
      }).catch(() => {});
    }
    history.replaceState(null, "", "#id=" + encodeURIComponent(id));
    return runSearch();
  }

  function searchByFile(file) {
    if (!file) return;
    if (state.query && state.query.url) URL.revokeObjectURL(state.query.url);
    const url = URL.createObjectURL(file);
    state.query = { kind: "upload", file: file, url: url, label: file.name || "uploaded image" };
    showQuery(url, state.query.label);
    // e.g. a phone's HEIC photo: the server reads it, but most browsers cannot show it
    $("#query-img").onerror = () => {
      $("#query-label").textContent =
        state.query.label + " (this browser cannot show it; the search reads it)";
    };
    history.replaceState(null, "", "#");
    return runSearch();
  }

  async function runSearch() {
    const q = state.query;
    if (!q) return;
    const seq = ++state.searchSeq;
    setView("results");
    const aspect = currentAspect();
    setStatus("searching by " + ASPECT_LABEL[aspect] + "…");
    const p = searchParams();
    let data;
    const t0 = performance.now();
    try {
      if (q.kind === "id") {
        p.set("id", q.id);
        data = await api("/api/search?" + p);
      } else {
        const form = new FormData();
        form.append("file", q.file);
        for (const [k, v] of p) form.append(k, v);
        data = await api("/api/search", { method: "POST", body: form }, 2);
      }
    } catch (e) {
      if (seq === state.searchSeq) {
        $("#view-grid").replaceChildren();
        setStatus(e.message, true);
      }
      return;
    }
    if (seq !== state.searchSeq) return; // a newer search was started meanwhile
    const ms = Math.round(performance.now() - t0);
    showGrid(data.results, false);
    if (q.kind !== "id") drawQueryOutline(data.results);
    const what = q.kind === "id" ? "“" + q.label + "”" : "the uploaded image";
    setStatus(data.count + " paintings like " + what + " by " + ASPECT_LABEL[data.aspect] +
      (data.where.length ? " (filtered)" : "") + " · " + ms + " ms" +
      (data.count ? "" : " · nothing matched: loosen the filters"));
    $("#view-grid").dataset.searchSeq = String(seq);
  }

  // ------------------------------------------------------------------ details dialog
  // detail: where a photo query's photo lies in this painting (outlined, dashed)
  async function showDetails(id, detail) {
    let item;
    try { item = await api("/api/items/" + encodeURIComponent(id)); } catch (e) { setStatus(e.message, true); return; }
    const dlg = $("#details");
    $("#details-title").textContent = item.title || item.id;
    const meta = $("#details-meta");
    meta.replaceChildren();
    const rows = [["id", item.id], ["artist", item.artist], ["date", item.date], ["size", item.width + " × " + item.height + " px"]];
    for (const [k, v] of Object.entries(item.metadata || {})) {
      if (["artist", "title", "date"].includes(k)) continue;
      rows.push([k, Array.isArray(v) ? v.join("; ") : String(v)]);
    }
    if (item.faces) rows.push(["faces", String(item.faces.length)]);
    if (item.poses) rows.push(["figures", String(item.poses.length)]);
    for (const [k, v] of rows) if (v) meta.appendChild(el("tr", {}, [el("td", { text: k }), el("td", { text: v })]));
    const img = $("#details-img"), canvas = $("#details-overlay");
    const marks = [].concat(
      (item.faces || []).map((f) => ({ box: f.box })),
      (item.poses || []).map((p) => ({ keypoints: p.keypoints, visibility: p.visibility })),
      detail ? [{ detail: detail }] : [],
    );
    canvas.width = 0;
    img.onload = () => drawOverlay(canvas, img, item, marks);
    img.src = thumbUrl(item.id, 768);
    $("#details-search").onclick = () => { dlg.close(); searchById(item.id, item.title); };
    if (!dlg.open) dlg.showModal();
  }

  // ------------------------------------------------------------------ map
  // One canvas; dots when zoomed out, thumbnails of visible points only when there is room
  // for them. Thumbnails load lazily with a small number in flight.
  const mapView = {
    ready: false, scale: 1, ox: 0, oy: 0, dpr: 1, w: 0, h: 0,
    images: new Map(), loading: 0, maxLoading: 6, queued: false, drag: null, hover: -1,
  };

  async function openMap() {
    if (state.map === null) {
      setStatus("computing the map of the collection (first time only)…");
      try {
        state.map = await api("/api/map");
      } catch (e) {
        setStatus(e.message, true);
        state.map = null;
        return;
      }
      fitMap();
      setStatus(state.map.count + " paintings placed by " + (state.map.method === "tsne" ? "t-SNE" : state.map.method.toUpperCase()) +
        " of their overall look · click one to search from it");
    } else {
      resizeMap();
    }
    mapView.ready = true;
    redrawMap();
  }

  function resizeMap() {
    const canvas = $("#map-canvas");
    mapView.dpr = window.devicePixelRatio || 1;
    mapView.w = canvas.clientWidth;
    mapView.h = canvas.clientHeight;
    canvas.width = Math.round(mapView.w * mapView.dpr);
    canvas.height = Math.round(mapView.h * mapView.dpr);
  }

  function fitMap() {
    resizeMap();
    // leave half a thumbnail of room around the points so edge thumbnails are not cut off
    const n = Math.max(1, state.map ? state.map.count : 1);
    const s = Math.min(mapView.w, mapView.h) * 0.96 / (1 + 0.8 / Math.sqrt(n));
    mapView.scale = s;
    mapView.ox = (mapView.w - s) / 2;
    mapView.oy = (mapView.h - s) / 2;
  }

  function redrawMap() {
    if (mapView.queued) return;
    mapView.queued = true;
    requestAnimationFrame(renderMap);
  }

  function thumbPx() {
    // typical spacing between neighbours on screen, as the thumbnail's size
    const n = Math.max(1, state.map.count);
    return Math.min(120, mapView.scale / Math.sqrt(n) * 0.8);
  }

  function renderMap() {
    mapView.queued = false;
    const m = state.map;
    if (!m || state.view !== "map") return;
    const canvas = $("#map-canvas"), ctx = canvas.getContext("2d");
    ctx.setTransform(mapView.dpr, 0, 0, mapView.dpr, 0, 0);
    ctx.clearRect(0, 0, mapView.w, mapView.h);
    const size = thumbPx();
    const pad = size;
    const visible = [];
    for (let i = 0; i < m.count; i++) {
      const x = mapView.ox + m.x[i] * mapView.scale, y = mapView.oy + m.y[i] * mapView.scale;
      if (x < -pad || y < -pad || x > mapView.w + pad || y > mapView.h + pad) continue;
      visible.push(i);
    }
    const thumbs = size >= 14 && visible.length <= 1500;
    const wanted = [];
    const queryId = state.query && state.query.kind === "id" ? state.query.id : null;
    ctx.fillStyle = "#e0a26f";
    for (const i of visible) {
      const x = mapView.ox + m.x[i] * mapView.scale, y = mapView.oy + m.y[i] * mapView.scale;
      const im = thumbs ? mapView.images.get(m.ids[i]) : null;
      if (im && im.complete && im.naturalWidth) {
        const r = Math.min(size / im.naturalWidth, size / im.naturalHeight);
        const w = im.naturalWidth * r, h = im.naturalHeight * r;
        ctx.drawImage(im, x - w / 2, y - h / 2, w, h);
      } else {
        if (thumbs && !im) wanted.push(i);
        ctx.fillRect(x - 2, y - 2, 4, 4);
      }
    }
    if (queryId !== null) {
      const qi = m.ids.indexOf(queryId);
      if (qi >= 0) {
        ctx.strokeStyle = "#ff4d4d"; ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(mapView.ox + m.x[qi] * mapView.scale, mapView.oy + m.y[qi] * mapView.scale, Math.max(8, size * 0.7), 0, Math.PI * 2);
        ctx.stroke();
      }
    }
    if (mapView.hover >= 0) {
      const i = mapView.hover;
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.5;
      const x = mapView.ox + m.x[i] * mapView.scale, y = mapView.oy + m.y[i] * mapView.scale, s = Math.max(6, size / 2);
      ctx.strokeRect(x - s, y - s, 2 * s, 2 * s);
    }
    if (wanted.length) loadMapThumbs(wanted, size);
  }

  function loadMapThumbs(wanted, size) {
    // nearest to the centre first: what the user is looking at
    const m = state.map, cx = mapView.w / 2, cy = mapView.h / 2;
    wanted.sort((a, b) => {
      const da = (mapView.ox + m.x[a] * mapView.scale - cx) ** 2 + (mapView.oy + m.y[a] * mapView.scale - cy) ** 2;
      const db = (mapView.ox + m.x[b] * mapView.scale - cx) ** 2 + (mapView.oy + m.y[b] * mapView.scale - cy) ** 2;
      return da - db;
    });
    const px = size > 60 ? 128 : 64;
    for (const i of wanted) {
      if (mapView.loading >= mapView.maxLoading) break;
      const id = m.ids[i];
      if (mapView.images.has(id)) continue;
      const im = new Image();
      mapView.images.set(id, im);
      mapView.loading++;
      im.decoding = "async";
      im.onload = im.onerror = () => { mapView.loading--; redrawMap(); };
      im.src = "/api/items/" + encodeURIComponent(id) + "/thumbnail?size=" + thumbSize(px);
    }
  }

  function mapPointAt(mx, my) {
    const m = state.map;
    if (!m) return -1;
    const size = thumbPx();
    const reach = Math.max(10, size / 2);
    let best = -1, bd = reach * reach;
    for (let i = 0; i < m.count; i++) {
      const dx = mapView.ox + m.x[i] * mapView.scale - mx, dy = mapView.oy + m.y[i] * mapView.scale - my;
      const d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }

  function setupMap() {
    const canvas = $("#map-canvas"), tip = $("#map-tip");
    canvas.addEventListener("wheel", (e) => {
      if (!state.map) return;
      e.preventDefault();
      const r = canvas.getBoundingClientRect();
      const mx = e.clientX - r.left, my = e.clientY - r.top;
      const f = Math.exp(-Math.max(-300, Math.min(300, e.deltaY)) * 0.002);
      const ns = Math.max(50, Math.min(mapView.scale * f, 400000));
      const g = ns / mapView.scale;
      mapView.ox = mx - (mx - mapView.ox) * g;
      mapView.oy = my - (my - mapView.oy) * g;
      mapView.scale = ns;
      redrawMap();
    }, { passive: false });
    canvas.addEventListener("pointerdown", (e) => {
      mapView.drag = { x: e.clientX, y: e.clientY, moved: 0 };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener("pointermove", (e) => {
      const r = canvas.getBoundingClientRect();
      if (mapView.drag) {
        const dx = e.clientX - mapView.drag.x, dy = e.clientY - mapView.drag.y;
        mapView.drag.moved += Math.abs(dx) + Math.abs(dy);
        mapView.drag.x = e.clientX; mapView.drag.y = e.clientY;
        if (mapView.drag.moved > 3) {
          canvas.classList.add("dragging");
          mapView.ox += dx; mapView.oy += dy;
          tip.hidden = true;
          redrawMap();
          return;
        }
      }
      const i = mapPointAt(e.clientX - r.left, e.clientY - r.top);
      if (i !== mapView.hover) { mapView.hover = i; redrawMap(); }
      if (i < 0) { tip.hidden = true; return; }
      tip.textContent = state.map.labels ? state.map.labels[i] : state.map.ids[i];
      tip.hidden = false;
      tip.style.left = Math.min(e.clientX - r.left + 14, mapView.w - 200) + "px";
      tip.style.top = (e.clientY - r.top + 14) + "px";
    });
    canvas.addEventListener("pointerup", (e) => {
      const drag = mapView.drag;
      mapView.drag = null;
      canvas.classList.remove("dragging");
      if (drag && drag.moved <= 3) {
        const r = canvas.getBoundingClientRect();
        const i = mapPointAt(e.clientX - r.left, e.clientY - r.top);
        if (i >= 0) {
          canvas.dataset.clicked = state.map.ids[i];
          searchById(state.map.ids[i], state.map.labels ? state.map.labels[i] : state.map.ids[i]);
        }
      }
    });
    canvas.addEventListener("pointerleave", () => { tip.hidden = true; mapView.hover = -1; redrawMap(); });
    window.addEventListener("resize", () => { if (state.view === "map" && state.map) { resizeMap(); redrawMap(); } });
  }

  // ------------------------------------------------------------------ controls
  function setupControls() {
    for (const b of document.querySelectorAll(".tabs button")) {
      b.addEventListener("click", () => {
        if (b.dataset.view === "browse") { setView("browse"); loadBrowse(true); }
        else if (b.dataset.view === "results") {
          if (state.query) runSearch();
          else setStatus("no query yet: drop an image or click a painting", true);
        }
        else setView(b.dataset.view);
      });
    }
    const drop = $("#drop"), file = $("#file");
    file.addEventListener("change", () => { if (file.files[0]) searchByFile(file.files[0]); file.value = ""; });
    drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); file.click(); } });
    // the whole window accepts a dropped image, the drop zone lights up
    let depth = 0;
    window.addEventListener("dragenter", (e) => { e.preventDefault(); depth++; document.body.classList.add("dragging"); drop.classList.add("over"); });
    window.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; document.body.classList.remove("dragging"); drop.classList.remove("over"); } });
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => {
      e.preventDefault();
      depth = 0;
      document.body.classList.remove("dragging");
      drop.classList.remove("over");
      const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      if (f) searchByFile(f);
      else setStatus("drop an image file (JPEG, PNG, TIFF, WebP, AVIF, HEIC)", true);
    });

    for (const input of document.querySelectorAll('input[name="aspect"]')) {
      input.addEventListener("change", () => {
        updateAspectControls();
        if (state.query) runSearch();
      });
    }
    for (const a of ["global", "face", "pose"]) {
      const slider = $("#w-" + a), out = $("#w-" + a + "-out");
      slider.addEventListener("input", () => { out.textContent = slider.value; });
      slider.addEventListener("change", () => { if (state.query) runSearch(); });
    }
    $("#mirror").addEventListener("change", () => { if (state.query) runSearch(); });
    $("#clear-figures").addEventListener("change", () => { if (state.query) runSearch(); });
    const refilter = () => {
      if (state.view === "results" && state.query) runSearch();
      else if (state.view === "browse") loadBrowse(true);
    };
    $("#artist").addEventListener("change", refilter);
    $("#year-from").addEventListener("change", refilter);
    $("#year-to").addEventListener("change", refilter);
    $("#k").addEventListener("change", () => { if (state.query) runSearch(); });
    $("#clear-filters").addEventListener("click", () => {
      $("#artist").value = ""; $("#year-from").value = ""; $("#year-to").value = "";
      refilter();
    });

    // the browse grid grows as the user scrolls to its end
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && state.view === "browse") loadBrowse(false);
    }, { rootMargin: "600px" }).observe($("#sentinel"));
  }

  function updateAspectControls() {
    const aspect = currentAspect();
    $("#weights").hidden = aspect !== "fused";
    $("#mirror-row").hidden = !(aspect === "pose" || aspect === "fused");
    $("#clear-row").hidden = aspect !== "pose";
  }

  function applyInfo(info, facets) {
    $("#catalog-name").textContent = info.name + " · " + info.items + " paintings";
    document.title = "artsim · " + info.name;
    for (const input of document.querySelectorAll('input[name="aspect"]')) {
      const ok = info.search_aspects.includes(input.value);
      input.disabled = !ok;
      const label = input.closest("label");
      label.classList.toggle("disabled", !ok);
      if (!ok) {
        label.title = input.value === "fused"
          ? "needs a face or pose aspect in the catalog"
          : "this catalog has no " + input.value + " aspect (index it with --aspects " + input.value + ")";
      }
    }
    for (const a of ["face", "pose"]) {
      if (!info.aspects.includes(a)) { $("#w-" + a).value = "0"; $("#w-" + a + "-out").textContent = "0"; $("#w-" + a).disabled = true; }
    }
    const artist = $("#artist");
    for (const a of facets.artists) artist.appendChild(el("option", { value: a.name, text: a.name + " (" + a.count + ")" }));
    if (facets.years) {
      $("#year-from").placeholder = String(facets.years.min);
      $("#year-to").placeholder = String(facets.years.max);
    } else {
      for (const id of ["#year-from", "#year-to"]) { $(id).disabled = true; $(id).title = "no dates in this catalog"; }
    }
  }

  async function init() {
    setupControls();
    setupMap();
    updateAspectControls();
    try {
      const [info, facets] = await Promise.all([api("/api/info"), api("/api/facets")]);
      state.info = info; state.facets = facets;
      applyInfo(info, facets);
    } catch (e) {
      setStatus("cannot reach the artsim server: " + e.message, true);
      return;
    }
    const m = /^#id=(.+)$/.exec(location.hash);
    if (m) searchById(decodeURIComponent(m[1]));
    else loadBrowse(true);
    document.body.dataset.ready = "1";
  }

  // read-only hooks for tests and the browser console
  window.artsim = Object.freeze({
    mapPointOnScreen(id) {
      const m = state.map;
      const i = m ? m.ids.indexOf(id) : -1;
      if (i < 0) return null;
      const r = $("#map-canvas").getBoundingClientRect();
      return { x: r.left + mapView.ox + m.x[i] * mapView.scale, y: r.top + mapView.oy + m.y[i] * mapView.scale };
    },
    mapScale() { return mapView.scale; },
  });

  init();
})();
