"""No import cycle between devicerisk's packages: each layer imports only the layers below it.

Every import in ``src/devicerisk`` (lazy ones inside functions included) is an edge from the importing
package to the imported one; a top-level module (``cli.py``, ``config.py``) is a package of its own.
"""

from __future__ import annotations

import ast
from itertools import pairwise
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "devicerisk"


def _package(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0].removesuffix(".py")


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "devicerisk":  # from devicerisk import _windows
            return [a.name for a in node.names]
        return [node.module.split(".")[1]] if node.module.startswith("devicerisk.") else []
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1] for a in node.names if a.name.startswith("devicerisk.")]
    return []


def package_graph(root: Path = SRC) -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the files that import it."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(root.rglob("*.py")):
        source = _package(path, root)
        graph.setdefault(source, {})
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node):
                if target != source:
                    graph.setdefault(source, {}).setdefault(target, set()).add(str(path.relative_to(root)))
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    """One cycle of packages (first package repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph()
    cycle = find_cycle(graph)
    if cycle:
        edges = [f"{a} -> {b} ({', '.join(sorted(graph[a][b]))})" for a, b in pairwise(cycle)]
        raise AssertionError("import cycle between packages:\n" + "\n".join(edges))
    assert {"contract", "privacy", "store", "ingest", "risk", "governance"} <= graph.keys()  # the walk saw them


#: The layers as the README's layout lists them: each imports only layers before it.
LAYERS = (
    "contract",
    "config",
    "engine",
    "privacy",
    "store",
    "ingest",
    "risk",
    "governance",
    "lookup",
    "analytics",
    "synth",
    "api",
    "runtime",
    "cli_runtime",
    "cli_retention",
    "cli_incident",
    "cli_decommission",
    "cli_entrust",
    "cli_risk",
    "cli_ops",
    "cli_api",
    "cli_lookup",
    "cli",
    "cli_main",
)


def test_each_layer_imports_only_the_layers_before_it() -> None:
    graph = package_graph()
    assert set(graph) - {"__init__"} == set(LAYERS), "a new package: give it its place in LAYERS and the README"
    upward = [
        (a, b, sorted(files))
        for a, imported in graph.items()
        for b, files in imported.items()
        if a in LAYERS and b in LAYERS and LAYERS.index(b) > LAYERS.index(a)
    ]
    assert upward == []


def test_the_check_finds_a_cycle(tmp_path: Path) -> None:
    """The walk sees lazy imports too: a function-level import that closes a loop is a cycle."""
    for package, body in {
        "alpha": "from devicerisk.beta.mod import f\n",
        "beta": "def f():\n    from devicerisk.alpha import thing\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "mod.py").write_text(body)
    assert find_cycle(package_graph(tmp_path)) == ["alpha", "beta", "alpha"]
