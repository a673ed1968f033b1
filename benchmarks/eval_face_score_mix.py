"""Same-sitter retrieval when the face score mixes identity and look-alike similarity.

Scores the sitter task of an evaluation catalog (`make eval` builds `eval-catalog/`) with face
similarity = alpha * identity cosine + (1 - alpha) * look cosine (the catalog's encoder on the
face crop), for face-only and fused (global 1 + face 1) search. alpha = 1 is what artsim does.

    .venv/bin/python benchmarks/eval_face_score_mix.py --catalog eval-catalog
"""

from __future__ import annotations

import argparse
from pathlib import Path

import artsim.search.fusion as fusion
from artsim.catalog import Catalog
from artsim.evaluation.groundtruth import (
    duplicate_ignore_map,
    eval_same_sitter,
    load_exact_duplicates,
    load_near_duplicates,
    load_same_sitter,
)
from artsim.evaluation.run import gt_index, make_search

REPO = Path(__file__).resolve().parents[1]


def mixed_face_similarities(alpha: float):
    """fusion.face_similarities with the identity/look mix; everything around it unchanged."""

    def face_similarities(data, chosen):
        identity = data.vectors["identity"] @ chosen["identity"]
        return alpha * identity + (1 - alpha) * (data.vectors["look"] @ chosen["look"])

    return face_similarities


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, default=REPO / "eval-catalog")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--alphas", type=float, nargs="+", default=[1.0, 0.7, 0.5])
    args = ap.parse_args()
    gt = args.data / "groundtruth"
    cat = Catalog.open(args.catalog)
    path_to_id, id_to_path = gt_index(cat, args.data)
    ignore = duplicate_ignore_map(load_exact_duplicates(gt), load_near_duplicates(gt))
    sitters = load_same_sitter(gt)
    print("| identity weight | search | hit@1 | hit@5 | mAP |\n|---:|---|---:|---:|---:|")
    for alpha in args.alphas:
        fusion.face_similarities = mixed_face_similarities(alpha)
        for label, weights in (
            ("face only", {"global": 0.0, "face": 1.0, "pose": 0.0}),
            ("fused (global 1 + face 1)", {"global": 1.0, "face": 1.0, "pose": 0.0}),
        ):
            search = make_search(cat, path_to_id, id_to_path, "fused", 100, weights=weights)
            m = eval_same_sitter(sitters, search, set(path_to_id), ignore=ignore).summary["means"]
            print(f"| {alpha} | {label} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | {m['ap']:.3f} |")


if __name__ == "__main__":
    main()
