"""Aspects: what a catalog stores per painting. Each aspect turns a painting's analysis
(`artsim.analysis`, run once per batch for all the aspects) into rows (one per painting for
`global`, one per face or figure for `face` and `pose`), with vectors.

An aspect indexer records "processed, nothing found" as a row with row_id None, so that a
painting with no face is remembered as done and not re-examined on resume.

`local` (RootSIFT keypoints for verifying photo queries, `artsim.catalog.local`) keeps its
features outside the Parquet rows, in memory-mapped parts: its rows carry them as `payload`,
which the indexer's `write_payloads` stores before the rows are written (rows, then item rows:
the same crash order as every aspect).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from artsim.analysis import Analysis
from artsim.records import SourceItem

if TYPE_CHECKING:  # torch is imported only when an encoder is needed
    from artsim.encoders.base import Encoder

ASPECTS = ("global", "face", "pose", "local")
# a new catalog's aspects when none are asked for: photo queries need the stored keypoints
# for their votes (docs/photos.md: without them framed-photo recall@1 drops 0.95 -> 0.90)
DEFAULT_ASPECTS = ("global", "local")


@dataclass(slots=True)
class AspectRow:
    item_id: str
    row_id: str | None  # None: the painting was processed and has nothing for this aspect
    info: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    # what the aspect stores outside the Parquet rows (local features), None for the others
    payload: Any = None


class AspectIndexer(Protocol):
    aspect: str
    model_key: str
    vector_dims: dict[str, int]
    max_side: int

    def describe(self) -> dict[str, Any]: ...

    def rows(self, item: SourceItem, analysis: Analysis) -> list[AspectRow]:
        """The rows of one analysed painting (a row with row_id None when nothing was found)."""
        ...


class GlobalIndexer:
    """Whole-image embedding with the catalog's encoder."""

    aspect = "global"

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.model_key = encoder.name
        self.vector_dims = {"global": encoder.dim}
        self.max_side = encoder.preprocess.resize

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_key, "dims": self.vector_dims}

    def rows(self, item: SourceItem, analysis: Analysis) -> list[AspectRow]:
        assert analysis.vector is not None, "analysed without 'global'"
        return [AspectRow(item.id, item.id, {}, {"global": analysis.vector})]
