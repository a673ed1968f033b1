"""Photo queries: find the painting(s) in a photograph of them, then verify.

1. Hypotheses: the whole photo, plus each painting ``detectors.paintings`` finds in it,
   rectified to a frontal view. A blurred photo (``BLURRED``) is localised a second time,
   coarser (``BLURRED_SIDE``), where a shaking hand's streak is short enough for the
   frame's outline to close again.
2. Each hypothesis is embedded once and searched with the *instance part* of the catalog's
   vector (for the default efficientnet-lite2 "gem+mid" vector: the GeM part, its first
   1,280 dims; the stride-16 mean part carries palette and brushwork, which a colour cast
   and a wall disturb most). Other models use their whole vector. The shortlist is the
   union of every hypothesis' top ``shortlist`` paintings, each with its best hypothesis,
   and of the ``votes`` paintings most voted for by the photo's RootSIFT keypoints
   (``catalog.local_votes``: found whether or not localisation cut the painting well).
3. Geometric verification (``search.verify``) of the shortlist against the query photo's
   RootSIFT keypoints (the whole photo's, found in a thread beside steps 1-2, plus each found
   painting's own when the photo shows several); a painting with at least ``min_inliers``
   inliers is ranked above every unverified one, by score = global score +
   ``inlier_weight`` x inliers, each place in the photo leading once (``rank_candidates``).
   The unverified follow by ``unverified_scores``: the larger of two z-scores, the instance
   part's and the whole photo's full vector's (plain search's, whose top few are shortlisted
   too), so a reproduction nothing verifies ranks as plain search would rank it.
   When no candidate is verified, the photo is localised again with line quadrilaterals
   too (``LINES_RETRY``: a shaken or cut frame's contour does not close, its straight
   edges remain), and the regions that adds are embedded, shortlisted and verified with
   their own keypoints: a cost only such queries pay. When still none is, the most voted
   paintings are verified on denser keypoints (``DETAIL_RETRY``: a photo of a detail), and
   then the whole search runs once more on the photo at ``COARSE_SIDE`` px
   (``COARSE_RETRY``: a shaken or blurred photo), reusing the embeddings of the
   hypotheses it finds again (``Embedded``).
4. Each result carries the matched region in query pixels (``quad``: the verified
   painting's corners, else the hypothesis' quadrilateral) and ``inliers``.

Same-artist and "more like this" searches by catalog id never come here: the full vector
stays the default for them (item 4 of issue 13: a query-time choice of descriptor).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from artsim.images import fit_side
from artsim.records import SearchResult

if TYPE_CHECKING:
    from artsim.catalog import Catalog
    from artsim.catalog.local import LocalFeatures
    from artsim.search.verify import Verification

PHOTO_MODES = ("auto", "off")
QUERY_SIDE = 1024  # photos are downscaled to this before anything else
# the query's keypoints: found at this size, this many. The catalog's are found at 128 px
# (a 256 px pyramid: OpenCV doubles the image), so a 640 px photo's finest octaves had no
# counterpart there; 320 px verified as many tune photos or more, for a quarter of the SIFT
# time (640 until session 27; docs/photos.md, "The query's keypoints at 320 px")
SIFT_SIDE = 320
SIFT_FEATURES = 500
REGION_SIDE = 320  # each found painting's keypoints are found on its rectified view
REGION_FEATURES = 600
# paintings sent to verification by their best hypothesis' score (50 before the votes: with
# them, 30 gave the same recall on both halves of the framed photos, docs/photos.md)
SHORTLIST = 30
# search_photo's per_painting_features by name, for the benchmarks' --region-features
PER_PAINTING_MODES: dict[str, bool | None] = {"auto": None, "on": True, "off": False}
PER_HYPOTHESIS = 10  # plus each hypothesis' own top 10
MULTI_PAINTING = 2  # per_painting_features=None: on when the photo shows this many paintings
# localisation: at most this many paintings, each at least MIN_AREA of the photo. A photo of
# a wall shows small paintings beside large ones; 3 and 0.04 until session 31 lost them
# (docs/photos.md, "Walls of paintings")
MAX_PAINTINGS = 4
MIN_AREA = 0.02
OVERLAP = True  # find the photo's keypoints in a thread beside localisation and embedding
# the photo's keypoints on contrast-stretched grey levels (a dim photo keeps them; the
# catalog's stay unstretched: descriptors are normalised, only detection needs it)
STRETCH = True
# a found painting far from square (frontal sides in this ratio or more) adds the keypoints
# of its view squared: collections resized to squares (the sample's WikiArt copies) squash
# a tall print threefold, which SIFT's descriptors do not survive (docs/photos.md,
# "Paintings squared by their collection")
SQUARE_VIEWS = True
SQUARE_ASPECT = 1.25
SQUARE_SIDE = 320  # as small as the square thumbnails it is for (docs/photos.md)
SQUARE_FEATURES = 300
VOTES = 20  # plus the paintings most voted for by the photo's keypoints (catalog.local_votes)
# plus, in a photo of several paintings, this many most voted for by each one's keypoints
PER_PAINTING_VOTES = 10
# no candidate verified: localise again with line quadrilaterals and search what they add
# (lines in every query's localisation cost ~+90 ms p50 at 10,000 paintings, docs/photos.md)
LINES_RETRY = True
# still none verified: verify the paintings most voted for again on denser keypoints of
# their images (catalog.local.DenseCache): a photo of a detail shows too few of the 256
# stored keypoints a painting has (docs/photos.md, "Photos of a detail")
DETAIL_RETRY = True
DETAIL_VOTED = 4  # the most voted paintings verified again (without votes, the first unverified)
# still none verified: search once more on the photo downscaled to COARSE_SIDE px. Camera
# shake, defocus and noise wipe out fine detail; at a coarse scale the blur spans a few
# pixels and the frame's edges and coarse keypoints are sharp again (docs/photos.md, "Shaken
# photos"). Only where the photo is at least 1.5x that size. 224 px since session 28: the
# first pass finds its keypoints at 320 px since session 27, so a retry at 320 saw the same
# scale; at 224 it gained 2 shaken tune photos and 1 held-out, other settings unchanged
COARSE_RETRY = True
COARSE_SIDE = 224
# a hypothesis the coarse retry finds again, every corner within this share of its size of
# one the first pass embedded, takes that embedding (the encoder sees both at its own side)
REUSE_EMBEDDINGS = True
REUSE_TOL = 0.04
# localise a second time at this side (0: not): motion blur shorter in pixels closes the
# outlines a shaken photo's frame loses at full size (docs/photos.md)
LOCALISE_ALSO = 0
# ... and a photo at least this blurred (`paintings.blur_level`: a shaken or defocused one)
# is localised a second time at BLURRED_SIDE px (0: not), without the cost and the stray
# regions of doing so for every photo. Gate and side chosen on the tune half of the
# localisation of seeded photos (docs/photos.md, "Blurred photos localised coarser too")
BLURRED = 0.33
BLURRED_SIDE = 256
BLURRED_REGION_SIDE = 224  # its found paintings' keypoints at this side (0: REGION_SIDE)
# the lines retry localises a blurred photo at BLURRED_SIDE px too: outlines a visitor or the
# photo's edge leaves open, whose sides a shake smears at full size (session 34)
BLURRED_LINES = True
# how candidates that nothing verifies are ordered: "instance" by the instance part of the
# vector (best hypothesis), "fused" by whichever is the more exceptional (z-score over the
# catalog) of that and the whole photo's full vector, the one plain search ranks by; "full"
# by the whole photo's full vector when no painting was found in it (docs/photos.md)
UNVERIFIED = "fused"
UNVERIFIED_MODES = ("instance", "fused", "full")
MIN_INLIERS = 12  # chosen on the "tune" halves of both settings (docs/photos.md)
INLIER_WEIGHT = 0.02


def check_photo_mode(photo: str | bool | None) -> str:
    """auto or off (SearchOptions' one check of the `photo` option)."""
    from artsim.search.options import _photo

    return _photo(photo)


def instance_dims(catalog: Catalog) -> int | None:
    """How many leading dims of the global vector make its instance part (None: all)."""
    m = catalog.manifest.get("model", {})
    if m.get("name") == "efficientnet-lite2" and m.get("pooling", "gem+mid") == "gem+mid":
        return 1280
    return None


def _whole_quad(size: tuple[int, int]) -> tuple[tuple[float, float], ...]:
    w, h = size
    return ((0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h)))


