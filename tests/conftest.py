"""Shared fixtures: where the read-only sample data lives, and small generated images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("ARTSIM_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not (root / "wikiart").is_dir():
        pytest.skip(f"sample data not found at {root} (set ARTSIM_DATA)")
    return root
