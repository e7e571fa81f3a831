"""The package layout keeps the pipeline's order: every import of every module (inside functions too),
read with ``ast``, goes down the stages, and no import circle exists.

    data < analysis < sources < gate < history < trace < outputs < notify < run < evaluate < cli    (errors, units: below all)

The issue's rules (analysis and data import nothing from run, gate, outputs, history or the CLI; gate
nothing from run, outputs or the CLI; outputs and history nothing from run or the CLI) follow from
that order, and so does "nothing imports cli" and "nothing below it imports evaluate".
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "loadgate"
BASE = {"loadgate", "loadgate.errors", "loadgate.units", "loadgate.__main__"}
STAGES = ["data", "analysis", "sources", "gate", "history", "trace", "outputs", "notify", "run", "evaluate", "cli"]
MAX_LINES = 400


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_of(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every loadgate module ``name`` imports, anywhere in the file (function-level imports included)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("loadgate")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("loadgate"):
                continue
            for alias in node.names:  # "from loadgate.data import rundir" imports the module loadgate.data.rundir
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return out - {name}


def _stage(module: str) -> int | None:
    """Rank of a module's stage; None for the base modules every stage may use."""
    if module in BASE:
        return None
    top = module.split(".")[1]
    return STAGES.index(top)


# ``loadgate/__init__.py`` is a base module (every stage imports ``__version__`` from it) and also the
# notebook facade: ``loadgate.open_run`` / ``open_history`` import their stage when called. Those lazy
# imports (inside functions, or for type checkers only) never run at import time, so they are no
# import circle and are left out of the graph; test_import_loadgate_loads_no_stage checks that they
# stay lazy, in a fresh interpreter.
FACADE = "loadgate"


def _eager_imports(path: Path, known: set[str]) -> set[str]:
    """The loadgate modules a file imports when it is imported: module level, outside ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(), str(path))
    body = [n for n in tree.body if not (isinstance(n, ast.If) and ast.unparse(n.test).endswith("TYPE_CHECKING"))]
    module = ast.Module(body=[n for n in body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                      ast.ClassDef))], type_ignores=[])
    out: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("loadgate")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loadgate") and not node.level:
            out |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                    for a in node.names}
    return out


GRAPH = {name: (_eager_imports(path, set(_modules())) if name == FACADE else _imports(name, path, set(_modules())))
         for name, path in _modules().items()}


def test_every_module_belongs_to_a_stage():
    for name in GRAPH:
        if name not in BASE:
            assert name.split(".")[1] in STAGES, f"{name}: put it in one of the stage folders {STAGES}"


def _violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import that reaches up a stage (or from a base module into a stage)."""
    out = []
    for name, targets in sorted(graph.items()):
        mine = _stage(name)
        for target in sorted(targets):
            theirs = _stage(target)
            if theirs is None:
                continue
            if mine is None and name != "loadgate.__main__":
                out.append(f"{name} is a base module but imports {target}")
            elif mine is not None and theirs > mine:
                out.append(f"{name} ({STAGES[mine]}) imports {target} ({STAGES[theirs]}): "
                           "a lower stage must not reach up; move the shared piece down")
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that comes back to its start, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_imports_go_down_the_stages():
    assert _violations(GRAPH) == []


def test_no_import_cycle():
    cycle = _cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_catch_a_reach_up_a_cycle_and_a_function_level_import(tmp_path):
    fake = {"loadgate.analysis.x": {"loadgate.gate.verdict"}, "loadgate.gate.verdict": {"loadgate.evaluate"},
            "loadgate.evaluate": {"loadgate.analysis.x"}}
    assert len(_violations(fake)) == 2  # analysis -> gate and gate -> evaluate reach up
    assert _cycle(fake) == ["loadgate.analysis.x", "loadgate.gate.verdict", "loadgate.evaluate", "loadgate.analysis.x"]
    module = tmp_path / "x.py"
    module.write_text("def f():\n    from loadgate.gate import verdict\n    import loadgate.cli\n")
    assert _imports("loadgate.analysis.x", module, set(GRAPH)) == {"loadgate.gate.verdict", "loadgate.cli"}


def test_locust_is_imported_in_run_only():
    for name, path in _modules().items():
        if name.startswith("loadgate.run"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for n in names:
                assert n.split(".")[0] not in ("locust", "gevent", "zmq", "greenlet"), f"{name} imports {n}"


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_module_passes_400_lines(name):
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines; split it where it has a seam"


def test_import_loadgate_loads_no_stage():
    """The facade's stage imports are lazy: ``import loadgate`` loads no stage, no pandas, no pyarrow."""
    import subprocess
    import sys

    code = ("import sys, loadgate; heavy = sorted(m for m in sys.modules if m.startswith('loadgate.') "
            "or m.split('.')[0] in ('pandas', 'pyarrow', 'numpy', 'locust')); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PKG.parent, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(__import__("loadgate").open_run) and callable(__import__("loadgate").open_history)


def test_the_facade_may_import_stages_only_lazily(tmp_path):
    facade = tmp_path / "__init__.py"
    facade.write_text("from typing import TYPE_CHECKING\nfrom loadgate.data import notebook\nif TYPE_CHECKING:\n"
                      "    from loadgate.history import frame\ndef open_history():\n    from loadgate.history import frame\n")
    eager = _eager_imports(facade, set(GRAPH))
    assert eager == {"loadgate.data.notebook"}
    assert _violations({FACADE: eager}) == ["loadgate is a base module but imports loadgate.data.notebook"]
