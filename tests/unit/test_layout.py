"""
The package's layout, as the README describes it: layers that import only those below them, no import
cycle, and a client free of Airflow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_provider_helpcrunch

PACKAGE = Path(airflow_provider_helpcrunch.__file__).parent
NAME = PACKAGE.name

#: each part of the package and its layer: a module imports only from its own layer or those below.
LAYERS = {
    "": 0,  # the root's shared modules: exceptions, outside_text, timestamps, vocabulary
    "schemas": 0,
    "client": 1,
    "hooks": 2,
    "triggers": 3,
    "operators": 3,
    "sensors": 4,
    "transfers": 4,
    "testing": 4,  # the stand-in and its helpers, for users' tests
    "get_provider_info": 5,  # what Airflow reads of the whole provider
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")[1:]
    if not parts:
        return 0
    return LAYERS.get(parts[0], LAYERS[""])


def imports(path: Path) -> set[str]:
    """Every module of the package or outside it that ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {
    module: {name for name in imports(path) if name in MODULES and name != module}
    for module, path in MODULES.items()
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    above = sorted(name for name in GRAPH[module] if layer(name) > layer(module))
    assert not above, f"{module} (layer {layer(module)}) imports {above}"


def test_the_import_graph_has_no_cycle():
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for name in sorted(GRAPH[module]):
            visit(name, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


@pytest.mark.parametrize("module", sorted(name for name in MODULES if layer(name) == LAYERS["client"]))
def test_the_client_imports_nothing_of_airflow(module):
    airflow = sorted(name for name in imports(MODULES[module]) if name.split(".")[0] == "airflow")
    assert not airflow, f"{module} imports {airflow}"


def test_few_modules_at_the_root():
    root = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert root == ["__init__", "exceptions", "get_provider_info", "outside_text", "timestamps", "vocabulary"]
