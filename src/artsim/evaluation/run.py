"""`artsim eval`: score a catalog against ground-truth files, per aspect and per refinement.

Ground-truth paths are relative to the data root (the folder holding groundtruth/); catalog
items are matched to them by their image file, so any catalog built from that root works.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artsim.errors import ArtsimError
from artsim.evaluation.groundtruth import (
    duplicate_ignore_map,
    eval_instance,
    eval_same_artist,
    eval_same_sitter,
    load_exact_duplicates,
    load_instance_pairs,
    load_near_duplicates,
    load_same_artist,
    load_same_sitter,
    restrict_search,
)
from artsim.search import search as search_catalog

if TYPE_CHECKING:
    from artsim.catalog import Catalog

TASK_ASPECTS = {
    "instance": ("global", "fused"),
    "artist": ("global", "fused"),
    "sitter": ("global", "face", "fused"),
}


@dataclass(slots=True)
class EvalRun:
    """Everything one `artsim eval` run measured."""

    catalog: str
    model: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per (task, aspect, variant)
    missing: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "model": self.model,
            "results": self.rows,
            "missing": self.missing,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }


def gt_index(catalog: Catalog, root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """ground-truth path <-> catalog id, through the items' image files."""
    root = root.resolve()
    path_to_id: dict[str, str] = {}
    for item_id in catalog.ids:
        image = Path(catalog.image_of(item_id))
        try:
            rel = image.resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        path_to_id[rel] = item_id
    return path_to_id, {v: k for k, v in path_to_id.items()}


def make_search(
    catalog: Catalog,
    path_to_id: dict[str, str],
    id_to_path: dict[str, str],
    aspect: str,
    k: int,
    **options: Any,
) -> Callable[[str], list[tuple[str, float]]]:
    def search(path: str) -> list[tuple[str, float]]:
        try:
            hits = search_catalog(catalog, path_to_id[path], k=k, aspect=aspect, **options)
        except ArtsimError:
            return []  # e.g. no face in the query: a miss, counted as such
        return [(id_to_path[h.id], h.score) for h in hits if h.id in id_to_path]

    return search


def make_image_search(
    catalog: Catalog,
    images: dict[str, Any],
    id_to_path: dict[str, str],
    aspect: str,
    k: int,
    **options: Any,
) -> Callable[[str], list[tuple[str, float]]]:
    """Search by a (distorted) image standing in for the ground-truth file."""

    def search(path: str) -> list[tuple[str, float]]:
        try:
            hits = search_catalog(catalog, images[path], k=k + 1, aspect=aspect, **options)
        except ArtsimError:
            return []
        pairs = [
            (id_to_path[h.id], h.score)
            for h in hits
            if h.id in id_to_path and id_to_path[h.id] != path
        ][:k]
        scores = [s for _, s in pairs]
        if any(b > a for a, b in pairwise(scores)):
            # a photo search ranks verified paintings and each place in the photo first, so
            # its order is not its scores': score the order alone (no tie groups)
            return [(p, float(len(pairs) - i)) for i, (p, _) in enumerate(pairs)]
        return pairs

    return search


def _row(task: str, aspect: str, variant: str, result) -> dict[str, Any]:
    s = result.summary
    return {
        "task": task,
        "aspect": aspect,
        "variant": variant,
        "queries": s.get("queries", 0),
        "missing": result.n_missing,
        **{
            m: round(float(v), 4)
            for m, v in s.get("means", {}).items()
            if m not in ("rank", "ignored", "n_relevant")
        },
    }


def distorted_queries(
    pairs: Sequence[Any], available: set[str], root: Path, seed: int = 0
) -> dict[str, Any]:
    """The instance queries turned into web-photo-like images (seeded: the same seed gives the
    same distortions, so other studies can score the very queries `evaluate` uses)."""
    from artsim.evaluation.distort import distort as distort_image
    from artsim.images import load_rgb

    rng = np.random.default_rng(seed)
    return {
        p.query_path: distort_image(load_rgb(root / p.query_path, max_side=1024), rng)
        for p in pairs
        if p.query_path in available
    }


@dataclass(slots=True)
class FramedQuery:
    """A "framed photo" query: the photo, the pictures' corners in it, and the query path of
    a second painting hung beside the first (None for a photo of one painting)."""

    image: Any
    quads: tuple
    second: str | None = None


def usable_pairs(pairs: Sequence[Any], available: set[str]) -> list[Any]:
    return [p for p in pairs if p.query_path in available and p.target_path in available]


