"""Photo queries (issue 13): localisation + geometric verification on the distortion
settings (mild, framed, and the harsher gallery), thresholds chosen on one half of the
paintings and reported on the other.

    python benchmarks/eval_photos.py --catalog eval-catalog --data ../shared/data [--limit N]

For every instance query it makes the "mild" web-photo distortion and the "framed photo"
(evaluation/distort.py, seeded), then searches
- photo off: today's global search with the full vector (the baseline);
- photo auto: hypotheses (whole photo + rectified paintings) on the GeM part, shortlist,
  RootSIFT + RANSAC verification;
and records each shortlisted painting's global score and inlier count, so the inlier
threshold can be chosen on the "tune" half without searching again. Writes
docs/results/photos.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

import artsim.detectors.paintings as paintings
import artsim.search.photo as photo
import artsim.search.verify as verify
from artsim.catalog import Catalog
from artsim.detectors.paintings import find_paintings
from artsim.evaluation.distort import PHOTO_STREAMS
from artsim.evaluation.groundtruth import (
    InstancePair,
    duplicate_ignore_map,
    load_exact_duplicates,
    load_instance_pairs,
    load_near_duplicates,
)
from artsim.evaluation.metrics import localisation_hits
from artsim.evaluation.run import (
    distorted_queries,
    framed_queries,
    gt_index,
    split_by_painting,
    usable_pairs,
)
from artsim.search.photo import INLIER_WEIGHT, MIN_INLIERS, rank_candidates, search_photo

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = (6, 8, 10, 12, 15, 20, 25, 30)
# the photo path's parameters a run can change (arguments of the same names), recorded with it
PHOTO_PARAMS = (
    "sift_side",
    "sift_features",
    "region_side",
    "shortlist",
    "per_hypothesis",
    "votes",
    "region_features",
    "stretch",
    "lines",
    "lines_retry",
    "pages",
    "detail_retry",
    "coarse_retry",
    "coarse_side",
    "per_painting_votes",
    "square_views",
    "square_side",
    "square_features",
    "reuse_embeddings",
    "localise_also",
    "blurred_side",
    "blurred",
    "blurred_region_side",
    "max_paintings",
    "min_area",
    "min_spread",
)


def add_module_levers(ap: argparse.ArgumentParser) -> None:
    """The photo path's levers that are module constants of artsim.search.photo, read at
    call time (shared with bench_photos.py; `set_module_levers` applies them)."""
    ap.add_argument("--sift-side", type=int, default=photo.SIFT_SIDE)
    ap.add_argument("--sift-features", type=int, default=photo.SIFT_FEATURES)
    ap.add_argument(
        "--region-side",
        type=int,
        default=photo.REGION_SIDE,
        help="side in px of each found painting's rectified view, where its keypoints are found",
    )
    ap.add_argument("--per-hypothesis", type=int, default=photo.PER_HYPOTHESIS)
    ap.add_argument("--coarse-side", type=int, default=photo.COARSE_SIDE)
    ap.add_argument(
        "--min-spread",
        type=float,
        default=verify.MIN_SPREAD,
        help="a homography whose inliers cover less of the painting shown verifies nothing "
        "(0: as before session 20)",
    )
    ap.add_argument(
        "--localise-also",
        type=int,
        default=photo.LOCALISE_ALSO,
        help="also localise the photo downscaled to this side, adding the paintings found "
        "that are new (0: not)",
    )
    ap.add_argument(
        "--blurred-side",
        type=int,
        default=photo.BLURRED_SIDE,
        help="also localise a blurred photo (--blurred) downscaled to this side (0: not, as "
        "before session 30)",
    )
    ap.add_argument(
        "--max-paintings",
        type=int,
        default=photo.MAX_PAINTINGS,
        help="localisation: at most this many paintings in a photo (3 before session 31)",
    )
    ap.add_argument(
        "--min-area",
        type=float,
        default=photo.MIN_AREA,
        help="localisation: the least share of the photo a painting covers (0.04 before "
        "session 31)",
    )
    ap.add_argument(
        "--blurred-region-side",
        type=int,
        default=photo.BLURRED_REGION_SIDE,
        help="a blurred photo's found paintings' keypoints at this side (0: --region-side)",
    )
    ap.add_argument(
        "--blurred",
        type=float,
        default=photo.BLURRED,
        help="the blur level (detectors.paintings.blur_level) from which --blurred-side applies",
    )
    ap.add_argument(
        "--square-side",
        type=int,
        default=photo.SQUARE_SIDE,
        help="side in px of a found painting's squared view (--square-views)",
    )
    ap.add_argument(
        "--square-features",
        type=int,
        default=photo.SQUARE_FEATURES,
        help="keypoints of a found painting's squared view",
    )
    ap.add_argument(
        "--unverified",
        choices=photo.UNVERIFIED_MODES,
        default=photo.UNVERIFIED,
        help="what orders the candidates nothing verifies (search.photo.unverified_scores; "
        "instance: as before session 26)",
    )
    ap.add_argument(
        "--per-painting-votes",
        type=int,
        default=photo.PER_PAINTING_VOTES,
        help="in a photo of several paintings, also shortlist this many paintings most voted "
        "for by each one's keypoints (0: as before session 19)",
    )
    switches = (
        (
            "--stretch",
            photo.STRETCH,
            "find the photo's keypoints on contrast-stretched grey levels (off: as before "
            "session 12)",
        ),
        (
            "--lines",
            paintings.LINES,
            "localisation also assembles quadrilaterals from long straight edges (off: "
            "contours only, as before session 13)",
        ),
        (
            "--lines-retry",
            photo.LINES_RETRY,
            "when no candidate is verified, localise again with line quadrilaterals and "
            "search the regions they add (off: as before session 14)",
        ),
        (
            "--cut-quads",
            paintings.CUT_QUADS,
            "with line quadrilaterals, also outlines the photo's edge closes: a painting the "
            "photo cuts off on one side (off: as before session 32)",
        ),
        (
            "--cut-corners",
            paintings.CUT_CORNERS,
            "with --cut-quads, also outlines the photo's corner closes: a painting cut off on "
            "two adjacent sides (off: as before session 33)",
        ),
        (
            "--hidden-quads",
            paintings.HIDDEN_QUADS,
            "with line quadrilaterals, also outlines closed by cutting the photo across: a "
            "painting whose lower part a visitor hides (off: as before session 33)",
        ),
        (
            "--hidden-cut",
            paintings.HIDDEN_CUT,
            "with --hidden-quads, also such an outline the photo's left or right edge cuts "
            "off: only the painting's top and one side show (off: as before session 35)",
        ),
        (
            "--blurred-lines",
            photo.BLURRED_LINES,
            "the lines retry localises a blurred photo at --blurred-side px too (off: as "
            "before session 34)",
        ),
        (
            "--pages",
            paintings.PAGES,
            "look for a picture on each found region with nothing inside it, as on a screen "
            "or a catalogue page (off: as before session 15)",
        ),
        (
            "--detail-retry",
            photo.DETAIL_RETRY,
            "when still no candidate is verified, verify the most voted paintings again on "
            "denser keypoints of their images (off: as before session 17)",
        ),
        (
            "--square-views",
            photo.SQUARE_VIEWS,
            "a found painting far from square adds the keypoints of its view squared, as a "
            "collection resized to squares holds it (off: as before session 19)",
        ),
        (
            "--reuse-embeddings",
            photo.REUSE_EMBEDDINGS,
            "the coarse retry takes the first pass's embeddings of the hypotheses it finds "
            "again (off: as before session 20)",
        ),
        (
            "--coarse-retry",
            photo.COARSE_RETRY,
            "when still no candidate is verified, search the photo again at --coarse-side px "
            "(off: as before session 18)",
        ),
    )
    for flag, default, text in switches:
        ap.add_argument(flag, choices=("on", "off"), default="on" if default else "off", help=text)


def set_module_levers(args: argparse.Namespace) -> None:
    photo.SIFT_SIDE, photo.SIFT_FEATURES = args.sift_side, args.sift_features
    photo.REGION_SIDE = args.region_side
    photo.PER_HYPOTHESIS = args.per_hypothesis
    photo.STRETCH = args.stretch == "on"
    paintings.LINES = args.lines == "on"
    photo.LINES_RETRY = args.lines_retry == "on"
    paintings.PAGES = args.pages == "on"
    paintings.CUT_QUADS = args.cut_quads == "on"
    paintings.CUT_CORNERS = args.cut_corners == "on"
    paintings.HIDDEN_QUADS = args.hidden_quads == "on"
    paintings.HIDDEN_CUT = args.hidden_cut == "on"
    photo.BLURRED_LINES = args.blurred_lines == "on"
    photo.DETAIL_RETRY = args.detail_retry == "on"
    photo.COARSE_RETRY, photo.COARSE_SIDE = args.coarse_retry == "on", args.coarse_side
    photo.PER_PAINTING_VOTES = args.per_painting_votes
    photo.SQUARE_VIEWS = args.square_views == "on"
    photo.SQUARE_SIDE, photo.SQUARE_FEATURES = args.square_side, args.square_features
    photo.REUSE_EMBEDDINGS = args.reuse_embeddings == "on"
    photo.LOCALISE_ALSO = args.localise_also
    photo.BLURRED_SIDE, photo.BLURRED = args.blurred_side, args.blurred
    photo.BLURRED_REGION_SIDE = args.blurred_region_side
    photo.MAX_PAINTINGS, photo.MIN_AREA = args.max_paintings, args.min_area
    verify.MIN_SPREAD = args.min_spread
    photo.UNVERIFIED = args.unverified


def renderings(data: Path, path_to_id: dict[str, str]) -> dict[str, set[str]]:
    """Catalog id -> the ids of every rendering of the same painting (itself included)."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    for p in load_instance_pairs(data / "groundtruth"):
        if p.query_path in path_to_id and p.target_path in path_to_id:
            parent[find(path_to_id[p.query_path])] = find(path_to_id[p.target_path])
    groups: dict[str, set[str]] = {}
    for i in list(parent):
        groups.setdefault(find(i), set()).add(i)
    return {i: g for g in groups.values() for i in g}


