"""Tests mirror modules: every source module under src/artsim has its own test module
(docs/architecture.md, "Tests"), so that a new module without tests fails here instead of
drifting unnoticed.

The test module of artsim.P.N is tests/test_N.py when no other module is called N, else
tests/test_P_N.py (tests/test_routes_search.py for artsim.server.routes.search); the full dotted
path joined by "_" always works too, and a package's own test module is named after the package
(tests/test_catalog.py for artsim/catalog/__init__.py). A few older names predate the rule
(ALIASES); the modules that need none are listed with the reason (UNTESTED)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import artsim

SRC = Path(artsim.__file__).parent
TESTS = Path(__file__).parent

# test modules named before the rule; each maps one source module to its test module
ALIASES = {
    "artsim.detectors.faces": "test_faces.py",
    "artsim.detectors.poses": "test_poses.py",
    "artsim.encoders.faces": "test_face_encoder.py",
    "artsim.encoders.poses": "test_pose_encoder.py",
    "artsim.search.photo": "test_photo_search.py",
    "artsim.server.app": "test_server.py",
    "artsim.visualize.maps": "test_maps.py",
}

# modules with no behaviour of their own to test, and why; keep this list short
UNTESTED = {
    "artsim": "the package root: lazy re-exports and the facade binding (tests/test_facades.py)",
    "artsim.detectors": "an empty package marker",
    "artsim.visualize": "an empty package marker",
    "artsim.server.routes": "an empty package marker",
    "artsim.evaluation": "re-exports of metrics and groundtruth",
    "artsim.search.index": "re-exports artsim.catalog.index (tests/test_catalog_index.py)",
    # issue 17: covered by tests/test_verify.py for now; branch photos-speed gives it its own
}


def source_modules() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = ["artsim", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    return out


def expected_test_files(module: str, modules: list[str]) -> set[str]:
    """The file names a test module of `module` may have (see the module docstring)."""
    base = Counter(m.rsplit(".", 1)[-1] for m in modules if m != "artsim")
    parts = [p.rstrip("_") for p in module.split(".")[1:]]  # global_ -> global
    if not parts:
        return {"test_artsim.py"}
    names = {"test_" + "_".join(parts) + ".py"}
    if len(parts) >= 2:
        names.add(f"test_{parts[-2]}_{parts[-1]}.py")
    if len(parts) == 1 or base[module.rsplit(".", 1)[-1]] == 1:
        names.add(f"test_{parts[-1]}.py")
    if module in ALIASES:
        names.add(ALIASES[module])
    return names


def test_the_name_rule() -> None:
    modules = [
        "artsim",
        "artsim.errors",
        "artsim.search",
        "artsim.search.faces",
        "artsim.search.global_",
        "artsim.catalog.faces",
        "artsim.catalog.store",
        "artsim.server.errors",
        "artsim.server.routes.search",
    ]
    assert expected_test_files("artsim.catalog.store", modules) == {
        "test_catalog_store.py",
        "test_store.py",
    }
    # a name two modules share needs its package in the test's name
    assert expected_test_files("artsim.search.faces", modules) == {"test_search_faces.py"}
    assert "test_errors.py" in expected_test_files("artsim.errors", modules)
    assert "test_errors.py" not in expected_test_files("artsim.server.errors", modules)
    assert "test_search.py" not in expected_test_files("artsim.server.routes.search", modules)
    assert "test_routes_search.py" in expected_test_files("artsim.server.routes.search", modules)
    assert "test_search_global.py" in expected_test_files("artsim.search.global_", modules)


def test_every_source_module_has_a_test_module() -> None:
    modules = source_modules()
    have = {p.name for p in TESTS.glob("test_*.py")}
    missing = {
        m: sorted(expected_test_files(m, modules))
        for m in modules
        if m not in UNTESTED and not expected_test_files(m, modules) & have
    }
    assert not missing, "source modules without a test module (add one, named as listed): " + (
        "; ".join(f"{m}: {' or '.join(names)}" for m, names in missing.items())
    )


def test_the_exceptions_are_still_needed() -> None:
    modules = source_modules()
    have = {p.name for p in TESTS.glob("test_*.py")}
    gone = [m for m in [*UNTESTED, *ALIASES] if m not in modules]
    assert not gone, f"listed in tests/test_layout.py but no longer a module: {gone}"
    tested = [m for m in UNTESTED if expected_test_files(m, modules) & have]
    assert not tested, f"these have a test module now; remove them from UNTESTED: {tested}"
    stale = [m for m, name in ALIASES.items() if name not in have]
    assert not stale, f"ALIASES name test modules that do not exist: {stale}"
