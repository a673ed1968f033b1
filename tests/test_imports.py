"""The import graph between artsim's packages has no circle: each stage imports only the
stages below it (docs/architecture.md). Function-level and TYPE_CHECKING imports count too:
they are dependencies all the same."""

from __future__ import annotations

import ast
from pathlib import Path

import artsim

SRC = Path(artsim.__file__).parent


def _unit(module: str) -> str:
    """The graph node of a module: its top-level package or module under artsim
    (artsim.search.faces -> artsim.search); the package root stays artsim."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC.parent / rel).is_dir() or (SRC.parent / rel).with_suffix(".py").is_file()


def imported_modules(path: Path) -> set[str]:
    """Every artsim module `path` imports, anywhere in the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "artsim")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "artsim":
                continue
            for a in node.names:  # `from artsim import records` imports the module artsim.records
                sub = f"{mod}.{a.name}"
                out.add(sub if _is_module(sub) else mod)
    return out


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        src = _unit(_module_name(path))
        deps = graph.setdefault(src, set())
        for mod in imported_modules(path):
            dst = _unit(mod)
            if dst != src:
                deps.add(dst)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of nodes (first == last), or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_checker_finds_a_circle_and_reads_every_kind_of_import() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    # function-level, TYPE_CHECKING and relative imports are all found
    catalog = package_graph()["artsim.catalog"]
    assert "artsim.analysis" in catalog and "artsim.images" in catalog
    assert "artsim.catalog" in package_graph()["artsim.search"]


def test_search_depends_on_the_catalog_never_the_reverse() -> None:
    graph = package_graph()
    assert "artsim.search" not in graph["artsim.catalog"]
    assert "artsim.catalog" in graph["artsim.search"]


def test_no_import_circle_between_artsim_packages() -> None:
    cycle = find_cycle(package_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])
