"""Ground-truth loaders and evaluation drivers that take a search function.

The ground-truth folder (``<data root>/groundtruth``, see its README.md) holds CSVs whose
paths are relative to the data root: instance pairs (the same painting in two files), same
artist, same sitter, and exact/near duplicates. The drivers here do not know about the
catalog: they take ``search(query_path) -> ranked result paths`` (same path convention,
query removed), optionally with scores as ``[(path, score), ...]`` so that tied scores
are scored by their expected value (see ``artsim.evaluation.metrics``).

Rows whose files are not available (not indexed, or not on disk) are never dropped
silently: every driver reports how many rows it could not evaluate and which paths were
missing.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artsim.errors import ArtsimError
from artsim.evaluation.metrics import (
    average_precision,
    hit_at_k,
    precision_at_k,
    recall_at_k,
    summarise,
    summarise_by,
)

INSTANCE_PAIRS_FILE = "instance_pairs.csv"
SAME_ARTIST_FILE = "same_artist.csv"
SAME_SITTER_FILE = "same_sitter.csv"
EXACT_DUPLICATES_FILE = "exact_duplicates.csv"
NEAR_DUPLICATES_FILE = "near_duplicates.csv"

# A search returns ranked paths, or ranked (path, score) pairs when ties should be handled.
SearchOutput = Sequence[str] | Sequence[tuple[str, float]]
SearchFn = Callable[[str], SearchOutput]


class GroundTruthError(ArtsimError):
    """A ground-truth file is missing or malformed; the message names the file, row and field."""


@dataclass(frozen=True, slots=True)
class InstancePair:
    """The same painting in two files: query with ``query_path``, expect ``target_path``."""

    query_path: str
    target_path: str
    source: str


@dataclass(frozen=True, slots=True)
class ExactDuplicate:
    """Two byte-identical files inside the dev set."""

    path_a: str
    path_b: str
    sha256: str


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    """Two visually near-identical files found automatically (not verified by hand)."""

    path_a: str
    path_b: str
    hash_dist: int
    corr: float
    same_normalised_name: bool


@dataclass(slots=True)
class EvalResult:
    """What one evaluation task measured.

    per_query: one dict per scored query (``query`` path, metric values, extras).
    summary: ``metrics.summarise(per_query)`` -- means, counts and standard errors.
    missing: sorted ground-truth paths that were not in ``available``.
    n_missing: ground-truth rows (pairs or labelled images) not evaluated because of them.
    skipped: queries that were available but had nothing relevant left to find (e.g. the
        only other work by that artist is missing); they are not in per_query.
    breakdown: summaries per group (per ground-truth source for instance pairs).
    """

    task: str
    per_query: list[dict[str, Any]]
    summary: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    n_missing: int = 0
    skipped: list[str] = field(default_factory=list)
    breakdown: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (per-query rows included)."""
        return {
            "task": self.task,
            "summary": self.summary,
            "n_missing": self.n_missing,
            "missing": list(self.missing),
            "skipped": list(self.skipped),
            "breakdown": self.breakdown,
            "per_query": self.per_query,
        }


# ---------------------------------------------------------------------------- loaders


def _read_rows(
    gt_dir: str | Path, name: str, columns: Sequence[str]
) -> list[tuple[int, dict[str, str]]]:
    """Rows of ``gt_dir/name`` as (line number, row), after checking the header and blanks."""
    path = Path(gt_dir) / name
    if not path.is_file():
        raise GroundTruthError(
            f"{path}: ground-truth file not found (expected {name} in {Path(gt_dir)}, "
            f"with columns {', '.join(columns)})"
        )
    rows: list[tuple[int, dict[str, str]]] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        absent = [c for c in columns if c not in header]
        if absent:
            raise GroundTruthError(
                f"{path}: missing column(s) {', '.join(absent)}; expected columns "
                f"{', '.join(columns)} (found: {', '.join(header) or 'none'})"
            )
        for row in reader:
            line = reader.line_num
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # blank line
            clean: dict[str, str] = {}
            for col in columns:
                value = (row.get(col) or "").strip()
                if not value:
                    raise GroundTruthError(f"{path}, line {line}: empty '{col}'")
                clean[col] = value
            rows.append((line, clean))
    return rows


