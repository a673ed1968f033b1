"""Aspects: what a catalog embeds per painting. Each aspect turns decoded images into rows
(one per painting for `global`, one per face or figure for `face` and `pose`), with vectors.

An aspect indexer records "processed, nothing found" as a row with row_id None, so that a
painting with no face is remembered as done and not re-examined on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from artsim.images import LoadedImage
from artsim.records import SourceItem

ASPECTS = ("global", "face", "pose")


@dataclass(slots=True)
class AspectRow:
    item_id: str
    row_id: str | None  # None: the painting was processed and has nothing for this aspect
    info: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


class AspectIndexer(Protocol):
    aspect: str
    model_key: str
    vector_dims: dict[str, int]
    max_side: int

    def describe(self) -> dict[str, Any]: ...

    def process(self, batch: list[tuple[SourceItem, LoadedImage]]) -> list[AspectRow]: ...


class GlobalIndexer:
    """Whole-image embedding with the catalog's encoder."""

    aspect = "global"

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.model_key = encoder.name
        self.vector_dims = {"global": encoder.dim}
        self.max_side = encoder.preprocess.resize

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_key, "dims": self.vector_dims}

    def process(self, batch: list[tuple[SourceItem, LoadedImage]]) -> list[AspectRow]:
        vecs = self.encoder.embed_images(
            [li.image for _, li in batch], batch_size=max(1, len(batch))
        )
        return [
            AspectRow(item.id, item.id, {}, {"global": v})
            for (item, _), v in zip(batch, vecs, strict=True)
        ]