def query_features(
    work: Image.Image,
    quads: list[tuple[tuple[float, float], ...]],
    *,
    whole_side: int | None = None,
    whole_features: int | None = None,
    region_side: int | None = None,
    region_features: int | None = None,
    whole: LocalFeatures | None = None,
    stretch: bool | None = None,
    squared: list[tuple[tuple[float, float], ...]] | None = None,
) -> LocalFeatures:
    """The query's RootSIFT keypoints, positions in [0, 1] of ``work``: the whole photo's,
    plus each found painting's, computed on its rectified view (frontal, and with a keypoint
    budget of its own: in the whole photo a painting covering a third of it gets few of the
    strongest keypoints, the wall, frame and glare take the rest) and mapped back into the
    photo by the inverse of the rectifying homography. ``whole``: the whole photo's,
    found already. ``squared``: found paintings whose views squared (`rectify` with
    ``square``, ``SQUARE_SIDE`` px, ``SQUARE_FEATURES`` keypoints) add their keypoints too,
    where they are far from square (``SQUARE_ASPECT``).
    Sides, budgets and ``stretch`` (see `extract_local`) left as None take the module's
    values at call time (benchmarks change them to measure levers)."""
    import cv2

    from artsim.catalog.local import LocalFeatures, extract_local
    from artsim.detectors.paintings import frontal_aspect, rectify

    whole_side = SIFT_SIDE if whole_side is None else whole_side
    whole_features = SIFT_FEATURES if whole_features is None else whole_features
    region_side = REGION_SIDE if region_side is None else region_side
    region_features = REGION_FEATURES if region_features is None else region_features
    stretch = STRETCH if stretch is None else stretch
    if whole is None:
        whole = extract_local(work, max_side=whole_side, n_features=whole_features, stretch=stretch)
    parts = [whole]
    xys = [parts[0].xy.astype(np.float32) * np.array(work.size, np.float32)]
    views = [(quad, False) for quad in quads] + [
        (quad, True)
        for quad in squared or []
        if max(a := frontal_aspect(quad), 1 / a) >= SQUARE_ASPECT
    ]
    for quad, square in views:
        q = np.asarray(quad, np.float32).reshape(4, 2)
        side, n = (SQUARE_SIDE, SQUARE_FEATURES) if square else (region_side, region_features)
        view = rectify(work, q, max_side=side, square=square)
        f = extract_local(view, max_side=side, n_features=n, stretch=stretch)
        if not len(f):
            continue
        w, h = view.size
        dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)  # as rectify maps it
        back = cv2.getPerspectiveTransform(dst, q)
        pts = f.xy.astype(np.float32) * np.array([w, h], np.float32)
        xys.append(cv2.perspectiveTransform(pts[None], back)[0])
        parts.append(f)
    xy = np.concatenate(xys) / np.array(work.size, np.float32)
    return LocalFeatures(xy, np.concatenate([p.desc for p in parts]), work.size)