def framed_queries(
    pairs: Sequence[Any],
    available: set[str],
    root: Path,
    seed: int = 0,
    p_two: float = 0.25,
    setting: str = "framed",
) -> dict[str, FramedQuery]:
    """The instance queries as "framed photos" (``distort.framed_photo``, seeded); a share
    ``p_two`` of them show a second ground-truth painting beside the first. setting: "framed",
    the harsher "gallery" and the underexposed "dim" (``distort.PHOTO_SETTINGS``), or
    "screen" (``distort.screen_photo``: one painting on a web page on a screen)."""
    from artsim.evaluation.distort import (
        PHOTO_SETTINGS,
        PHOTO_STREAMS,
        SCREEN,
        framed_photo,
        screen_photo,
    )
    from artsim.images import load_rgb

    streams = list(PHOTO_STREAMS)
    if setting not in streams:
        raise ValueError(f"unknown photo setting {setting!r}; choose from {', '.join(streams)}")
    params: dict[str, Any] = dict(PHOTO_SETTINGS.get(setting, {}))
    # each setting its own seeded stream; "framed" keeps the photos of earlier runs
    rng = np.random.default_rng(seed + 1 + 100 * streams.index(setting))
    if setting == SCREEN:
        p_two = 0.0  # a web page shows one painting
    usable = usable_pairs(pairs, available)
    out: dict[str, FramedQuery] = {}
    for i, p in enumerate(usable):
        paintings = [load_rgb(root / p.query_path, max_side=1024)]
        second = None
        if p_two > 0 and len(usable) > 1 and rng.random() < p_two:
            j = int(rng.integers(len(usable) - 1))
            other = usable[j + (j >= i)]
            if other.target_path != p.target_path:
                second = other.query_path
                paintings.append(load_rgb(root / second, max_side=1024))
        if setting == SCREEN:
            photo = screen_photo(paintings, rng)
        else:
            photo = framed_photo(paintings, rng, **params)
        out[p.query_path] = FramedQuery(photo.image, photo.quads, second)
    return out