def lack_votes(cat: Catalog, left_out: set[str]) -> None:
    """This catalog object's photo queries vote with an index built without ``left_out``."""
    import artsim.catalog.local_votes as lv
    from artsim.catalog.local import local_store

    store = local_store(cat)
    every = store.ids
    store.ids = lambda: [i for i in every() if i not in left_out]  # type: ignore[method-assign]
    try:
        vi = lv.build_vote_index(store)
    finally:
        del store.ids
    log(
        f"vote index without {len(left_out)} targets: {len(vi.item_ids)} of {len(every())} paintings"
    )
    cat.load_vote_index = lambda **kw: vi  # type: ignore[method-assign]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def instance_pairs(gt: Path, reverse: bool) -> list[InstancePair]:
    """The ground-truth pairs; reverse: photos of the target files, the query files the
    answers (most targets are 224 px WikiArt copies and most query files 500 px PeopleArt
    ones, so this tests the catalog's local features on larger paintings)."""
    pairs = load_instance_pairs(gt)
    if not reverse:
        return pairs
    return [InstancePair(p.target_path, p.query_path, f"{p.source}:reversed") for p in pairs]


def rank_with(hits: list[dict], t: int | None) -> list[str]:
    """Paths ranked as search_photo would with threshold t (None: no verification)."""
    if t is None:
        return [h["path"] for h in sorted(hits, key=lambda h: -h["global"])]
    order = rank_candidates(
        [h["global"] for h in hits],
        [h["inliers"] for h in hits],
        [tuple(map(tuple, h["quad"])) if h.get("quad") else None for h in hits],
        [h.get("hypothesis", 0) for h in hits],
        min_inliers=t,
        inlier_weight=INLIER_WEIGHT,
        # records made before session 26 have no "unverified": they ranked by "global"
        unverified=[h.get("unverified", h["global"]) for h in hits],
    )
    return [hits[i]["path"] for i in order]


