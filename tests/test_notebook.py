"""The tutorial notebook runs from top to bottom (60 NGA paintings, a few minutes on 2 cores)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def test_tutorial_notebook_runs(data_dir):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip(
        "ipykernel", reason="the notebook needs a Python kernel (pip install ipykernel)"
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env_before = os.environ.get("ARTSIM_DATA")
    os.environ["ARTSIM_DATA"] = str(data_dir)  # the kernel inherits it
    try:
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=900,
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("ARTSIM_DATA", None)
        else:
            os.environ["ARTSIM_DATA"] = env_before
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "indexed 60 paintings" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # contact sheets and the map were drawn inline
    # face and pose sections either show results or say why they cannot
    assert ("face search unavailable" in text) or ("box" in text)
    assert ("pose search unavailable" in text) or ("figure" in text)