def _overlap(a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]) -> float:
    """Intersection over the smaller area of two convex quadrilaterals."""
    import cv2

    pa, pb = (np.asarray(q, np.float32).reshape(-1, 1, 2) for q in (a, b))
    area = min(cv2.contourArea(pa), cv2.contourArea(pb))
    if area <= 0:
        return 0.0
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    return float(inter) / area


def shown_part(
    quad: tuple[tuple[float, float], ...], size: tuple[int, int], *, whole: float = 0.75
) -> list[list[float]] | None:
    """The part of a painting a photo shows: the photo's corners in the painting, as
    fractions of its width and height (inside [0, 1] where the photo shows only painting;
    beyond, where it shows past an edge), through the inverse of the verified homography
    (``quad``: the painting's corners in the photo of ``size``). None when the photo holds
    the painting whole, or ``whole`` of its area or more (a corner cut off, or a homography
    a little off at the corners, is no detail), or the mapping is degenerate."""
    import cv2

    q = np.asarray(quad, np.float64).reshape(4, 2)
    w, h = size
    if (q >= -0.02 * max(w, h)).all() and (q <= np.array([w, h]) * 1.02).all():
        return None  # the painting is all in the photo
    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    H = cv2.getPerspectiveTransform(q.astype(np.float32), unit)
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], np.float64)
    p = corners @ H.T
    if not (p[:, 2] > 1e-9).all():  # a photo corner beyond the painting's horizon
        return None
    p = p[:, :2] / p[:, 2:]
    if not 0 < detail_area(p.tolist()) < whole:
        return None
    return [[round(float(x), 4), round(float(y), 4)] for x, y in p]


def detail_area(detail: list[list[float]]) -> float:
    """The share of the painting's area a detail's outline (`shown_part`) covers."""
    import cv2

    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    area, _ = cv2.intersectConvexConvex(np.asarray(detail, np.float32), unit)
    return float(area)


def rank_candidates(
    global_scores: list[float],
    inliers: list[int],
    quads: list[tuple[tuple[float, float], ...] | None],
    hypotheses: list[int] | None = None,
    *,
    min_inliers: int = MIN_INLIERS,
    inlier_weight: float = INLIER_WEIGHT,
    unverified: list[float] | None = None,
) -> list[int]:
    """Order of the candidates: verified ones (>= ``min_inliers``) first, by global score +
    ``inlier_weight`` x inliers, then the rest by ``unverified`` (None: global score; see
    `unverified_scores`).

    A photo may show several paintings, so each place in it leads once before any second
    match of a place: first the best verified candidate of each distinct place (its
    verified quad overlapping no better one's by half or more), then, for each found
    painting (``hypotheses[i] > 0``: the candidate's best hypothesis was that rectified
    painting, whose quad ``quads[i]`` then is) that no verified match covers, its best
    candidate by global score (a painting too plain for local features), then the rest."""
    n = len(global_scores)
    hyp = hypotheses if hypotheses is not None else [0] * n
    ok = [inliers[i] >= min_inliers and quads[i] is not None for i in range(n)]
    score = [global_scores[i] + (inlier_weight * inliers[i] if ok[i] else 0.0) for i in range(n)]
    verified = sorted((i for i in range(n) if ok[i]), key=lambda i: -score[i])
    later = score if unverified is None else unverified
    rest = sorted((i for i in range(n) if not ok[i]), key=lambda i: -later[i])
    places: list[tuple[tuple[float, float], ...]] = []
    leaders: list[int] = []
    for i in verified:
        q = quads[i]
        assert q is not None
        if all(_overlap(q, p) < 0.5 for p in places):
            leaders.append(i)
            places.append(q)
    seen: set[int] = set()
    if not leaders and rest:  # nothing verified: the best global score stays first
        leaders.append(rest[0])
        seen.add(hyp[rest[0]])
    for i in rest:
        q = quads[i]
        if hyp[i] > 0 and hyp[i] not in seen and q is not None:
            seen.add(hyp[i])
            if all(_overlap(q, p) < 0.5 for p in places):
                leaders.append(i)
                places.append(q)
    lead = set(leaders)
    return leaders + [i for i in verified + rest if i not in lead]


