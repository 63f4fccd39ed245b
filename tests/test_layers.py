"""The house's rules, checked on the source: no import cycle, no import from a lower layer to a
higher one, no private name taken from (or used through) another module, and the sandbox never imports byoc."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lower number = lower layer. A module may import its own layer or lower ones, never higher.
LAYERS = {
    "byoc.errors": 0, "byoc.version": 0, "byoc.timespec": 0, "byoc.instances": 0, "byoc.data": 0, "byoc.redaction": 0,
    "byoc.aws": 1,
    "byoc.images": 2, "byoc.diagnosis": 2,
    "byoc.endpoint": 3, "byoc.container": 3,
    "byoc.iam": 4, "byoc.observe": 4,
    "byoc.deploy": 5,
    "byoc.api": 6, "byoc": 6,
    "byoc.demo": 7, "byoc.cli": 7, "byoc.__main__": 8,
}
EXEMPT = {"byoc.ops"}  # the deprecated alias module points at every new place on purpose


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list:
    """(module imported, names taken, plain) for every import in the file, lazy ones included;
    `plain` is True for `import a.b` (the module itself), False for `from a.b import x`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, [], True) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names], False))
    return found


def graph() -> dict:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for mod, names, plain in imports_of(path):
            if not mod.split(".")[0] == "byoc":
                continue
            if plain:  # `import byoc.x.y` loads byoc.x.y (and the packages above it)
                targets.add(max((m for m in modules if mod == m or mod.startswith(m + ".")), key=len))
                continue
            for n in names:  # `from byoc.endpoint import view` imports the module byoc.endpoint.view
                if f"{mod}.{n}" in modules:
                    targets.add(f"{mod}.{n}")
            if mod in modules and any(f"{mod}.{n}" not in modules for n in names):
                targets.add(mod)
        edges[name] = targets - {name}
    return edges


def layer(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[best]


def test_the_graph_is_read():
    edges = graph()
    assert "byoc.endpoint.view" in edges["byoc.deploy.plan"]
    assert "byoc.aws.client" in edges["byoc.api"]
    assert "byoc" not in edges["byoc.aws.client"]  # `from byoc import __version__` takes no module


def test_a_plain_import_is_an_edge(tmp_path, monkeypatch):
    pkg = tmp_path / "byoc"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("__version__ = '0'\n")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "mod.py").write_text("import byoc.high\nfrom byoc import __version__\n")
    (pkg / "high.py").write_text("def f():\n    import byoc.low.mod\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    edges = graph()
    # `from byoc import __version__` runs the package's __init__: an edge to it like any other
    assert edges["byoc.low.mod"] == {"byoc.high", "byoc"} and edges["byoc.high"] == {"byoc.low.mod"}


def test_no_import_cycle():
    edges = {m: t for m, t in graph().items() if m not in EXEMPT and not m.startswith("byoc.sandbox")}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if t in EXEMPT:
                continue
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert cycles == []


def test_no_import_reaches_up_a_layer():
    upward = [(m, t) for m, targets in graph().items() if m not in EXEMPT and not m.startswith("byoc.sandbox")
              for t in targets if t not in EXEMPT and not t.startswith("byoc.sandbox") and layer(t) > layer(m)]
    assert upward == []


def test_the_sandbox_never_imports_the_tool():
    leaks = [(m, t) for m, targets in graph().items() if m.startswith("byoc.sandbox")
             for t in targets if not t.startswith("byoc.sandbox")]
    assert leaks == []


@pytest.mark.parametrize("root", ["src", "tests", "bench"])
def test_no_private_name_is_imported_from_another_module(root):
    base = SRC.parent / root
    private = [(str(p.relative_to(base)), mod, n) for p in base.rglob("*.py") for mod, names, _ in imports_of(p)
               if mod.startswith("byoc") for n in names if n.startswith("_") and not n.startswith("__")]
    assert private == []


def private_attributes(path: Path) -> list:
    """`module._name` where `module` is a byoc module the file imported (`from byoc.x import mod`,
    `import byoc.x as mod`) or a byoc object the tests reach through (`aws._call`)."""
    tree = ast.parse(path.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("byoc"):
            modules.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("byoc"))
    return sorted(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name) and node.value.id in modules | {"aws", "clock"})


def test_a_private_attribute_is_caught(tmp_path):
    f = tmp_path / "t.py"
    f.write_text("from byoc.observe import logs\nimport byoc.iam.doctor as doctor\nlogs._groups()\ndoctor._x\n")
    assert private_attributes(f) == ["t.py:3 logs._groups", "t.py:4 doctor._x"]


@pytest.mark.parametrize("root", ["src", "tests", "bench"])
def test_no_private_name_of_another_module_is_used(root):
    base = SRC.parent / root
    used = [hit for p in base.rglob("*.py") for hit in private_attributes(p)]
    assert used == []