def _number(path: Path, line: int, col: str, text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise GroundTruthError(
            f"{path}, line {line}: '{col}' should be {'an integer' if kind is int else 'a number'}, "
            f"got {text!r}"
        ) from None


def load_instance_pairs(gt_dir: str | Path) -> list[InstancePair]:
    """Read ``instance_pairs.csv`` (query_path, target_path, source), in file order."""
    rows = _read_rows(gt_dir, INSTANCE_PAIRS_FILE, ("query_path", "target_path", "source"))
    return [InstancePair(r["query_path"], r["target_path"], r["source"]) for _, r in rows]


def _load_labels(gt_dir: str | Path, name: str, label: str) -> dict[str, str]:
    path = Path(gt_dir) / name
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, row in _read_rows(gt_dir, name, ("path", label)):
        p, value = row["path"], row[label]
        if p in out and out[p] != value:
            raise GroundTruthError(
                f"{path}, line {line}: {p} is labelled {label}={value!r} here but "
                f"{out[p]!r} on line {first_line[p]}"
            )
        out[p] = value
        first_line.setdefault(p, line)
    return out


def load_same_artist(gt_dir: str | Path) -> dict[str, str]:
    """Read ``same_artist.csv``: {path: artist slug}."""
    return _load_labels(gt_dir, SAME_ARTIST_FILE, "artist")


def load_same_sitter(gt_dir: str | Path) -> dict[str, str]:
    """Read ``same_sitter.csv``: {path: sitter_id} (``<artist>|self`` or ``<artist>|<name>``)."""
    return _load_labels(gt_dir, SAME_SITTER_FILE, "sitter_id")


def sample_per_label(labels: Mapping[str, str], per: int, rng: random.Random) -> dict[str, str]:
    """At most ``per`` paths of each label ({path: label}), drawn with ``rng`` (seeded subsets)."""
    by_label: dict[str, list[str]] = {}
    for path, label in sorted(labels.items()):
        by_label.setdefault(label, []).append(path)
    return {
        path: label
        for label, paths in by_label.items()
        for path in rng.sample(paths, min(len(paths), per))
    }


def load_exact_duplicates(gt_dir: str | Path) -> list[ExactDuplicate]:
    """Read ``exact_duplicates.csv`` (path_a, path_b, sha256)."""
    rows = _read_rows(gt_dir, EXACT_DUPLICATES_FILE, ("path_a", "path_b", "sha256"))
    return [ExactDuplicate(r["path_a"], r["path_b"], r["sha256"]) for _, r in rows]


def load_near_duplicates(gt_dir: str | Path) -> list[NearDuplicate]:
    """Read ``near_duplicates.csv`` (path_a, path_b, hash_dist, corr, same_normalised_name)."""
    cols = ("path_a", "path_b", "hash_dist", "corr", "same_normalised_name")
    path = Path(gt_dir) / NEAR_DUPLICATES_FILE
    out: list[NearDuplicate] = []
    for line, r in _read_rows(gt_dir, NEAR_DUPLICATES_FILE, cols):
        flag = r["same_normalised_name"].lower()
        if flag not in ("0", "1", "true", "false"):
            raise GroundTruthError(
                f"{path}, line {line}: 'same_normalised_name' should be 0 or 1, got {flag!r}"
            )
        out.append(
            NearDuplicate(
                r["path_a"],
                r["path_b"],
                _number(path, line, "hash_dist", r["hash_dist"], int),
                _number(path, line, "corr", r["corr"], float),
                flag in ("1", "true"),
            )
        )
    return out


def duplicate_ignore_map(
    *pair_lists: Iterable[ExactDuplicate | NearDuplicate | InstancePair | tuple[str, str]],
) -> dict[str, set[str]]:
    """Symmetric {path: paths known to show the same image} from any lists of pairs.

    Typical use: ``duplicate_ignore_map(load_exact_duplicates(d), load_near_duplicates(d))``
    to pass as ``ignore=`` to the drivers. Pairs are not chained transitively: near
    duplicates are unverified and chaining could join look-alikes.
    """
    out: dict[str, set[str]] = {}
    for pairs in pair_lists:
        for pair in pairs:
            if isinstance(pair, tuple):
                a, b = pair
            elif isinstance(pair, InstancePair):
                a, b = pair.query_path, pair.target_path
            else:
                a, b = pair.path_a, pair.path_b
            if a == b:
                continue
            out.setdefault(a, set()).add(b)
            out.setdefault(b, set()).add(a)
    return out


def files_present(data_root: str | Path, paths: Iterable[str]) -> set[str]:
    """The ground-truth paths (relative to ``data_root``) that exist as files."""
    root = Path(data_root)
    return {p for p in paths if (root / p).is_file()}


def restrict_search(search: SearchFn, allowed: Collection[str]) -> SearchFn:
    """Wrap ``search`` so that only results in ``allowed`` are kept (order and scores kept).

    Use it to score same-artist/same-sitter only within the labelled WikiArt images: other
    images in a catalog (NGA, People-Art, artists with < 5 works) carry no label, and one of
    them by the same artist would otherwise count as a false positive. Ask the underlying
    search for more results than k, since filtering shortens the list.
    """
    allowed_set = set(allowed)

    def wrapped(query: str) -> SearchOutput:
        ids, scores = _split(search(query))
        if scores is None:
            return [i for i in ids if i in allowed_set]
        return [(i, s) for i, s in zip(ids, scores, strict=True) if i in allowed_set]

    return wrapped


# ---------------------------------------------------------------------------- drivers


def _split(results: SearchOutput) -> tuple[list[str], list[float] | None]:
    """Separate ranked ids from scores; scores are None when the search gave plain paths."""
    items = list(results)
    if not items:
        return [], None
    if all(isinstance(x, str) for x in items):
        return [str(x) for x in items], None
    if all(isinstance(x, tuple | list) and len(x) == 2 for x in items):
        return [str(x[0]) for x in items], [float(x[1]) for x in items]
    raise TypeError(
        "search must return a list of paths or a list of (path, score) pairs, got "
        f"{type(items[0]).__name__} items"
    )


def _ranking(
    query: str,
    search: SearchFn,
    relevant: set[str],
    ignore: Mapping[str, Collection[str]] | None,
) -> tuple[list[str], list[float] | None, int]:
    """Run the search, drop the query itself and ignored non-relevant results.

    Returns the ids, their scores (or None) and how many results were ignored.
    """
    ids, scores = _split(search(query))
    junk = set(ignore.get(query, ())) - relevant if ignore else set()
    junk.add(query)
    keep = [i for i, x in enumerate(ids) if x not in junk]
    n_ignored = sum(1 for x in ids if x in junk and x != query)
    return (
        [ids[i] for i in keep],
        None if scores is None else [scores[i] for i in keep],
        n_ignored,
    )


def eval_instance(
    pairs: Sequence[InstancePair],
    search: SearchFn,
    available: Collection[str],
    *,
    ignore: Mapping[str, Collection[str]] | None = None,
) -> EvalResult:
    """Find the other file of the same painting: recall@1, recall@5 and AP per pair.

    Each pair queries with ``query_path``; ``target_path`` is the single relevant item, so
    AP equals the reciprocal rank and mean AP is the MRR. A pair is evaluated only when
    both files are in ``available``; the others are counted in ``n_missing``. Each row also
    has ``rank`` (1-based list position of the target, None if not returned; positional,
    not tie-aware), so the summary's mean rank is over found targets only and its count is
    the number found.

    ``ignore`` ({path: paths}, e.g. from ``duplicate_ignore_map``) removes known duplicates
    of the query from its ranking before scoring: an exact or near duplicate of the query
    (the same painting filed under a second title or artist) is a correct visual match
    that the task does not label relevant, and counting it as a miss would penalise a
    model for being right. They are removed rather than made relevant because the near
    duplicates are unverified. The pair's own target is never removed.
    """
    avail = set(available)
    rows: list[dict[str, Any]] = []
    missing: set[str] = set()
    n_missing = 0
    for pair in pairs:
        absent = [p for p in (pair.query_path, pair.target_path) if p not in avail]
        if absent:
            missing.update(absent)
            n_missing += 1
            continue
        relevant = {pair.target_path}
        ids, scores, n_ignored = _ranking(pair.query_path, search, relevant, ignore)
        rank = ids.index(pair.target_path) + 1 if pair.target_path in ids else None
        rows.append(
            {
                "query": pair.query_path,
                "target": pair.target_path,
                "source": pair.source,
                "rank": rank,
                "recall@1": recall_at_k(ids, relevant, 1, ranked_scores=scores),
                "recall@5": recall_at_k(ids, relevant, 5, ranked_scores=scores),
                "ap": average_precision(ids, relevant, ranked_scores=scores),
                "ignored": n_ignored,
            }
        )
    return EvalResult(
        task="instance",
        per_query=rows,
        summary=summarise(rows),
        missing=sorted(missing),
        n_missing=n_missing,
        breakdown=summarise_by(rows, "source"),
    )


def _eval_groups(
    task: str,
    labels: Mapping[str, str],
    search: SearchFn,
    available: Collection[str],
    ignore: Mapping[str, Collection[str]] | None,
    score: Callable[[list[str], set[str], list[float] | None], dict[str, float]],
) -> EvalResult:
    """Leave-one-out over labelled images: the others with the same label are relevant."""
    avail = set(available)
    missing = sorted(p for p in labels if p not in avail)
    members: dict[str, set[str]] = {}
    for path, label in labels.items():
        if path in avail:
            members.setdefault(label, set()).add(path)
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for query in sorted(p for p in labels if p in avail):
        label = labels[query]
        relevant = members[label] - {query}
        if not relevant:
            skipped.append(query)
            continue
        ids, scores, n_ignored = _ranking(query, search, relevant, ignore)
        row: dict[str, Any] = {"query": query, "label": label, "n_relevant": len(relevant)}
        row.update(score(ids, relevant, scores))
        row["ignored"] = n_ignored
        rows.append(row)
    return EvalResult(
        task=task,
        per_query=rows,
        summary=summarise(rows),
        missing=missing,
        n_missing=len(missing),
        skipped=skipped,
    )


def eval_same_artist(
    labels: Mapping[str, str],
    search: SearchFn,
    available: Collection[str],
    k: int = 10,
    *,
    ignore: Mapping[str, Collection[str]] | None = None,
) -> EvalResult:
    """Leave-one-out same-artist retrieval: precision@k and AP@k (mean = mAP@k) per image.

    Every available labelled image queries; the other available images by the same artist
    are relevant. AP@k is normalised by min(k, number relevant). Images whose artist has no
    other available image are listed in ``skipped``. ``ignore`` works as in
    ``eval_instance``; a duplicate by the same artist stays relevant (the label wins).
    The search should return at least k results.
    """

    def score(ids: list[str], relevant: set[str], scores: list[float] | None) -> dict[str, float]:
        return {
            f"precision@{k}": precision_at_k(ids, relevant, k, ranked_scores=scores),
            f"ap@{k}": average_precision(ids, relevant, k=k, ranked_scores=scores),
        }

    return _eval_groups("same_artist", labels, search, available, ignore, score)


def eval_same_sitter(
    labels: Mapping[str, str],
    search: SearchFn,
    available: Collection[str],
    *,
    ignore: Mapping[str, Collection[str]] | None = None,
) -> EvalResult:
    """Leave-one-out same-sitter retrieval: hit@1, hit@5 and AP over the group's other members.

    AP is over the whole returned list (unretrieved members contribute 0), so the search
    should return enough results to reach the group (e.g. 100). ``ignore`` works as in
    ``eval_instance``.
    """

    def score(ids: list[str], relevant: set[str], scores: list[float] | None) -> dict[str, float]:
        return {
            "hit@1": hit_at_k(ids, relevant, 1, ranked_scores=scores),
            "hit@5": hit_at_k(ids, relevant, 5, ranked_scores=scores),
            "ap": average_precision(ids, relevant, ranked_scores=scores),
        }

    return _eval_groups("same_sitter", labels, search, available, ignore, score)
