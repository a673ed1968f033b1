"""Entry points bound late (artsim.facades): Catalog.search reaches the search stage without
the catalog importing it (tests/test_imports.py checks the graph)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import artsim
from artsim import facades


def test_the_package_root_binds_search():
    assert facades.search is not facades._unbound
    assert facades.search is artsim._search


def test_an_unbound_facade_says_who_binds_it():
    with pytest.raises(RuntimeError, match="bound by the artsim package root"):
        facades._unbound(None, "query")


def test_importing_the_catalog_alone_binds_it_and_pulls_no_search_module():
    code = (
        "import sys; from artsim.catalog import Catalog; from artsim import facades; "
        "assert facades.search is not facades._unbound; "
        "print(sorted(m for m in sys.modules if m.startswith('artsim.search')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # search is imported on first use, not before


def test_catalog_search_goes_through_the_facade(real_catalog, monkeypatch):
    from artsim.catalog import Catalog

    seen = []
    monkeypatch.setattr(facades, "search", lambda cat, q, **kw: seen.append((q, kw)) or ["hit"])
    assert Catalog.open(real_catalog).search("img3.jpg", k=2) == ["hit"]
    assert seen == [("img3.jpg", {"k": 2, "aspect": "global", "where": None})]
