"""The house's rules, checked on the source (issue 14): layers depend downwards only, no
import cycles, the runtime never needs training code, tests never need bench/."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("faceid", "db", "training")
# what the persistence layer may use of faceid: the base modules, nothing that uses db
DB_MAY_USE = {"faceid.errors", "faceid.config", "faceid.atomic", "faceid.terminal",
              "faceid.files"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    found = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
             if "migrations" not in p.parts}
    found["cli"] = ROOT / "cli.py"
    return found


def imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules ``path`` imports (``from x import y`` counts as x, and as x.y when that is a
    module); with ``top_level_only``, only imports that run when the module is imported
    (not those inside functions, nor under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_db_uses_only_the_base_modules_of_faceid():
    for name, path in sources().items():
        if name.split(".")[0] != "db":
            continue
        used = {m for m in imports(path, top_level_only=False)
                if m.split(".")[0] == "faceid" and m in sources()}
        assert used <= DB_MAY_USE, (name, used - DB_MAY_USE)


def test_the_runtime_never_imports_training_code():
    for name, path in sources().items():
        if name.split(".")[0] in ("faceid", "db"):
            used = {m for m in imports(path, top_level_only=False) if m.startswith("training")}
            assert not used, (name, used)


def test_no_import_cycles():
    mods = sources()
    graph = {name: {m for m in imports(path, top_level_only=True) if m in mods and m != name}
             for name, path in mods.items()}
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError(" -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)


def test_tests_do_not_import_bench():
    for path in (ROOT / "tests").glob("*.py"):
        used = {m for m in imports(path, top_level_only=False) if m.split(".")[0] == "bench"}
        assert not used, (path.name, used)