def unverified_scores(
    instance: np.ndarray, whole: np.ndarray, hypotheses: int, mode: str | None = None
) -> np.ndarray:
    """What orders the candidates nothing verifies (``mode``, None: ``UNVERIFIED``), per row:
    ``instance``, each row's best instance-part similarity over the hypotheses, and
    ``whole``, the whole photo's full-vector similarity (plain search's).

    The instance part ignores a wall and a colour cast; the full vector tells apart two
    renderings of one painting, or prints of one design, better when the photo is the
    picture alone. "fused" takes, per row, the larger of the two z-scores (each over the
    catalog's allowed rows), so a row either ranking picks out leads: the two cosines have
    different spreads, and a raw maximum would let the wider one decide."""
    mode = mode or UNVERIFIED
    if mode == "instance":
        return instance
    if mode == "full":
        return whole if hypotheses == 1 else instance
    return np.maximum(_zscores(instance), _zscores(whole))


def _zscores(scores: np.ndarray) -> np.ndarray:
    """(score - mean) / std over the finite scores; -inf (masked rows) stays -inf."""
    finite = scores[np.isfinite(scores)]
    if len(finite) < 2:
        return scores
    return (scores - finite.mean()) / max(float(finite.std()), 1e-9)


def _voted_rows(
    catalog: Catalog,
    data: Any,
    qf: LocalFeatures,
    n: int,
    ok: np.ndarray,
    quads: list[tuple[tuple[float, float], ...]] | None = None,
    size: tuple[int, int] | None = None,
) -> list[int]:
    """Rows of the ``n`` paintings most voted for by the query's keypoints, most voted first,
    then of the ``PER_PAINTING_VOTES`` most voted for by the keypoints inside each of
    ``quads`` (found paintings, in pixels of the photo of ``size``): in a photo of several
    paintings the one with the most keypoints would otherwise take every place. None
    unless the stored local features cover most of the catalog (`artsim index --aspects
    local`)."""
    index = catalog.load_vote_index(warn=True)
    if index is None:
        return []
    parts = [np.arange(len(qf))]
    if quads and size is not None and PER_PAINTING_VOTES > 0:
        xy = qf.xy.astype(np.float32) * np.array(size, np.float32)
        parts += [np.flatnonzero(inside_quad(xy, q)) for q in quads]
    try:
        tops = index.top_of_parts(
            qf,
            parts,
            n,
            keep=lambda item: any(ok[r] for r in data.rows_of_item(item)),
        )
    except (RuntimeError, IndexError) as e:  # votes are optional: never fail the query
        logging.getLogger(__name__).warning("keypoint votes failed (%s); global shortlist only", e)
        return []
    chosen = tops[0] + [hit for top in tops[1:] for hit in top[:PER_PAINTING_VOTES]]
    items = list(dict.fromkeys(item for item, _ in chosen))
    return [r for item in items for r in data.rows_of_item(item) if ok[r]]


def inside_quad(xy: np.ndarray, quad: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Which points (n, 2) lie inside a convex quadrilateral (corners in order, either way
    round), its edges included."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    edge = np.roll(q, -1, axis=0) - q  # corner i to corner i + 1
    rel = xy[:, None, :].astype(np.float64) - q[None]
    cross = edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]
    return np.asarray((cross >= 0).all(1) | (cross <= 0).all(1))


@dataclass(frozen=True, slots=True)
class Embedded:
    """Hypotheses a search has embedded: their quads in [0, 1] of the photo, (n, 4, 2),
    their similarities to the catalog's rows, (n, rows), and the rows its mask and
    exclusion allowed (rows not allowed are -inf in ``sims``), and the whole photo's
    similarities by the full vector, (rows,)."""

    quads: np.ndarray
    sims: np.ndarray
    ok: np.ndarray
    whole: np.ndarray


def _nearest_quad(quad: np.ndarray, quads: np.ndarray) -> int | None:
    """The index of the quad of ``quads`` (n, 4, 2) whose every corner's x and y are within
    ``REUSE_TOL`` of ``quad``'s size of ``quad``'s, if any."""
    from artsim.detectors.paintings import _poly_area

    if not len(quads):
        return None
    err = np.abs(quads - quad).max(axis=(1, 2))
    j = int(err.argmin())
    return j if err[j] <= REUSE_TOL * np.sqrt(_poly_area(quad)) else None


def _reused(quad: np.ndarray, known: Embedded, size: tuple[int, int]) -> int | None:
    """The index of a known hypothesis ``quad`` (pixels of a photo of ``size``) matches."""
    return _nearest_quad(quad, known.quads * np.array(size, np.float32))


def _coarser_at(work: Image.Image, side: int) -> bool:
    """Whether localising the photo again at ``side`` px sees it coarser: a photo under 1.5x
    that side was seen about as coarse the first time."""
    return bool(side) and max(work.size) >= 1.5 * side


def _is_blurred(work: Image.Image) -> bool:
    """Whether the photo is localised again at ``BLURRED_SIDE`` px: blurred (``BLURRED``)
    and `_coarser_at` that side."""
    from artsim.detectors.paintings import blur_level

    return _coarser_at(work, BLURRED_SIDE) and blur_level(work) >= BLURRED


def _second_side(work: Image.Image, blurred: bool) -> int:
    """The side to localise the photo at a second time: ``LOCALISE_ALSO``, else
    ``BLURRED_SIDE`` for a ``blurred`` photo, else 0 (not)."""
    if LOCALISE_ALSO:
        return LOCALISE_ALSO if _coarser_at(work, LOCALISE_ALSO) else 0
    return BLURRED_SIDE if blurred else 0


