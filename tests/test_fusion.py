from __future__ import annotations

import numpy as np
import pytest

from artsim.catalog import Catalog
from artsim.errors import ArtsimError
from artsim.search.fusion import _best_per_item, _calibrate
from tests.images_factory import mosaic


def test_best_per_item_and_missing():
    row_pos = np.array([0, 0, 2, 2, 2])
    sims = np.array([0.1, 0.5, 0.3, 0.9, 0.2], dtype=np.float32)
    best, best_row = _best_per_item(4, row_pos, sims)
    assert best[0] == pytest.approx(0.5) and best_row[0] == 1
    assert best[2] == pytest.approx(0.9) and best_row[2] == 3
    assert np.isnan(best[1]) and np.isnan(best[3]) and best_row[1] == -1


def test_missing_aspect_is_neutral_not_zero():
    best = np.array([0.9, 0.5, np.nan, 0.1], dtype=np.float32)
    s = _calibrate("face", best, np.array([0, 1, -1, 2]))
    assert s.z[2] == 0.0  # no face: no evidence either way
    assert s.z[0] > 0 > s.z[3]
    assert s.z[[0, 1, 3]].mean() == pytest.approx(0.0, abs=1e-6)


def test_fused_with_global_only_matches_global_ranking(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        mosaic(90, 90, seed=i).save(src / f"{i}.jpg")
    cat = Catalog.create(tmp_path / "cat")
    cat.add(src)
    g = [r.id for r in cat.search("0.jpg", k=5)]
    f = cat.search("0.jpg", k=5, aspect="fused")
    assert [r.id for r in f] == g
    assert all(r.aspect == "fused" and "global" in r.scores for r in f)
    with pytest.raises(ArtsimError, match="unknown aspect"):
        cat.search("0.jpg", aspect="fused", weights={"colour": 1.0})
    with pytest.raises(ArtsimError, match="nothing to combine"):
        cat.search("0.jpg", aspect="fused", weights={"global": 0.0})
