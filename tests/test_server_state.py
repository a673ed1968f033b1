"""What one app holds (artsim.server.state): the catalog loaded once, facets, lookups."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException

from artsim.server.state import State
from artsim.server.uploads import UploadExecutor
from tests.server_support import FakeCatalog


def _state(fake: FakeCatalog | None, path: Path) -> State:
    uploads = UploadExecutor.in_threads(fake, 1)
    return State(path, fake, "pca", uploads, {"max_upload_bytes": 10, "max_pixels": 10})


def test_load_reads_metadata_and_facets_once(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=6)
    state = _state(fake, fake.path)
    assert state.upload_target is fake  # an injected catalog is searched as it is
    assert state.cat() is fake
    assert len(state.metadata) == 6 and state.facets["items"] == 6
    first = state.metadata
    state.load()
    assert state.metadata is first  # not read again


def test_a_catalog_path_is_opened_on_first_use(real_catalog):
    state = _state(None, real_catalog)
    assert state.catalog is None and state.upload_target == str(real_catalog)
    cat = state.cat()
    assert len(cat) == 14 and state.facets["items"] == 14


def test_lookup_is_404_for_an_unknown_id(tmp_path):
    fake = FakeCatalog(tmp_path / "f", n=2)
    state = _state(fake, fake.path)
    assert state.lookup(fake.ids[0]) is fake
    with pytest.raises(HTTPException) as err:
        state.lookup("../../etc/passwd")
    assert err.value.status_code == 404 and "no painting with id" in err.value.detail


def test_scrub_uses_the_catalog_path(tmp_path):
    state = _state(FakeCatalog(tmp_path / "cat", n=1), tmp_path / "cat")
    assert state.scrub(f"{tmp_path / 'cat'}/x.parquet: bad") == "cat/x.parquet: bad"
