"""The import rule and the size rule of `producer/`, checked by walking the source with `ast`.

* The partner side (`producer.ocpi`) and the sink side (`producer.kafka`) never import each other
  or the bridge (`producer.pull`); observability (`producer.observe`) imports neither the partner
  side nor the bridge; nothing imports the entry points (`cli`, `run`, `demo`) or the operator
  commands (`producer.commands`, which may import anything).
* Inside the partner side, each of the four rooms imports only the rooms before it: `protocol`
  (what OCPI says, all pure), `http` (talking to the partner), `paging` (one window's pages),
  `planning` (which windows, and whether each is complete); `pull_client` may use any.
* A module that calls itself pure imports no shell: only the standard library, value libraries
  (yarl, orjson, pydantic, numpy), `schemas` and other pure modules.
* There is no import cycle between modules.
* No module over 600 lines (past ~400 a review question), no function over 80.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "producer"

# Which packages a package must never import (prefix match on dotted names).
COMMANDS = "producer.commands"
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "producer.ocpi": ("producer.kafka", "producer.pull", "producer.cli", "producer.run", COMMANDS),
    "producer.kafka": (
        "producer.ocpi",
        "producer.pull",
        "producer.observe",
        "producer.cli",
        "producer.run",
        COMMANDS,
    ),
    "producer.observe": (
        "producer.ocpi",
        "producer.pull",
        "producer.cli",
        "producer.run",
        COMMANDS,
    ),
    "producer.pull": ("producer.cli", "producer.run", "producer.demo", COMMANDS),
    "producer.config": (
        "producer.pull",
        "producer.observe",
        "producer.cli",
        "producer.run",
        COMMANDS,
    ),
    "producer.errors": ("producer.",),
    # The partner side's rooms, each importing only the rooms below it.
    "producer.ocpi.protocol": (
        "producer.ocpi.http",
        "producer.ocpi.paging",
        "producer.ocpi.planning",
        "producer.ocpi.pull_client",
    ),
    "producer.ocpi.http": (
        "producer.ocpi.paging",
        "producer.ocpi.planning",
        "producer.ocpi.pull_client",
    ),
    "producer.ocpi.paging": ("producer.ocpi.planning", "producer.ocpi.pull_client"),
    "producer.ocpi.planning": ("producer.ocpi.pull_client",),
}
OCPI_ROOMS = ("protocol", "http", "paging", "planning")
# Every module of these packages is pure, present and future.
PURE_PACKAGES = ("producer.ocpi.protocol",)

PURE = {
    "producer.retry",
    "producer.errors",
    "producer.ocpi.http.clock",
    "producer.ocpi.paging.loops",
    "producer.ocpi.paging.pagination",
    "producer.ocpi.paging.reader",
    "producer.ocpi.http.redirects",
    "producer.ocpi.paging.repair",
    "producer.ocpi.http.retry",
    "producer.ocpi.planning.verdict",
    "producer.ocpi.paging.walk",
    "producer.ocpi.planning.windows",
    "producer.kafka.digests",
    "producer.kafka.durability",
    "producer.kafka.partitioning",
    "producer.kafka.records",
    "producer.kafka.units",
    "producer.observe.redaction",
    "producer.pull.held",
    "producer.pull.records",
    "producer.pull.verdict",
}
PURE_THIRD_PARTY = (
    "yarl",
    "orjson",
    "msgspec",
    "xxhash",
    "pydantic",
    "numpy",
    "schemas",
    "typing_extensions",
)

# Past ~400 lines a module asks whether it holds two ideas (a review question, not a reason to
# split); past this many the test asks it.
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def module_name(path: Path, root: Path) -> str:
    """`producer/ocpi/http/retry.py` → `producer.ocpi.http.retry` (packages by their `__init__`)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> Iterator[str]:
    """Every module `path` imports, at any depth of the file (function bodies included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from producer.pull import assembly` imports a module, not a name.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the `producer` modules it imports."""
    sources = {module_name(p, root): p for p in (root / PACKAGE).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        targets = {t for t in imports_of(path, name) if t in sources and t != name}
        graph[name] = targets
    return graph


def third_party_imports(root: Path, name: str) -> set[str]:
    """Top-level names of what a module imports from outside `producer`."""
    path = root / (name.replace(".", "/") + ".py")
    return {
        target.split(".")[0]
        for target in imports_of(path, name)
        if target and not target.startswith(PACKAGE)
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(root: Path) -> list[str]:
    """Every broken import rule in the tree at `root`."""
    graph = import_graph(root)
    problems: list[str] = []
    stdlib = set(__import__("sys").stdlib_module_names)
    for source, targets in sorted(graph.items()):
        for package, banned in FORBIDDEN.items():
            if source == package or source.startswith(package + "."):
                problems += [
                    f"{source} imports {t}"
                    for t in sorted(targets)
                    if any(t == b or t.startswith(b) for b in banned)
                ]
        if source in PURE or source.startswith(tuple(p + "." for p in PURE_PACKAGES)):
            problems += [
                f"pure {source} imports the shell {t}"
                for t in sorted(targets)
                if t not in PURE and not t.startswith(tuple(p + "." for p in PURE_PACKAGES))
            ]
            problems += [
                f"pure {source} imports {lib}"
                for lib in sorted(third_party_imports(root, source))
                if lib not in stdlib and lib not in PURE_THIRD_PARTY and lib != "__future__"
            ]
    problems += [f"import cycle: {' -> '.join(group)}" for group in cycles(graph)]
    return problems


def test_the_import_rules_hold() -> None:
    assert violations(ROOT) == []


def test_the_pure_list_names_real_modules() -> None:
    assert set(import_graph(ROOT)) >= PURE


def test_the_partner_side_is_four_rooms_each_saying_what_it_owns() -> None:
    """Every ocpi module lives in a room (only the public `PullClient` stands above them), and
    each room's docstring says what it owns and what it may import."""
    ocpi = ROOT / PACKAGE / "ocpi"
    above_the_rooms = {"__init__.py", "pull_client.py"}
    assert sorted(p.name for p in ocpi.glob("*.py") if p.name not in above_the_rooms) == []
    rooms = sorted(p.name for p in ocpi.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert rooms == sorted(OCPI_ROOMS)
    for room in OCPI_ROOMS:
        doc = ast.get_docstring(ast.parse((ocpi / room / "__init__.py").read_text("utf-8")))
        assert doc, room
        assert "may import" in doc.lower(), room


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        (
            "ocpi/protocol/links.py",
            "from producer.kafka.output import KafkaOutput",
            "imports producer.kafka",
        ),
        (
            "kafka/records.py",
            "import producer.ocpi.protocol.query",
            "imports producer.ocpi.protocol.query",
        ),
        (
            "ocpi/paging/pagination.py",
            "import aiohttp",
            "pure producer.ocpi.paging.pagination imports aiohttp",
        ),
        ("pull/verdict.py", "from producer.pull import window", "imports the shell"),
        ("ocpi/protocol/query.py", "from producer.ocpi.paging import pages", "import cycle"),
        (
            "ocpi/protocol/envelope.py",
            "from producer.ocpi.http import client",
            "producer.ocpi.protocol.envelope imports producer.ocpi.http.client",
        ),
        (
            "ocpi/http/transport.py",
            "from producer.ocpi.paging.walk import PageRequest",
            "producer.ocpi.http.transport imports producer.ocpi.paging.walk",
        ),
        (
            "ocpi/paging/pages.py",
            "from producer.ocpi.planning.windows import Window",
            "producer.ocpi.paging.pages imports producer.ocpi.planning.windows",
        ),
        (
            "ocpi/planning/listing.py",
            "from producer.ocpi.pull_client import PullClient",
            "producer.ocpi.planning.listing imports producer.ocpi.pull_client",
        ),
        (
            "ocpi/protocol/versions.py",
            "import aiohttp",
            "pure producer.ocpi.protocol.versions imports aiohttp",
        ),
    ],
)
def test_a_planted_forbidden_import_is_caught(
    tmp_path: Path, module: str, planted: str, expected: str
) -> None:
    shutil.copytree(ROOT / PACKAGE, tmp_path / PACKAGE)
    target = tmp_path / PACKAGE / module
    source = target.read_text(encoding="utf-8")
    head, _, rest = source.partition("from __future__ import annotations\n")
    target.write_text(f"{head}from __future__ import annotations\n{planted}\n{rest}", "utf-8")
    assert any(expected in problem for problem in violations(tmp_path))


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_modules_and_functions_stay_small() -> None:
    too_big: list[str] = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n")
        name = module_name(path, ROOT)
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{name}: {lines} lines")
        for function in functions(ast.parse(source)):
            length = (function.end_lineno or function.lineno) - function.lineno + 1
            if length > MAX_FUNCTION_LINES:
                too_big.append(f"{name}.{function.name}: {length} lines")
    assert too_big == []
