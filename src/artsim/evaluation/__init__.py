"""Evaluation: retrieval metrics, ground-truth loaders and drivers, query distortions, SSIM.

Everything here is pure and model-free: the drivers take a search function, so they can
score any engine (or a fake one in tests). Submodules:

- ``metrics``     -- AP, recall/precision/hit@k, reciprocal rank (tie-aware), summarise;
- ``groundtruth`` -- loaders for groundtruth/*.csv and the instance / same-artist /
                     same-sitter drivers;
- ``distort``     -- seeded "photo of a painting from the web" distortions;
- ``pixel``       -- the SSIM pixel baseline.
"""

from artsim.evaluation.groundtruth import (
    EvalResult,
    ExactDuplicate,
    GroundTruthError,
    InstancePair,
    NearDuplicate,
    duplicate_ignore_map,
    eval_instance,
    eval_same_artist,
    eval_same_sitter,
    files_present,
    load_exact_duplicates,
    load_instance_pairs,
    load_near_duplicates,
    load_same_artist,
    load_same_sitter,
    restrict_search,
)
from artsim.evaluation.metrics import (
    average_precision,
    hit_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    summarise,
    summarise_by,
)

__all__ = [
    "EvalResult",
    "ExactDuplicate",
    "GroundTruthError",
    "InstancePair",
    "NearDuplicate",
    "average_precision",
    "duplicate_ignore_map",
    "eval_instance",
    "eval_same_artist",
    "eval_same_sitter",
    "files_present",
    "hit_at_k",
    "load_exact_duplicates",
    "load_instance_pairs",
    "load_near_duplicates",
    "load_same_artist",
    "load_same_sitter",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "restrict_search",
    "summarise",
    "summarise_by",
]
