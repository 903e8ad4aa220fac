"""The package map of docs/architecture.md, enforced: imports flow one way, and no module imports
itself back through others. Every import counts, including those inside functions; only imports
for type annotations (under `if TYPE_CHECKING:`) are left out, since they never run."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hardware", "workloads", "sim", "dashboard")

# Lowest first. A module may import its own layer and those below it; the groups that share a layer
# (studies and fidelity; the CLI and the dashboard) may not import each other.
LAYERS = [
    ("hardware",),
    ("workloads",),
    ("sim.files", "sim.format", "sim.errors", "sim.stats", "sim.cost"),
    ("sim.engine",),
    ("sim.limits",),
    ("sim.scenario",),
    ("sim.runnable",),
    ("sim.converge",),
    ("sim.api",),
    ("sim.stream",),
    ("sim.studies", "sim.fidelity"),
    ("sim.report",),
    ("sim.cli", "dashboard"),
]
# The one sanctioned crossing within a layer: the CLI registers the `dashboard` command.
ALLOWED = {("sim.cli.main", "dashboard.cli")}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The ctxsim module an imported name lives in (a submodule if one exists), or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (annotations only, never imported)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in (child, *_runtime_nodes(child)))
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {target for n in names if (target := _resolve(n)) and target != module}
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _group(module: str) -> tuple[int, str]:
    if module == "sim":  # the namespace's own (empty) __init__
        return 0, "sim"
    for layer, groups in enumerate(LAYERS):
        for group in groups:
            if module == group or module.startswith(group + "."):
                return layer, group
    raise AssertionError(f"{module} is in no layer of the package map")


def test_every_module_has_a_layer():
    for module in MODULES:
        _group(module)


def test_imports_flow_downhill():
    wrong = []
    for module, targets in GRAPH.items():
        layer, group = _group(module)
        for target in targets:
            t_layer, t_group = _group(target)
            if (module, target) in ALLOWED:
                continue
            if t_layer > layer or (t_layer == layer and t_group != group):
                wrong.append(f"{module} ({group}) imports {target} ({t_group})")
    assert not wrong, "imports against the package map:\n" + "\n".join(sorted(wrong))


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles() == []


def test_the_checker_sees_a_violation():
    GRAPH["hardware.spec"].add("sim.engine.replica")
    try:
        layer, _ = _group("hardware.spec")
        assert _group("sim.engine.replica")[0] > layer
        assert _cycles() == [] or any("hardware.spec" in c for c in _cycles())
        try:
            test_imports_flow_downhill()
        except AssertionError as exc:
            assert "hardware.spec (hardware) imports sim.engine.replica" in str(exc)
        else:
            raise AssertionError("an upward import went unnoticed")
    finally:
        GRAPH["hardware.spec"].discard("sim.engine.replica")
