"""The package's rooms (DESIGN.md, "Layout"): each imports only rooms below it, counting imports made
inside functions; no two files import each other in a circle; no file grows past 400 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "agegender_tf"
# Lowest first. A module may import its own room and the rooms before it.
ROOMS = (
    ("agegender_tf", "agegender_tf.errors", "agegender_tf.paths", "agegender_tf.tasks", "agegender_tf.binning",
     "agegender_tf.imaging"),
    ("agegender_tf.data",),
    ("agegender_tf.pipelines",),
    ("agegender_tf.models",),
    ("agegender_tf.model_card",),
    ("agegender_tf.experiments",),
    ("agegender_tf.serving",),
    ("agegender_tf.bench",),
    ("agegender_tf.cli", "agegender_tf.__main__"),
)
TOP_LEVEL_LIMIT = 7


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.with_suffix("").relative_to(REPO).parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every kit module ``name`` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(name: str) -> int:
    best = None
    for level, members in enumerate(ROOMS):
        for member in members:
            if (name == member or name.startswith(member + ".")) and (best is None or len(member) > best[1]):
                best = (level, len(member))
    assert best is not None, f"{name} belongs to no room of DESIGN.md's layout"
    return best[0]


def test_each_room_imports_only_rooms_below_it():
    upward = sorted(f"{name} -> {target}" for name, targets in GRAPH.items() for target in targets
                    if _room(target) > _room(name))
    assert not upward, "imports from a room above:\n" + "\n".join(upward)


def test_no_two_modules_import_each_other_in_a_circle():
    # Tarjan's strongly connected components over the whole graph.
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
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
                circles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not circles, f"modules importing each other in a circle: {circles}"


def test_files_stay_short_and_the_top_level_small():
    long_files = {str(p.relative_to(REPO)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 400}
    assert not long_files, f"files over 400 lines: {long_files}"
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= TOP_LEVEL_LIMIT, f"{len(top)} top-level modules: {top}"


@pytest.mark.parametrize("folder", ["agegender_tf", "tests", "notebooks", "tools"])
def test_no_code_cites_a_tracker_number(folder):
    cited = [f"{path.relative_to(REPO)}:{number}" for path in sorted((REPO / folder).rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\b(issue|issues|session|stop) #?\d", line, re.IGNORECASE) and path.name != "test_layout.py"]
    assert not cited, f"lines citing a tracker number: {cited}"


def test_no_test_imports_another_test():
    offenders = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            if any(re.search(r"(^|\.)test_\w+$", n) for n in [module or "", *names]):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"tests importing other tests (shared helpers go in tests/fixtures.py): {offenders}"


def test_no_package_module_reads_the_checkout():
    readers = [str(p.relative_to(REPO)) for p in MODULES.values()
               if re.search(r"parents\[2\]\s*/\s*[\"']results", p.read_text())]
    assert not readers, f"package modules reading the checkout's results/: {readers}"