def recall1(records: dict[str, dict], queries: list[str], t: int | None, ignore) -> float:
    hits = []
    for q in queries:
        r = records[q]
        ranked = [p for p in rank_with(r["hits"], t) if p not in ignore.get(q, set())]
        hits.append(float(bool(ranked) and ranked[0] == r["target"]))
    return float(np.mean(hits)) if hits else float("nan")


def second_answers(r: dict) -> set[str]:
    """The second painting of a two-painting photo, by any of its files in the catalog: its
    target and its own query file (e.g. the PeopleArt and the WikiArt copy of one print)."""
    return {p for p in (r.get("second_target"), r.get("second_query")) if p}


def both2(records: dict[str, dict], queries: list[str], t: int | None) -> tuple[int, float]:
    hits = []
    for q in queries:
        r = records[q]
        if r.get("second_target") is None:
            continue
        top = rank_with(r["hits"], t)[:2]
        hits.append(float(r["target"] in top and bool(second_answers(r) & set(top))))
    return len(hits), (float(np.mean(hits)) if hits else float("nan"))


def summarise(
    records: dict[str, dict],
    split: dict[str, str],
    verified: set[str],
    min_inliers: int,
    times_on: list[float],
    times_off: list[float],
) -> dict:
    """One setting's metrics per half, the inlier threshold chosen on the tune half unless
    ``min_inliers`` is given."""
    # for the ranking metrics the second painting's target is a correct answer too
    # (by any of its files: a photo of two paintings is rightly answered by the second one)
    ign_map = {q: second_answers(r) for q, r in records.items()}
    halves = {h: [q for q in records if split.get(q) == h] for h in ("tune", "held-out")}
    halves["all"] = list(records)
    halves["verified sample"] = [q for q in records if q in verified]
    tune_v = [q for q in halves["tune"] if q in verified]
    tune_scores = {t: recall1(records, tune_v, t, ign_map) for t in THRESHOLDS}
    best_t = max(THRESHOLDS, key=lambda t: (round(tune_scores[t], 4), t))
    if not tune_v:  # nothing to choose on (a held-out-only run): the shipped threshold
        best_t = MIN_INLIERS
    best_t = min_inliers or best_t
    res = {
        "queries": len(records),
        "threshold_sweep_tune": tune_scores,
        "chosen_min_inliers": best_t,
    }

    def off_top(q: str) -> list[str]:  # photo off, the second painting's files not counted
        return [p for p in records[q]["off_all"] if p not in ign_map[q]]

    for h, qs_all in halves.items():
        qs = qs_all
        off_r1 = (
            float(np.mean([float(off_top(q)[:1] == [records[q]["target"]]) for q in qs]))
            if qs
            else float("nan")
        )
        twos = [q for q in qs if q in verified and records[q]["second_target"]]
        off_two = [
            float(
                records[q]["target"] in records[q]["off_all"][:2]
                and bool(ign_map[q] & set(records[q]["off_all"][:2]))
            )
            for q in twos
        ]
        in100 = (
            float(
                np.mean(
                    [
                        float(records[q]["target"] in [x["path"] for x in records[q]["hits"]])
                        for q in qs
                    ]
                )
            )
            if qs
            else float("nan")
        )
        qv = [q for q in qs if q in verified]
        absent = [records[q].get("absent_wrong_inliers") for q in qs]
        absent = [a for a in absent if a is not None]
        located = [records[q]["located"] for q in qs if records[q].get("located")]
        res[h] = {
            "queries": len(qs),
            "verified_queries": len(qv),
            "photo_off_recall@1": off_r1,
            "shortlist_recall": in100,
            "no_verification_recall@1": recall1(records, qs, None, ign_map),
            "photo_auto_recall@1": recall1(records, qv, best_t, ign_map),
            "photo_off_recall@1_same_queries": (
                float(np.mean([float(off_top(q)[:1] == [records[q]["target"]]) for q in qv]))
                if qv
                else float("nan")
            ),
            "two_paintings": dict(
                zip(("queries", "both@2"), both2(records, qv, best_t), strict=True)
            ),
            "two_paintings_off": {
                "queries": len(twos),
                "both@2": float(np.mean(off_two)) if twos else None,
            },
            # --absent: its painting masked out, a wrong painting with >= best_t inliers
            "absent_wrong_verified": (
                {
                    "photos": len(absent),
                    "share": float(np.mean([a >= best_t for a in absent])),
                    "most_inliers": max(absent),
                }
                if absent
                else None
            ),
            # localisation alone: paintings whose visible part a region covers (IoU >= 0.8)
            "localised": (
                {
                    "paintings": sum(x[2] for x in located),
                    "found": sum(x[0] for x in located) / max(1, sum(x[2] for x in located)),
                    "wrong_regions_per_photo": sum(x[1] for x in located) / len(located),
                }
                if located
                else None
            ),
        }
    res["verified_sample"] = sorted(verified & set(records))
    if times_on:
        res["p50_ms_photo_auto"] = round(1000 * statistics.median(times_on), 1)
        res["p50_ms_photo_off"] = round(1000 * statistics.median(times_off), 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", type=Path, default=REPO / "eval-catalog")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument(
        "--verify-queries",
        type=int,
        default=0,
        help="verify only this many queries per setting (a seeded sample; 0: all); the "
        "others are searched with localisation but without verification",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--absent",
        action="store_true",
        help="also search each photo of one painting with every rendering of that painting "
        "(and its known duplicates) masked out, and report the share where a wrong painting "
        "reaches the reported inlier threshold (a confident wrong answer, as for a painting "
        "the catalog lacks)",
    )
    ap.add_argument(
        "--min-inliers",
        type=int,
        default=0,
        help="report with this threshold (0: the best on this setting's tune half)",
    )
    ap.add_argument(
        "--settings",
        default="mild,framed",
        help="comma-separated: mild, framed, gallery, screen, dim, shaken",
    )
    # the speed levers of docs/photos.md "Cost", to measure their effect on recall
    add_module_levers(ap)
    ap.add_argument("--shortlist", type=int, default=photo.SHORTLIST)
    ap.add_argument(
        "--votes",
        type=int,
        default=photo.VOTES,
        help="paintings added to the shortlist by local-feature votes (0: none)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "photos.json")
    ap.add_argument(
        "--half",
        choices=("all", "tune", "held-out"),
        default="all",
        help="search only this half's queries (the photos are made for all, so they are the same)",
    )
    ap.add_argument("--records", type=Path, help="also write every query's ranked hits here (JSON)")
    ap.add_argument(
        "--votes-lack-targets",
        action="store_true",
        help="a keypoint-vote index without the pairs' target paintings, as an index run of "
        "under a tenth of the catalog left its paintings before session 24: what votes are worth",
    )
    ap.add_argument(
        "--reverse",
        action="store_true",
        help="photos of each pair's target file, its query file the answer (larger catalog "
        "paintings: see instance_pairs)",
    )
    ap.add_argument(
        "--region-features",
        choices=tuple(photo.PER_PAINTING_MODES),
        default="auto",
        help="verify with each found painting's own keypoints too (search_photo's "
        "per_painting_features; auto: when the photo shows two paintings or more)",
    )
    ap.add_argument(
        "--rescore",
        type=Path,
        nargs="+",
        help="no search: merge these --records files (e.g. a tune and a held-out run, every "
        "query verified) and score them",
    )
    args = ap.parse_args()
    set_module_levers(args)
    started = time.perf_counter()
    gt = args.data / "groundtruth"
    if args.rescore:
        split = split_by_painting(instance_pairs(gt, args.reverse), args.seed)
        query_of = {p.target_path: p.query_path for p in instance_pairs(gt, args.reverse)}
        merged: dict[str, dict] = {}
        for f in args.rescore:
            for name, recs in json.loads(f.read_text()).items():
                for r in recs.values():
                    if r.get("second_target") and "second_query" not in r:
                        r["second_query"] = query_of.get(r["second_target"])
                merged.setdefault(name, {}).update(recs)
        out = {"rescored": [str(f) for f in args.rescore], "settings": {}}
        for name, recs in merged.items():
            res = summarise(recs, split, set(recs), args.min_inliers, [], [])
            out["settings"][name] = res
            log(f"{name}: {json.dumps(res, indent=1)}")
        args.out.write_text(json.dumps(out, indent=2).replace("NaN", "null") + "\n")
        return
    cat = Catalog.open(args.catalog)
    path_to_id, id_to_path = gt_index(cat, args.data)
    available = set(path_to_id)
    pairs = usable_pairs(instance_pairs(gt, args.reverse), available)
    if args.limit:  # a seeded sample of the pairs, in file order
        keep = set(np.random.default_rng(args.seed + 7).permutation(len(pairs))[: args.limit])
        pairs = [p for i, p in enumerate(pairs) if i in keep]
    ignore = duplicate_ignore_map(load_exact_duplicates(gt), load_near_duplicates(gt))
    same = renderings(args.data, path_to_id) if args.absent else {}
    if args.votes_lack_targets:
        lack_votes(cat, {path_to_id[p.target_path] for p in pairs})
    split = split_by_painting(instance_pairs(gt, args.reverse), args.seed)
    target_of = {p.query_path: p.target_path for p in pairs}
    log(f"{len(pairs)} queries; making distorted photos")
    wanted = set(args.settings.split(","))
    photos = {
        name: framed_queries(pairs, available, args.data, args.seed, setting=name)
        if name in wanted
        else {}
        for name in PHOTO_STREAMS
    }
    settings = {
        "mild": {
            q: (im, None)
            for q, im in (
                distorted_queries(pairs, available, args.data, args.seed)
                if "mild" in wanted
                else {}
            ).items()
        },
        **{
            name: {q: (f.image, f.second) for q, f in framed.items()}
            for name, framed in photos.items()
        },
    }
    _ = cat.encoder  # load the model before timing
    out: dict = {
        "catalog": str(args.catalog),
        "paintings": len(cat),
        "params": {k: getattr(args, k) for k in (*PHOTO_PARAMS, "limit")},
        "settings": {},
    }
    rng = np.random.default_rng(args.seed)
    order = list(rng.permutation(len(pairs)))
    n_verify = args.verify_queries or len(pairs)
    verified = {pairs[i].query_path for i in order[:n_verify]}
    all_records: dict[str, dict] = {}
    for name, queries in settings.items():
        if name not in wanted:
            continue
        records: dict[str, dict] = {}
        times_on, times_off = [], []
        if args.half != "all":
            queries = {q: v for q, v in queries.items() if split.get(q) == args.half}
        for n_done, (qpath, (image, second)) in enumerate(queries.items()):
            if n_done % 20 == 0:
                log(f"{name}: {n_done}/{len(queries)}")
            exclude = path_to_id[qpath]  # the query's own clean file is in the catalog
            t0 = time.perf_counter()
            off = cat.search(image, k=10, photo="off")
            times_off.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hits = search_photo(
                cat,
                image,
                k=300,
                min_inliers=0,
                retry_below=args.min_inliers or photo.MIN_INLIERS,
                exclude=exclude,  # as a catalog without this rendering would answer
                verify=qpath in verified,
                shortlist=args.shortlist,
                per_painting_features=photo.PER_PAINTING_MODES[args.region_features],
                votes=args.votes,
            )
            times_on.append(time.perf_counter() - t0)
            ign = set(ignore.get(qpath, set())) | {qpath}
            located = None
            if qpath in photos.get(name, {}):  # where the photo's paintings really are
                regions = find_paintings(
                    image, max_paintings=photo.MAX_PAINTINGS, min_area=photo.MIN_AREA
                )
                truth = photos[name][qpath].quads
                hits_wrong = localisation_hits([r.quad for r in regions], truth, image.size)
                located = [*hits_wrong, len(truth)]
            absent_inliers, absent_hit = None, None
            if args.absent and second is None and qpath in verified:
                group = same.get(path_to_id[target_of[qpath]], {path_to_id[target_of[qpath]]})
                dupes = ignore.get(qpath, set()) | ignore.get(target_of[qpath], set())
                group = group | {exclude} | {path_to_id[d] for d in dupes if d in path_to_id}
                absent = search_photo(
                    cat,
                    image,
                    k=50,
                    mask=np.array([i not in group for i in cat.ids]),
                    min_inliers=0,
                    retry_below=args.min_inliers or photo.MIN_INLIERS,
                    shortlist=args.shortlist,
                    per_painting_features=photo.PER_PAINTING_MODES[args.region_features],
                    votes=args.votes,
                )
                wrong = max(absent, key=lambda h: h.scores["inliers"], default=None)
                absent_inliers = int(wrong.scores["inliers"]) if wrong else 0
                absent_hit = wrong and {
                    "path": id_to_path.get(wrong.id),
                    "inliers": absent_inliers,
                    "spread": wrong.scores.get("spread", 0.0),
                }
            off_all = [id_to_path.get(h.id) for h in off if id_to_path.get(h.id) not in ign]
            records[qpath] = {
                "target": target_of[qpath],
                "located": located,  # [paintings found, wrong regions, paintings shown]
                "absent_wrong_inliers": absent_inliers,
                "absent_wrong": absent_hit,
                "second_target": target_of.get(second) if second else None,
                "second_query": second,
                "off_all": off_all,
                "off": [
                    p for p in off_all if not second or p not in (second, target_of.get(second))
                ],
                "hits": [
                    {
                        "path": id_to_path.get(h.id),
                        "global": h.scores["global"],
                        "inliers": h.scores["inliers"],
                        "spread": h.scores.get("spread", 0.0),
                        "quad": h.quad,
                        "hypothesis": h.scores.get("hypothesis", 0),
                        "unverified": h.scores.get("unverified", h.scores["global"]),
                    }
                    for h in hits
                    if h.id != exclude and id_to_path.get(h.id) not in ign
                ],
            }
        res = summarise(records, split, verified, args.min_inliers, times_on, times_off)
        out["settings"][name] = res
        log(f"{name}: {json.dumps(res, indent=1)}")
        all_records[name] = records
    out["seconds"] = round(time.perf_counter() - started, 1)
    log(f"done in {out['seconds']} s")
    if args.records:
        args.records.write_text(json.dumps(all_records))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # strict JSON: an empty group's metric is null, not NaN
    text = json.dumps(out, indent=2).replace("NaN", "null")
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
