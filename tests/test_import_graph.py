"""The import graph of harness, studies and benchmarks points one way (issue 28).

The graph is read with ``ast``, so an import inside a function counts as much as one at
the top of a module (a function-level import is still an edge: it runs, and it ties the two
modules together), and so does ``importlib.import_module("a.literal")``. Every module is
assigned a layer below; an import may point down or sideways within a layer, never up,
and no set of modules may import each other in a cycle. A module the map does not name
fails the test, so a new module has to say where it belongs.

Importing ``a.b`` also runs ``a/__init__.py``; that implicit edge is not counted (as in
other import linters): a package's ``__init__`` that re-exports its modules would otherwise
tie each module to its siblings. So a registry a package's modules import lives in a
module of its own (``harness.models.registry``), not in the package's ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "studies", "benchmarks")

# Layers, bottom to top. An entry names one module, or with ".*" a package and every module
# under it; the most specific entry wins (harness.theory.* is training, but the package's
# own __init__, which re-exports the claim figures, and harness.theory.report draw them).
LAYERS: dict[int, tuple[str, ...]] = {
    # 0 foundation: generic pieces that know nothing of studies, trials or tables.
    0: (
        "harness",  # the package itself: only __version__
        "harness.errors",
        "harness.write_errors",
        "harness.files",
        "harness.numbers",
        "harness.registry",
        "harness.environment",
        "harness.space",
        "harness.outputs",
        "harness.compiling",
        "harness.run_conditions",
        "harness.layout",  # where results and records go, as paths only
    ),
    # 1 declaration: what a study says and the registries it names: models, losses, data
    # sets, task kinds (what a task is, without training it), the config and its
    # validation, the trial record's format, the study registry and the claims' rules.
    1: (
        "harness.config",
        "harness.records",
        "harness.study",
        "harness.evidence",
        "harness.intervals",  # the evidence's confidence intervals
        "harness.dataset_counts",  # a data set's split sizes, for plans and prices
        "harness.registration",
        "harness.pairing",
        "harness.scope",
        "harness.power",
        "harness.recipes",
        "harness.models.*",
        "harness.losses",
        "harness.pixel_losses",
        "harness.loss_registry",
        "harness.data.*",
        "harness.task_kinds.*",
        "studies",  # the package alone (a docstring): harness.study finds study files in it
    ),
    # 2 training: one trial, from data on a device to its record.
    2: (
        "harness.tasks.*",
        "harness.train",
        "harness.trial_data",
        "harness.optim",
        "harness.outcome",
        "harness.image_metrics",
        "harness.theory.*",
    ),
    # 3 running: from a study to its trials on Ray and back to records on disk and MLflow.
    3: (
        "harness.expansion",
        "harness.plan",
        "harness.trials",
        "harness.trainable",
        "harness.tune",
        "harness.runner",
        "harness.tracking",
        "harness.ray_session",
        "harness.ray_leftovers",
        "harness.kept_trials",
        "harness.run_lock",
        "harness.termination",
        "harness.halving",
        "harness.selection",
        "harness.placement",
        "harness.stage_records",  # a stage's records written as its trials finish
    ),
    # 4 presentation: the results folder, tables, figures, the paper, prices, the UI, the
    # command line and the benchmarks that drive it all.
    4: (
        "harness.results",
        "harness.report.*",
        "harness.pricing.*",
        "harness.theory",
        "harness.theory.report",
        "harness.ui",
        "harness.ui_views",
        "harness.reproduce",
        "harness.reproduce_facts",
        "harness.agreement",
        "harness.cli",
        "benchmarks.*",
    ),
    # 5 study files: a study declares its stages and claims and draws its own tables, so
    # it may use every layer; the harness finds it by name (harness.study imports the
    # module a study's name gives), never by a static import.
    5: ("studies.*",),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Module name -> file, for every .py file under the given top-level packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module an imported name refers to: itself, or the closest enclosing known one
    (``harness.models.MODELS`` is the package ``harness.models``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    if not level:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> dict[str, int]:
    """Modules ``module`` imports (anywhere in its body) -> the first line that does."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: dict[str, int] = {}

    def add(name: str, line: int) -> None:
        target = _resolve(name, modules)
        if target is not None and target != module:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                # `from pkg import submodule` imports the submodule; otherwise the package.
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base,
                    node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node.args[0].value, node.lineno)
    return found


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, dict[str, int]]:
    """module -> {imported module: line} over every module under ``packages``."""
    modules = find_modules(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan's
    algorithm, iterative so a deep graph cannot hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def cycle_path(graph: Mapping[str, Mapping[str, int]], component: list[str]) -> str:
    """One cycle through a component, as 'a:line -> b:line -> ... -> a', for the message."""
    members = set(component)
    start = component[0]
    # Breadth-first from start's successors back to start, inside the component.
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier and start not in previous:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child in members and child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    path = [start]
    node = previous[start]
    while node != start:
        path.append(node)
        node = previous[node]
    path.append(start)
    path.reverse()
    return " -> ".join(
        f"{a} (line {graph[a][b]})" for a, b in zip(path, path[1:], strict=False)
    ) + f" -> {start}"


def layer_of(module: str, layers: Mapping[int, tuple[str, ...]]) -> int | None:
    best: tuple[int, int] | None = None  # (how specific the entry is, layer)
    for layer, names in layers.items():
        for name in names:
            package = name.removesuffix(".*")
            exact = module == package
            inside = name.endswith(".*") and (exact or module.startswith(package + "."))
            # An exact entry beats a package entry of the same name.
            rank = len(package) * 2 + (1 if exact and not name.endswith(".*") else 0)
            if (exact or inside) and (best is None or rank > best[0]):
                best = (rank, layer)
    return None if best is None else best[1]


def layer_problems(
    graph: Mapping[str, Mapping[str, int]], layers: Mapping[int, tuple[str, ...]]
) -> list[str]:
    """A line per unassigned module and per import that points up a layer."""
    problems = [
        f"{module} has no layer: add it to LAYERS in tests/test_import_graph.py"
        for module in sorted(graph)
        if layer_of(module, layers) is None
    ]
    for module in sorted(graph):
        own = layer_of(module, layers)
        for target, line in sorted(graph[module].items()):
            theirs = layer_of(target, layers)
            if own is not None and theirs is not None and theirs > own:
                problems.append(
                    f"{module} (layer {own}) imports {target} (layer {theirs}) at line {line}"
                )
    return problems


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph(ROOT, PACKAGES)


def test_the_import_graph_has_no_cycle(graph):
    found = [f"{', '.join(component)}; one cycle: {cycle_path(graph, component)}"
             for component in cycles(graph)]
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(found)


def test_every_module_has_a_layer_and_imports_point_down(graph):
    problems = layer_problems(graph, LAYERS)
    assert not problems, "\n".join(problems)


def test_the_graph_sees_function_level_and_importlib_imports(graph):
    # The reader must see what the module-level `import` statements hide, or the two tests
    # above would pass on a graph that misses edges.
    assert "harness.train" in graph["harness.trainable"]
    assert "harness.errors" in graph["harness.config"]


# The checks themselves must be able to fail: a tiny package written to a temporary folder.


def _package(root: Path, files: Mapping[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    _package(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/low.py": "def f():\n    from toy import high\n    return high\n",
            "toy/high.py": "from . import low\n",
            "toy/other.py": "import importlib\nimportlib.import_module('toy.low')\n",
        },
    )
    graph = import_graph(tmp_path, ["toy"])
    assert graph["toy.other"] == {"toy.low": 2}
    found = cycles(graph)
    assert found == [["toy.high", "toy.low"]]
    assert cycle_path(graph, found[0]) == "toy.high (line 1) -> toy.low (line 2) -> toy.high"


def test_an_upward_import_and_an_unassigned_module_are_found(tmp_path):
    _package(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/low.py": "x = 1\n\ndef f():\n    from toy.high import g\n",
            "toy/high.py": "from toy.low import x\n\ndef g():\n    return x\n",
            "toy/new.py": "",
        },
    )
    graph = import_graph(tmp_path, ["toy"])
    layers = {0: ("toy", "toy.low"), 1: ("toy.high",)}  # toy.new: none
    assert layer_problems(graph, layers) == [
        "toy.new has no layer: add it to LAYERS in tests/test_import_graph.py",
        "toy.low (layer 0) imports toy.high (layer 1) at line 4",
    ]
