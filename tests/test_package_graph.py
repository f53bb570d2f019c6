"""The package's import graph (issue 20): no module imports itself back through others, and
the packages stand in layers — each imports only those below it. Every import counts: at the
top of a module, inside a function (lazy), and for type checking only."""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "vadx"

#: vadx's packages and top-level modules, lowest first: each may import only those before it
LAYERS = [
    "_version", "errors", "limits", "progress", "settings", "catalogue", "files", "borrowed",
    "distributed", "render", "video", "models", "keras", "data", "explain", "detect",
    "normality", "train", "quality", "explanations", "batch", "watch", "console", "demo",
    "serve", "cli", "__main__",
]  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path) -> set[str]:
    """Every ``vadx…`` name ``path`` imports (``from vadx.a import b`` gives ``vadx.a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.startswith("vadx.")}


def module_graph() -> dict[str, set[str]]:
    known = modules()

    def owner(name: str) -> str:
        while name not in known:
            name = name.rsplit(".", 1)[0]
        return name

    graph = defaultdict(set)
    for name, path in known.items():
        for target in imports(path):
            found = owner(target)
            if found != name and not name.startswith(found + "."):  # not its own package
                graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

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
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(set(graph) | {t for ts in graph.values() for t in ts}):
        if node not in index:
            visit(node)
    return found


def top(name: str) -> str:
    return name.split(".")[1] if name.count(".") else "vadx"


def test_no_module_imports_itself_back():
    assert cycles(module_graph()) == []


def test_every_package_imports_only_the_layers_below_it():
    rank = {name: k for k, name in enumerate(LAYERS)}
    upward = sorted(
        f"{source} imports {target}"
        for source, targets in module_graph().items()
        for target in targets
        if top(source) != "vadx"  # vadx/__init__.py: the lazy public names, above everything
        and rank[top(target)] >= rank[top(source)]
        and top(target) != top(source)
    )
    assert upward == []


def test_the_layers_name_every_package():
    tops = {top(name) for name in modules()} - {"vadx"}
    assert tops == set(LAYERS)


def test_the_checks_find_a_circle_and_an_upward_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert imports(SOURCE / "detect" / "__init__.py") >= {"vadx.models.crnn.CRNN"}


def test_the_library_speaks_in_its_own_terms():
    """No command-line option in the text of a library module (docstrings aside): errors name
    the library's settings (``{step}``) and each edge words them — the CLI as ``--step``, the
    API as ``detect.step`` (:meth:`vadx.errors.VadxError.worded`)."""
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
    found = []
    for name, path in modules().items():
        if name.split(".")[1:2] == ["cli"]:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        found += [
            f"{name}:{node.lineno}: {match}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            if id(node) not in docstrings
            for match in flag.findall(node.value)
        ]
    assert not found, found


def test_the_architecture_page_lists_the_layers_in_their_order():
    page = (SOURCE.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = page.split("## Layers, lowest first")[1].split("## ")[0]
    listed = [
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`(\w+)`", row.split("|")[1])
    ]
    assert listed == [layer for layer in LAYERS if layer not in ("_version", "__main__")]


#: the only functions that may return a JSON-shaped mapping besides the records' serialisers
#: (``to_json``/``to_dict``): each builds a document as it is written or answered
JSON_DOCUMENTS = {
    "explain/result.py:manifest",  # manifest.json
    "models/checkpoint.py:_json_ready",  # a checkpoint's free-form metadata
    "explanations/report/page.py:player_payload",  # the JSON inside report.html
    "serve/schema.py:openapi",  # the OpenAPI document
}


def json_shaped_returns() -> list[str]:
    """``path:function`` of each function whose return annotation is a string-keyed mapping of
    anything (``dict``/``Mapping``/``MutableMapping`` of ``Any`` or ``object``)."""
    shape = re.compile(r"\b(dict|Dict|Mapping|MutableMapping)\[str, *(Any|object)\]")
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            returns = getattr(node, "returns", None)
            if returns is not None and shape.search(ast.unparse(returns)):
                found.append(f"{path.relative_to(SOURCE).as_posix()}:{node.name}")
    return found


def test_results_are_typed_and_serialised_at_the_edge():
    loose = [
        name
        for name in json_shaped_returns()
        if name.rsplit(":", 1)[1] not in ("to_json", "to_dict") and name not in JSON_DOCUMENTS
    ]
    assert loose == [], "return a record (a dataclass or model) and serialise it where written"
    assert len(json_shaped_returns()) <= 21  # 85 before issue 28


def test_the_typed_results_check_finds_a_loose_dict(tmp_path, monkeypatch):
    (tmp_path / "loose.py").write_text("def summary() -> dict[str, Any]:\n    return {}\n")
    monkeypatch.setattr(sys.modules[__name__], "SOURCE", tmp_path)
    assert json_shaped_returns() == ["loose.py:summary"]
