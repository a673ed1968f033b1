"""What a plain `pip install` gives: every import declared, extras lazy and named when missing.

The install itself (a fresh venv, pip alone, a few paintings indexed with faces) is checked by
.ci/install_check.sh (`make test-install`), which takes minutes.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from artsim.errors import ArtsimError, ModelUnavailableError

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_canon(re.match(r"[A-Za-z0-9._-]+", r).group(0)) for r in requirements}


CORE = _names(PYPROJECT["project"]["dependencies"])
EXTRAS = {k: _names(v) for k, v in PYPROJECT["project"]["optional-dependencies"].items()}


# dlib-bin's metadata lists only its extension module (_dlib_pybind11) as top-level
ALIASES = {"dlib": ["dlib-bin"]}


@functools.cache
def _packages() -> dict[str, list[str]]:
    return {**md.packages_distributions(), **ALIASES}


def _distribution(module: str) -> str:
    dists = _packages().get(module)
    if not dists:
        # an extra the dev install leaves out (openvino): its module is named as its distribution
        declared = CORE | set().union(*EXTRAS.values())
        assert _canon(module) in declared, (
            f"{module} is imported but neither installed nor declared"
        )
        return _canon(module)
    return _canon(dists[0])


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(n, ast.Name) and n.id in ("ImportError", "Exception") for n in names):
            return True
    return False


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module, whether it is imported unconditionally when the file is imported)."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, eager: bool) -> None:
        lazy = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if lazy or (isinstance(node, ast.Try) and _catches_import_error(node)):
            eager = False
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.extend((a.name.split(".")[0], eager) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], eager))
        for child in ast.iter_child_nodes(node):
            visit(child, eager)

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


def _third_party(paths: list[Path]) -> dict[str, tuple[str, bool]]:
    """distribution -> (a file importing it, whether some file imports it eagerly)."""
    out: dict[str, tuple[str, bool]] = {}
    for path in paths:
        for module, eager in _imports(path):
            if module in sys.stdlib_module_names or module in ("artsim", "tests", "__future__"):
                continue
            dist = _distribution(module)
            _, was_eager = out.get(dist, ("", False))
            out[dist] = (str(path.relative_to(REPO)), was_eager or eager)
    return out


# Modules that exist only for an extra may import it at module level, as long as no other
# module of the package imports them at module level.
EXTRA_ONLY_MODULES = {"artsim.catalog.distributed": "src/artsim/catalog/distributed.py"}


def _eager_artsim_imports(path: Path) -> set[str]:
    out: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:  # module level only
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_every_import_of_the_package_is_declared_and_extras_are_imported_lazily() -> None:
    files = sorted((REPO / "src" / "artsim").rglob("*.py"))
    extra_only = {REPO / f for f in EXTRA_ONLY_MODULES.values()}
    used = _third_party(files)
    extras = set().union(*(v for k, v in EXTRAS.items() if k != "dev"))
    undeclared = {d: f for d, (f, _) in used.items() if d not in CORE | extras}
    assert not undeclared, f"imported but not in pyproject dependencies: {undeclared}"
    core_used = _third_party([f for f in files if f not in extra_only])
    eager_extras = {d: f for d, (f, eager) in core_used.items() if eager and d not in CORE}
    assert not eager_extras, f"an extra imported at module level: {eager_extras}"
    for f in files:
        eager = _eager_artsim_imports(f) & set(EXTRA_ONLY_MODULES)
        assert not eager, f"{f.relative_to(REPO)} imports {eager} at module level"


def test_what_the_tests_import_is_in_the_dev_extra() -> None:
    used = _third_party(sorted((REPO / "tests").rglob("*.py")))
    declared = CORE | set().union(*EXTRAS.values())
    assert "psutil" in used
    assert not {d: f for d, (f, _) in used.items() if d not in declared}


def test_no_runtime_setuptools_pin_and_mtcnn_is_a_plain_dependency() -> None:
    assert "setuptools" not in CORE  # nothing imports pkg_resources at run time (below)
    assert "facenet-pytorch" in CORE
    # 2.6.0 pins torch<2.3; 2.5.3 has the same MTCNN code and weights without that pin
    assert any(r.startswith("facenet-pytorch==2.5.3") for r in PYPROJECT["project"]["dependencies"])


def test_dlib_model_files_resolve_without_pkg_resources() -> None:
    code = (
        "import sys\n"
        "from artsim.detectors.faces import dlib_model_path\n"
        "assert dlib_model_path('mmod_human_face_detector.dat').is_file()\n"
        "print('pkg_resources' in sys.modules, 'face_recognition_models' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_a_hugging_face_model_without_transformers_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from artsim.encoders.hf import load_hf_encoder

    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails as if not installed
    with pytest.raises(ModelUnavailableError, match=r"pip install 'artsim\[hf\]'"):
        load_hf_encoder("dinov2-small", "facebook/dinov2-small", "cls")


def test_the_ssim_baseline_without_scikit_image_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "skimage.metrics", None)
    monkeypatch.delitem(sys.modules, "artsim.evaluation.pixel", raising=False)
    with pytest.raises(ArtsimError, match=r"pip install 'artsim\[eval\]'"):
        importlib.import_module("artsim.evaluation.pixel")
    monkeypatch.delitem(sys.modules, "artsim.evaluation.pixel", raising=False)
