"""The layering in docs/ARCHITECTURE.md ("Layout and dependency direction"), checked on the source.

The import graph of the product code is read with `ast` (every `import`, at module level or
inside a function), so a cycle cannot hide behind an import done at call time:
- no cycle anywhere;
- no import from a lower layer to a higher one (core ← adapters ← orders ← project);
- no product module imports a sandbox; services never import tasks, views or admin;
- imports inside functions only in `AppConfig.ready()`, where Django wants them;
- no module over ~350 lines unless its docstring says why.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("storefront", "accounts", "payments", "openrouter", "orders")
MAX_LINES = 350

# storefront holds both the lowest layer (plumbing every app may use) and the project wiring
# at the top (settings, urls, the Celery app, the health view, management commands).
CORE = {
    "storefront.batched_rate_limit",
    "storefront.catalogue_version",
    "storefront.compiled_query",
    "storefront.encryption",
    "storefront.heartbeats",
    "storefront.http",
    "storefront.log_format",
    "storefront.rate_limited",
    "storefront.redaction",
    "storefront.sandbox_apps",
}
SANDBOXES = ("payments.sandbox", "openrouter.sandbox")


def layer_of(module: str) -> str:
    if module in CORE:
        return "core"
    if module.startswith(SANDBOXES):
        return "sandbox"
    top = module.split(".")[0]
    if top in ("payments", "openrouter", "accounts"):
        return "adapter"
    if top == "orders":
        return "orders"
    return "project"


# What each layer may import (besides itself). Sandboxes are dev-only apps: they may use their
# adapter, but nothing imports them.
MAY_IMPORT = {
    "core": {"core"},
    "adapter": {"core"},
    "sandbox": {"core", "adapter"},
    "orders": {"core", "adapter"},
    "project": {"core", "adapter", "orders"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[_module_name(path)] = path
    return modules


MODULES = product_modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(module: str, path: Path, node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        for alias in node.names:
            yield f"{base}.{alias.name}"


class _Imports(ast.NodeVisitor):
    """Collect (imported module, inside which function or None) for one file."""

    def __init__(self, module: str, path: Path):
        self.module, self.path = module, path
        self.found: list[tuple[str, str | None]] = []
        self.function: list[str] = []

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.function.append(node.name)
        self.generic_visit(node)
        self.function.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def _visit_import(self, node: ast.Import | ast.ImportFrom) -> None:
        for name in _imported_names(self.module, self.path, node):
            target = _resolve(name)
            if target and target != self.module:
                self.found.append((target, self.function[-1] if self.function else None))

    visit_Import = _visit_import
    visit_ImportFrom = _visit_import


def import_graph() -> dict[str, list[tuple[str, str | None]]]:
    graph = {}
    for module, path in MODULES.items():
        visitor = _Imports(module, path)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        graph[module] = visitor.found
    return graph


GRAPH = import_graph()


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _arrows() -> Iterator[tuple[str, str]]:
    """Every (importing module, imported module) pair of the product code."""
    for module, targets in GRAPH.items():
        for target, _ in targets:
            yield module, target


def test_the_graph_sees_the_code():
    # a broken walker would pass every rule below; make sure it finds known arrows
    assert ("orders.services.transitions", None) in GRAPH["orders.services.fulfilment"]
    assert ("payments.client", None) in GRAPH["orders.services.payment_updates"]
    assert ("orders.tasks", "ready") in GRAPH["orders.apps"]


def test_no_import_cycle():
    edges = {module: {target for target, _ in targets} for module, targets in GRAPH.items()}
    # a package imports its own modules when they are first used: not an arrow back
    for module in edges:
        edges[module] = {t for t in edges[module] if not module.startswith(t + ".")}
    assert _cycles(edges) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_runs_up_a_layer():
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, target in _arrows()
        if layer_of(target) != layer_of(module) and layer_of(target) not in MAY_IMPORT[layer_of(module)]
    ]
    assert upward == []


def test_adapters_do_not_know_each_other():
    crossing = [
        f"{module} imports {target}"
        for module, target in _arrows()
        if layer_of(module) in ("adapter", "sandbox")
        and target.split(".")[0] != module.split(".")[0]
        and layer_of(target) != "core"
    ]
    assert crossing == []


def test_no_product_module_imports_a_sandbox():
    offenders = [
        f"{module} imports {target}"
        for module, target in _arrows()
        if target.startswith(SANDBOXES) and not module.startswith(SANDBOXES)
    ]
    assert offenders == []


@pytest.mark.parametrize("lower", ["orders.services", "orders.models", "orders.alerts", "orders.transition_effects"])
def test_orders_services_never_import_what_sits_above_them(lower):
    above = ("orders.tasks", "orders.views", "orders.admin", "orders.urls", "orders.apps", "orders.management")
    offenders = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module == lower or module.startswith(lower + ".")
        for target, _ in targets
        if target.startswith(above)
    ]
    assert offenders == []


def test_imports_inside_functions_only_in_app_ready():
    hidden = [
        f"{module}: {target} imported inside {function}()"
        for module, targets in GRAPH.items()
        for target, function in targets
        if function is not None and not (module.endswith(".apps") and function == "ready")
    ]
    assert hidden == []


def test_no_module_over_the_size_limit_without_a_reason():
    too_long = []
    for module, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if "Why this module is long:" not in docstring:
            too_long.append(f"{module}: {lines} lines")
    assert too_long == []
