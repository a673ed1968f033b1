"""Whole-painting search: the catalog encoder's vector against the global index."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from artsim.records import SearchResult
from artsim.search import Query, masked_search, to_result

if TYPE_CHECKING:
    from artsim.catalog import Catalog


def query_vector(catalog: Catalog, query: Query) -> np.ndarray:
    """The query's global vector: stored for a catalog item, else computed now."""
    if query.item_id is not None:
        data = catalog.aspect("global")
        rows = data.rows_of_item(query.item_id)
        if rows:
            return data.vectors["global"][rows[0]]
    vector = query.analyse(catalog, {"global"}).vector
    assert vector is not None
    return vector


def search_global(
    catalog: Catalog,
    query: Query,
    *,
    k: int = 10,
    mask: np.ndarray | None = None,
    exclude: str | None = None,
    query_expansion: int = 0,
    whiten: bool = False,
) -> list[SearchResult]:
    data, index = catalog.vector_index("global")
    qv = query_vector(catalog, query)
    if whiten:
        from artsim.search.whitening import whitened_index

        wh, white_index = whitened_index(catalog)
        data, index, qv = data, white_index, wh.apply(qv)[0]
    if query_expansion > 0:
        # average query expansion: the query plus its top results, searched again
        _, rows = masked_search(catalog, data, index, qv, query_expansion, mask, exclude)
        if rows.size:
            qv = qv + index.rows(rows).sum(0)
            qv = qv / np.linalg.norm(qv)
    scores, rows = masked_search(catalog, data, index, qv, k, mask, exclude)
    return [
        to_result(catalog, data.row_ids[r], s, "global") for s, r in zip(scores, rows, strict=True)
    ]