def split_by_painting(pairs: Sequence[Any], seed: int = 0) -> dict[str, str]:
    """query path -> "tune" or "held-out": a seeded half of the paintings (by target file) to
    choose thresholds on, the other half to report them on."""
    paintings = sorted({p.target_path for p in pairs})
    order = np.random.default_rng(seed).permutation(len(paintings))
    tune = {paintings[i] for i in order[: len(paintings) // 2]}
    return {p.query_path: ("tune" if p.target_path in tune else "held-out") for p in pairs}


def both_at_2(
    queries: dict[str, FramedQuery],
    target_of: dict[str, str],
    search: Callable[[str], list[tuple[str, float]]],
    only: set[str] | None = None,
) -> dict[str, Any]:
    """Photos of two paintings: the share whose two targets are both in the top 2."""
    hits = []
    for path, q in queries.items():
        if q.second is None or (only is not None and path not in only):
            continue
        top = [p for p, _ in search(path)[:2]]
        hits.append(float(target_of[path] in top and target_of[q.second] in top))
    return {"queries": len(hits), "both@2": round(float(np.mean(hits)), 4) if hits else None}


def _distort_rows(
    catalog: Catalog,
    pairs: Sequence[Any],
    available: set[str],
    id_to_path: dict[str, str],
    ignore: dict[str, set[str]],
    root: Path,
    *,
    aspects: Sequence[str],
    k: int,
    seed: int,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Each distortion setting ("mild", "framed", "gallery") scored with photo handling off
    and on, on all pairs and on each half of the seeded split."""
    rows: list[dict[str, Any]] = []
    split = split_by_painting(pairs, seed)
    target_of = {p.query_path: p.target_path for p in pairs}
    variants = [(a, "plain", {"photo": "off"}) for a in aspects if a in ("global", "fused")]
    if "global" in aspects:
        variants.append(("global", "photo", {"photo": "auto"}))
    # one setting's photos at a time (gallery photos are up to 1,600 px): made, scored, freed
    for setting in ("mild", "framed", "gallery"):
        framed: dict[str, FramedQuery] = {}
        if setting == "mild":
            task = "instance-distorted"
            images: dict[str, Any] = distorted_queries(pairs, available, root, seed)
            ign = ignore
        else:
            task = f"instance-{setting}"
            framed = framed_queries(pairs, available, root, seed, setting=setting)
            images = {q: f.image for q, f in framed.items()}
            # the second painting in a photo is a correct answer too, not a false positive
            ign = {
                q: set(ignore.get(q, set())) | ({target_of[f.second]} if f.second else set())
                for q, f in framed.items()
            }
        for aspect, variant, opts in variants:
            progress(f"{task} / {aspect} / {variant}")
            search = make_image_search(catalog, images, id_to_path, aspect, k, **opts)
            cache: dict[str, list[tuple[str, float]]] = {}

            def cached(path: str, search=search, cache=cache) -> list[tuple[str, float]]:
                if path not in cache:
                    cache[path] = search(path)
                return cache[path]

            for half in ("all", "tune", "held-out"):
                chosen = [p for p in pairs if half == "all" or split[p.query_path] == half]
                res = eval_instance(chosen, cached, available, ignore=ign)
                name = variant if half == "all" else f"{variant}, {half}"
                rows.append(_row(task, aspect, name, res))
                if framed:
                    chosen_paths = {p.query_path for p in chosen}
                    two = both_at_2(framed, target_of, cached, chosen_paths)
                    rows.append({"task": f"{task}-two", "aspect": aspect, "variant": name, **two})
    return rows


def evaluate(
    catalog: Catalog,
    gt_dir: Path,
    *,
    aspects: Sequence[str] = ("global", "face", "pose", "fused"),
    distort: bool = False,
    refinements: bool = False,
    k: int = 100,
    seed: int = 0,
    progress: Callable[[str], None] = lambda msg: None,
) -> EvalRun:
    started = time.perf_counter()
    root = gt_dir.resolve().parent
    have = set(catalog.aspect_names()) | {"fused"}
    aspects = [a for a in aspects if a in have]
    path_to_id, id_to_path = gt_index(catalog, root)
    available = set(path_to_id)
    if not available:
        raise ArtsimError(
            f"no catalog image lies under {root}: index that data root (artsim index {root} --catalog ...)"
        )
    run = EvalRun(catalog=str(catalog.path), model=catalog.model_name)
    ignore = duplicate_ignore_map(load_exact_duplicates(gt_dir), load_near_duplicates(gt_dir))
    pairs = load_instance_pairs(gt_dir)
    artists = load_same_artist(gt_dir)
    sitters = load_same_sitter(gt_dir)
    variants: list[tuple[str, dict[str, Any]]] = [("plain", {})]
    if refinements:
        variants += [("query-expansion", {"query_expansion": 2}), ("whitening", {"whiten": True})]

    def tasks_for(aspect: str, variant: str, opts: dict[str, Any]) -> None:
        search = make_search(catalog, path_to_id, id_to_path, aspect, k, **opts)
        if aspect in TASK_ASPECTS["instance"] or variant != "plain":
            progress(f"instance / {aspect} / {variant}")
            res = eval_instance(pairs, search, available, ignore=ignore)
            run.missing["instance"] = res.n_missing
            run.rows.append(_row("instance", aspect, variant, res))
        if aspect in TASK_ASPECTS["artist"] or variant != "plain":
            progress(f"same artist / {aspect} / {variant}")
            res = eval_same_artist(
                artists, restrict_search(search, set(artists)), available, ignore=ignore
            )
            run.missing["artist"] = res.n_missing
            run.rows.append(_row("artist", aspect, variant, res))
        if aspect in TASK_ASPECTS["sitter"] or variant != "plain":
            progress(f"same sitter / {aspect} / {variant}")
            res = eval_same_sitter(sitters, search, available, ignore=ignore)
            run.missing["sitter"] = res.n_missing
            run.rows.append(_row("sitter", aspect, variant, res))

    for aspect in aspects:
        tasks_for(aspect, "plain", {})
    if "global" in aspects:
        for variant, opts in variants[1:]:
            tasks_for("global", variant, opts)
    if distort:
        run.rows += _distort_rows(
            catalog,
            pairs,
            available,
            id_to_path,
            ignore,
            root,
            aspects=aspects,
            k=k,
            seed=seed,
            progress=progress,
        )
    missing_faces = sum(
        1
        for p in sitters
        if p in path_to_id and "face" in have and path_to_id[p] not in catalog.aspect("face").done
    )
    if missing_faces:
        run.notes.append(
            f"{missing_faces} same-sitter images have no face analysis in this catalog"
        )
    run.seconds = time.perf_counter() - started
    return run