def _find_paintings(work: Image.Image, **options: Any) -> list[Any]:
    """`find_paintings` within the localisation budget, ``MAX_PAINTINGS`` and ``MIN_AREA``
    (read at call time: the benchmarks set them)."""
    from artsim.detectors.paintings import find_paintings

    return find_paintings(work, max_paintings=MAX_PAINTINGS, min_area=MIN_AREA, **options)


def _not_found_yet(more: list[Any], quads: list[Any]) -> list[Any]:
    """The regions of ``more`` not within ``REUSE_TOL`` (`_nearest_quad`) of any of
    ``quads`` nor of one of ``more`` kept before them: a second localisation's additions."""
    kept = [np.asarray(q, np.float32).reshape(4, 2) for q in quads]
    out = []
    for r in more:
        q = np.asarray(r.quad, np.float32)
        if _nearest_quad(q, np.array(kept, np.float32).reshape(-1, 4, 2)) is None:
            kept.append(q.reshape(4, 2))
            out.append(r)
    return out


def _localise(work: Image.Image, blurred: bool | None = None) -> list[Any]:
    """The paintings found in the photo (`_find_paintings`), plus, where `_second_side`
    asks for it, those found at that side not within ``REUSE_TOL`` of one found already (a
    painting whose outline drifts more comes twice); [] when localisation fails.
    ``blurred``: `_is_blurred`, None to find out here."""
    try:
        regions = _find_paintings(work)
        second = _second_side(work, _is_blurred(work) if blurred is None else blurred)
    except Exception:  # a failed localisation must never fail the query
        return []
    if second:
        try:
            more = _find_paintings(work, work_side=second)
        except Exception:
            more = []
        regions += _not_found_yet(more, [x.quad for x in regions])
    return regions


def _shortlist(
    catalog: Catalog,
    hyps: list[tuple[Image.Image, tuple[tuple[float, float], ...]]],
    localise: bool,
    mask: np.ndarray | None,
    exclude: str | None,
    shortlist: int,
    k: int,
    known: Embedded | None = None,
    blurred: bool | None = None,
) -> tuple[Any, set[int], np.ndarray, np.ndarray, np.ndarray, Embedded]:
    """Localise (adding each painting found in the photo, ``hyps[0][0]``, to ``hyps``),
    embed every hypothesis (but those ``known`` has, with the same mask and exclusion) and
    shortlist by the instance part of the vector. Returns the global aspect's data, the
    shortlisted rows, each row's best score and best hypothesis, the rows that mask and
    exclude allow, and the hypotheses embedded."""
    work = hyps[0][0]
    if localise:
        hyps += [(r.image, r.quad) for r in _localise(work, blurred)]

    data, _ = catalog.vector_index("global")
    # rows -> items; masked and excluded paintings never come back
    ok = np.ones(len(data), dtype=bool)
    if mask is not None:
        ok &= mask[data.row_pos]
    if exclude is not None:
        for r in data.rows_of_item(exclude):
            ok[r] = False
    quads = np.array([h[1] for h in hyps], np.float32).reshape(-1, 4, 2)
    if known is not None and not (known.sims.shape[1] == len(ok) and np.array_equal(known.ok, ok)):
        known = None  # embedded for another catalog, mask or exclusion
    reuse = [None if known is None else _reused(q, known, work.size) for q in quads]
    todo = [i for i, j in enumerate(reuse) if j is None]
    sims = np.empty((len(hyps), len(data)), np.float32)
    whole = None
    if todo:
        sims[todo], full = _embed_hypotheses(catalog, [hyps[i][0] for i in todo], ok)
        if todo[0] == 0:
            whole = full[0]
    for i, j in enumerate(reuse):
        if j is not None:
            assert known is not None
            sims[i] = known.sims[j]
            if i == 0:  # the whole photo again (a coarser copy): its full-vector scores too
                whole = known.whole
    best_h = sims.argmax(0)
    best_s = sims.max(0)
    # the shortlist: the top `shortlist` paintings by their best hypothesis, plus each
    # hypothesis' own top few (a rectified painting's hits must not be crowded out by the
    # whole photo's)
    short = _top_rows(best_s, max(shortlist, k)) | _own_top(sims)
    assert whole is not None
    if UNVERIFIED != "instance":  # what plain search would rank high is verified too
        short |= _top_rows(whole, PER_HYPOTHESIS)
    embedded = Embedded(quads / np.array(work.size, np.float32), sims, ok, whole)
    return data, short, best_s, best_h, ok, embedded


def _hypothesis_sims(catalog: Catalog, images: list[Image.Image], ok: np.ndarray) -> np.ndarray:
    """(hypotheses, rows) similarities of the embedded hypotheses to the catalog by the
    instance part of the vector; rows not ``ok`` get -inf."""
    return _embed_hypotheses(catalog, images, ok)[0]


def _embed_hypotheses(
    catalog: Catalog, images: list[Image.Image], ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`_hypothesis_sims`, and the same images' similarities by the full vector (plain
    search's); rows not ``ok`` get -inf in both."""
    _, index = catalog.vector_index("global")
    vectors = index.vectors
    assert vectors is not None  # the catalog's indexes keep the vectors (Catalog.vector_index)
    dims = instance_dims(catalog)
    qv = catalog.encoder.embed_images(images)
    full = np.where(ok[None, :], qv @ vectors.T, -np.inf)
    if dims is not None:
        qv = qv[:, :dims] / np.maximum(np.linalg.norm(qv[:, :dims], axis=1, keepdims=True), 1e-12)
        cat = vectors[:, :dims]
        norms = getattr(catalog, "_instance_norms", None)
        if norms is None or len(norms) != len(cat):
            norms = np.maximum(np.linalg.norm(cat, axis=1), 1e-12)
            catalog._instance_norms = norms  # type: ignore[attr-defined]
        sims = (qv @ cat.T) / norms
    else:
        return full, full
    return np.where(ok[None, :], sims, -np.inf), full


def _top_rows(scores: np.ndarray, n: int) -> set[int]:
    """The (at most) ``n`` best-scoring rows, masked (-inf) ones left out."""
    n = min(n, len(scores))
    if n <= 0:
        return set()
    return {int(r) for r in np.argpartition(-scores, n - 1)[:n] if np.isfinite(scores[r])}


def _own_top(sims: np.ndarray) -> set[int]:
    """Each hypothesis' own top ``PER_HYPOTHESIS`` rows."""
    return {r for h in sims for r in _top_rows(h, PER_HYPOTHESIS)}


def _verify_rows(
    catalog: Catalog,
    data: Any,
    rows: list[int],
    qf: LocalFeatures,
    size: tuple[int, int],
    ransac_px: float | None = None,
) -> dict[int, Verification]:
    """Each row's geometric check against the query's keypoints (rows whose painting has no
    stored or computable local features are left out)."""
    from artsim.catalog.local import local_store

    if not rows:
        return {}
    feats = local_store(catalog).ensure([data.item_ids[r] for r in rows])
    checked = [r for r in rows if data.item_ids[r] in feats]
    return _verified(data, checked, feats, qf, size, ransac_px)


def _dense_checks(
    catalog: Catalog,
    data: Any,
    rows: list[int],
    qf: LocalFeatures,
    size: tuple[int, int],
    ransac_px: float | None = None,
) -> dict[int, Verification]:
    """The first ``DETAIL_VOTED`` paintings of ``rows`` (best first), verified on denser
    keypoints of their images (`artsim.catalog.local.DenseCache`); a candidate whose image
    cannot be read is left out."""
    from artsim.catalog.local import dense_cache

    items = list(dict.fromkeys(data.item_ids[r] for r in rows))[:DETAIL_VOTED]
    if not items:
        return {}
    chosen = set(items)
    rows = [r for r in rows if data.item_ids[r] in chosen]
    feats = dense_cache(catalog).get(items)
    checked = [r for r in rows if len(feats[data.item_ids[r]])]
    return _verified(data, checked, feats, qf, size, ransac_px)


def _verified(
    data: Any,
    rows: list[int],
    feats: dict[str, LocalFeatures],
    qf: LocalFeatures,
    size: tuple[int, int],
    ransac_px: float | None,
) -> dict[int, Verification]:
    """``rows`` verified against their paintings' keypoints ``feats`` (by item id), with a
    RANSAC tolerance of ``ransac_px`` pixels of ``size`` (None: verify.RANSAC_PX)."""
    from artsim.search.verify import RANSAC_PX, verify_candidates

    results = verify_candidates(
        qf,
        size,
        [feats[data.item_ids[r]] for r in rows],
        ransac_px=RANSAC_PX if ransac_px is None else ransac_px,
    )
    return dict(zip(rows, results, strict=True))


def _line_regions(
    work: Image.Image,
    hyps: list[tuple[Image.Image, tuple[tuple[float, float], ...]]],
    blurred: bool = False,
) -> list[tuple[Image.Image, tuple[tuple[float, float], ...]]]:
    """Paintings found in the photo with line quadrilaterals too, less those already among
    the hypotheses; a ``blurred`` photo's at ``BLURRED_SIDE`` px too (``BLURRED_LINES``)."""
    from artsim.detectors.paintings import same_quad

    try:
        regions = _find_paintings(work, lines=True)
    except Exception:  # a failed localisation must never fail the query
        return []
    known = np.array([h[1] for h in hyps[1:]], np.float32).reshape(-1, 4, 2)
    found = [
        (r.image, r.quad)
        for r in regions
        if not same_quad(np.asarray(r.quad, np.float32), known).any()
    ]
    if blurred and BLURRED_LINES and _coarser_at(work, BLURRED_SIDE):
        try:
            coarse = _find_paintings(work, lines=True, work_side=BLURRED_SIDE)
        except Exception:
            coarse = []  # the full-size regions stand
        # as `_localise` adds its second side's: those not found already
        new = _not_found_yet(coarse, [*known, *(q for _, q in found)])
        found += [(r.image, r.quad) for r in new]
    return found


def search_photo(
    catalog: Catalog,
    image: Image.Image,
    *,
    k: int = 10,
    mask: np.ndarray | None = None,
    exclude: str | None = None,
    shortlist: int = SHORTLIST,
    min_inliers: int = MIN_INLIERS,
    inlier_weight: float = INLIER_WEIGHT,
    localise: bool = True,
    verify: bool = True,
    per_painting_features: bool | None = None,
    votes: int = VOTES,
    original_size: tuple[int, int] | None = None,
    retry_below: int | None = None,
    retries: bool = True,
    ransac_px: float | None = None,
    known: Embedded | None = None,
    **_: Any,
) -> list[SearchResult]:
    """Paintings shown in a photo, best first (see the module docstring). Quads come back
    in pixels of ``original_size`` (the photo before a reduced-size decode), else of
    ``image``. ``retry_below``: retry (``LINES_RETRY``, ``DETAIL_RETRY``, ``COARSE_RETRY``)
    when no candidate has this many inliers (None: ``min_inliers``; the evaluation ranks
    with its own thresholds and passes 0 as ``min_inliers``). ``retries``: False for one
    pass without them (the coarse retry's own search). ``ransac_px``: verification's
    reprojection tolerance in pixels of the (downscaled) photo (None: verify.RANSAC_PX).
    ``known``: hypotheses a search of the same photo, mask and exclusion embedded already."""
    from artsim.detectors.paintings import MIN_SIDE, check_size
    from artsim.search import to_result
    from artsim.search.verify import MIN_MATCHES

    check_size(image)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    # huge photos: localise and match at a sane size
    work = fit_side(rgb, QUERY_SIDE, Image.Resampling.BILINEAR)[0]  # ``_`` holds **kwargs
    # work pixels -> reported pixels
    s = work.width / (original_size or rgb.size)[0]
    hyps: list[tuple[Image.Image, tuple[tuple[float, float], ...]]] = [
        (work, _whole_quad(work.size))
    ]
    with ThreadPoolExecutor(max_workers=1) as pool:
        # the photo's keypoints are found beside localisation and embedding (OpenCV and
        # torch release the GIL); per-painting keypoints need the found paintings first.
        # Those are off by default: on all 159 framed pairs they changed no recall@1 and no
        # both@2 for 1.57x the CPU (docs/photos.md)
        early = None
        if verify and OVERLAP:
            work.load()  # a lazily decoded image must not be loaded by two threads at once
            early = pool.submit(query_features, work, [])
        # measured beside the photo's keypoints, not before them
        try:
            blurred = localise and _is_blurred(work)
        except Exception:  # a failed blur measure must never fail the query
            blurred = False
        # a blurred photo's paintings have no fine detail for keypoints at REGION_SIDE
        region_side = BLURRED_REGION_SIDE if blurred and BLURRED_REGION_SIDE else None
        data, short, best_s, best_h, ok, embedded = _shortlist(
            catalog, hyps, localise, mask, exclude, shortlist, k, known, blurred
        )
        qf = None
        found: list[tuple[tuple[float, float], ...]] = []
        if verify:
            # each found painting's own keypoints when the photo shows several (None: auto):
            # the whole photo's strongest go mostly to the richer painting
            regions = per_painting_features
            if regions is None:
                regions = len(hyps) - 1 >= MULTI_PAINTING
            found = [h[1] for h in hyps[1:]] if regions else []
            whole = early.result() if early is not None else None
            squared = [h[1] for h in hyps[1:]] if SQUARE_VIEWS else []
            qf = query_features(work, found, whole=whole, squared=squared, region_side=region_side)
    voted: list[int] = []
    if qf is not None and votes > 0:
        # with each found painting's own keypoints (several paintings shown), its own votes too
        voted = _voted_rows(catalog, data, qf, votes, ok, found or None, work.size)
    short.update(voted)
    rows = sorted(short, key=lambda r: -best_s[r])
    checks = _verify_rows(catalog, data, rows, qf, work.size, ransac_px) if qf is not None else {}

    def sure(v: Verification, least: int = min_inliers) -> bool:
        return v.inliers >= least and v.quad is not None

    retry = min_inliers if retry_below is None else retry_below
    # checks empty: nothing could be verified (no local features), lines would not change that
    if (
        retries
        and LINES_RETRY
        and localise
        and checks
        and not any(sure(v, retry) for v in checks.values())
    ):
        from artsim.detectors.paintings import LINES

        assert qf is not None  # checks come from it
        # LINES: the first pass had them
        extra = [] if LINES else _line_regions(work, hyps, blurred)
        if extra:
            try:
                sims = _hypothesis_sims(catalog, [h[0] for h in extra], ok)
                top = sims.max(0)
                h2 = np.where(top > best_s, sims.argmax(0) + len(hyps), best_h)
                s2 = np.maximum(best_s, top)
                rows2 = sorted(set(rows) | _own_top(sims), key=lambda r: -s2[r])
                # each new region's own keypoints (see query_features), then every row again
                new = [h[1] for h in extra]
                qf2 = query_features(
                    work,
                    new,
                    whole=qf,
                    squared=new if SQUARE_VIEWS else [],
                    region_side=region_side,
                )
                checks2 = _verify_rows(catalog, data, rows2, qf2, work.size, ransac_px)
            except Exception as e:  # the first pass's answer stands
                logging.getLogger(__name__).warning("searching line regions failed (%s)", e)
            else:
                hyps += extra
                best_h, best_s, rows, checks = h2, s2, rows2, checks2
                embedded = Embedded(
                    np.concatenate(
                        [
                            embedded.quads,
                            np.array(new, np.float32) / np.array(work.size, np.float32),
                        ]
                    ),
                    np.concatenate([embedded.sims, sims.astype(np.float32)]),
                    embedded.ok,
                    embedded.whole,
                )

    # (a photo with fewer keypoints than a homography needs could not be verified anyway)
    if (
        retries
        and DETAIL_RETRY
        and checks
        and not any(sure(v, retry) for v in checks.values())
        and qf is not None
        and len(qf) >= MIN_MATCHES
    ):
        try:
            # the most voted; without votes, those the unverified would be listed first by
            # (`unverified_scores`; by the instance part alone a painting shown first could
            # be left out: session 28)
            candidates = voted
            if not candidates:
                later = unverified_scores(best_s, embedded.whole, len(hyps))
                candidates = sorted(rows, key=lambda r: -later[r])
            dense = _dense_checks(catalog, data, candidates, qf, work.size, ransac_px)
        except Exception as e:  # the answer so far stands
            logging.getLogger(__name__).warning("verifying on denser keypoints failed (%s)", e)
        else:
            for r, v in dense.items():  # rows already: the candidates come from them
                if r not in checks or v.inliers > checks[r].inliers:
                    checks[r] = v

    if (
        retries
        and COARSE_RETRY
        and checks
        and not any(sure(v, retry) for v in checks.values())
        and max(work.size) >= 1.5 * COARSE_SIDE
        and min(work.size) * COARSE_SIDE / max(work.size) >= MIN_SIDE  # not a thin strip
    ):
        # its whole answer, when it verifies a painting: on the tune half of the shaken
        # photos its ranking of the rest beat this pass's too (docs/photos.md)
        coarse = _coarse_pass(
            catalog,
            work,
            max(1, retry),
            original_size or rgb.size,
            ransac_px,
            k=k,
            mask=mask,
            exclude=exclude,
            shortlist=shortlist,
            min_inliers=min_inliers,
            inlier_weight=inlier_weight,
            localise=localise,
            per_painting_features=per_painting_features,
            votes=votes,
            known=embedded if REUSE_EMBEDDINGS else None,
        )
        if coarse:
            return coarse

    inliers = {r: 0 for r in rows}
    details: dict[int, list[list[float]] | None] = {r: None for r in rows}
    raw = {r: 0 for r in rows}  # inliers before the threshold (for choosing it)
    spreads = {r: 0.0 for r in rows}
    quads = {r: tuple((x / s, y / s) for x, y in hyps[best_h[r]][1]) for r in rows}
    for r, v in checks.items():
        raw[r], spreads[r] = v.inliers, v.spread
        if sure(v):
            assert v.quad is not None
            inliers[r] = v.inliers
            quads[r] = tuple((x / s, y / s) for x, y in v.quad)
            details[r] = shown_part(v.quad, work.size)

    def score(r: int) -> float:
        return float(best_s[r]) + inlier_weight * inliers[r]

    later = unverified_scores(best_s, embedded.whole, len(hyps))
    order = rank_candidates(
        [float(best_s[r]) for r in rows],
        [inliers[r] for r in rows],
        [quads[r] for r in rows],
        [int(best_h[r]) for r in rows],
        min_inliers=max(1, min_inliers),
        inlier_weight=inlier_weight,
        unverified=[float(later[r]) for r in rows],
    )
    ranked = [rows[i] for i in order][:k]
    return [
        to_result(
            catalog,
            data.item_ids[r],
            score(r),
            "global",
            quad=[list(p) for p in quads[r]],
            inliers=int(inliers[r]),
            detail=details[r],
            # hypothesis: 0 the whole photo, i the i-th painting found in it
            scores={
                "global": round(float(best_s[r]), 6),
                "inliers": int(raw[r]),
                "spread": round(spreads[r], 4),
                "hypothesis": int(best_h[r]),
                # what ordered it among the unverified (`unverified_scores`)
                "unverified": round(float(later[r]), 6),
            },
        )
        for r in ranked
    ]


def _coarse_pass(
    catalog: Catalog,
    work: Image.Image,
    least: int,
    original_size: tuple[int, int],
    ransac_px: float | None,
    **search: Any,
) -> list[SearchResult]:
    """``COARSE_RETRY``: the photo ``work`` searched once more at ``COARSE_SIDE`` px, without
    retries, its quads in pixels of ``original_size``; its answer if it verifies a painting
    (at least ``least`` inliers), else none (and none when that search fails)."""
    from artsim.search.verify import RANSAC_PX

    # an antialiased, sharp downscale (the caller checked the photo is larger)
    small, r = fit_side(work, COARSE_SIDE, Image.Resampling.LANCZOS)
    try:
        found = search_photo(
            catalog,
            small,
            original_size=original_size,
            retries=False,
            # the same tolerance in the photo's terms: 8 px of a 320 px photo would let
            # unrelated paintings reach the threshold
            ransac_px=(RANSAC_PX if ransac_px is None else ransac_px) * r,
            **search,
        )
    except Exception as e:  # the answer so far stands
        logging.getLogger(__name__).warning("searching the photo coarser failed (%s)", e)
        return []
    return found if any((res.inliers or 0) >= least for res in found) else []
