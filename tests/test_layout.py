"""The package layout keeps the pipeline's order: every import of every module (inside functions too),
read with ``ast``, goes down the stages, and no import circle exists.

    data < analysis < sources < gate < history < trace < outputs < notify < shared < scenarios
         < plugin | run < evaluate < cli < loadgate (the package root)        (errors, units, _version: below all)

``plugin`` (what runs inside the Locust process) and ``run`` (the CLI side that starts and drives it)
are peers: neither imports the other, and nothing outside ``plugin`` imports it, so the CLI process never
loads Locust. What both sides need sits below them, in ``shared``. Locust, gevent and zmq are imported in
``plugin`` only (the public :mod:`loadgate.pacing` belongs to it), and gevent by the demo target, which
serves from a child process of its own.

The package root is a module like any other: it may import the stages (lazily: ``import loadgate`` stays
light), so no stage may import it; the version lives in the leaf ``loadgate._version``.
"""

from __future__ import annotations

import ast
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib  # type: ignore[no-redef]


PKG = Path(__file__).resolve().parent.parent / "loadgate"
BASE = {"loadgate.errors", "loadgate.units", "loadgate._version"}
STAGES = [
    "data",
    "analysis",
    "sources",
    "gate",
    "history",
    "trace",
    "outputs",
    "notify",
    "shared",
    "scenarios",
    "plugin",
    "run",
    "evaluate",
    "cli",
    "root",
]
PEERS = {"plugin": "run", "run": "plugin"}  # the same rank, and never importing each other
# Modules outside their stage's folder: the root facade and ``python -m loadgate``; the public pacing
# module (the Locust process's) and its former path, an alias kept for scenario files.
PLACED = {"loadgate": "root", "loadgate.__main__": "root", "loadgate.pacing": "plugin", "loadgate.run.pacing": "plugin"}
LOCUST_LIBS = ("locust", "gevent", "zmq", "greenlet")
GEVENT_SERVERS = {"loadgate.run.demo_target"}  # may import gevent (not Locust): a child process of its own


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
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if not base.startswith("loadgate"):
                continue
            for alias in node.names:  # "from loadgate.data import rundir" imports the module loadgate.data.rundir
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return out - {name}


def _stage_name(module: str) -> str | None:
    """A module's stage; None for the base modules every stage may use."""
    if module in BASE:
        return None
    return PLACED.get(module) or module.split(".")[1]


def _rank(stage: str) -> int:
    return STAGES.index("plugin") if stage == "run" else STAGES.index(stage)


def _stage(module: str) -> int | None:
    """Rank of a module's stage; None for the base modules every stage may use."""
    stage = _stage_name(module)
    return None if stage is None else _rank(stage)


# ``loadgate/__init__.py`` is the notebook facade: ``loadgate.open_run`` / ``open_history`` import their stage
# when called. In the graph it is a module at the top (its function-level imports count, as everywhere);
# test_import_loadgate_loads_no_stage checks that those imports stay lazy, in a fresh interpreter.
FACADE = "loadgate"


def _eager_imports(path: Path, known: set[str]) -> set[str]:
    """The loadgate modules a file imports when it is imported: module level, outside ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(), str(path))
    body = [n for n in tree.body if not (isinstance(n, ast.If) and ast.unparse(n.test).endswith("TYPE_CHECKING"))]
    module = ast.Module(
        body=[n for n in body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))],
        type_ignores=[],
    )
    out: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("loadgate")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loadgate") and not node.level:
            out |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            }
    return out


GRAPH = {name: _imports(name, path, set(_modules())) for name, path in _modules().items()}


def test_every_module_belongs_to_a_stage():
    for name in GRAPH:
        if name not in BASE:
            assert _stage_name(name) in STAGES, f"{name}: put it in one of the stage folders {STAGES}"


def _violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import that reaches up a stage (or from a base module into a stage)."""
    out = []
    for name, targets in sorted(graph.items()):
        mine = _stage_name(name)
        for target in sorted(targets):
            theirs = _stage_name(target)
            if theirs is None:
                continue
            if mine is None:
                out.append(f"{name} is a base module but imports {target}")
            elif _rank(theirs) > _rank(mine):
                out.append(
                    f"{name} ({mine}) imports {target} ({theirs}): "
                    "a lower stage must not reach up; move the shared piece down"
                )
            elif PEERS.get(mine) == theirs:
                out.append(
                    f"{name} ({mine}) imports {target} ({theirs}): plugin and run are peers in two "
                    "processes; move what both need to loadgate.shared"
                )
            elif theirs == "plugin" and mine != "plugin":
                out.append(f"{name} ({mine}) imports {target} (plugin): only the Locust process loads the plugin")
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
                return stack[stack.index(nxt) :] + [nxt]
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


def test_the_checks_catch_the_rooms_crossed_and_a_cycle_through_the_package_root():
    crossed = {
        "loadgate.run.runner": {"loadgate.plugin.live"},
        "loadgate.plugin.hooks": {"loadgate.run.processes"},
        "loadgate.cli.commands": {"loadgate.pacing"},
        "loadgate.shared.child": {"loadgate.run.options"},
    }
    assert [v.split(" imports ")[0] for v in _violations(crossed)] == [
        "loadgate.cli.commands (cli)",
        "loadgate.plugin.hooks (plugin)",
        "loadgate.run.runner (run)",
        "loadgate.shared.child (shared)",
    ]
    rooted = {
        "loadgate": {"loadgate.data.notebook"},
        "loadgate.data.notebook": {"loadgate.data.rundir"},
        "loadgate.data.rundir": {"loadgate"},
    }
    assert _cycle(rooted) == ["loadgate", "loadgate.data.notebook", "loadgate.data.rundir", "loadgate"]
    assert _violations(rooted) == [
        "loadgate.data.rundir (data) imports loadgate (root): "
        "a lower stage must not reach up; move the shared piece down"
    ]


def test_the_checks_catch_a_reach_up_a_cycle_and_a_function_level_import(tmp_path):
    fake = {
        "loadgate.analysis.x": {"loadgate.gate.verdict"},
        "loadgate.gate.verdict": {"loadgate.evaluate"},
        "loadgate.evaluate": {"loadgate.analysis.x"},
    }
    assert len(_violations(fake)) == 2  # analysis -> gate and gate -> evaluate reach up
    assert _cycle(fake) == ["loadgate.analysis.x", "loadgate.gate.verdict", "loadgate.evaluate", "loadgate.analysis.x"]
    module = tmp_path / "x.py"
    module.write_text("def f():\n    from loadgate.gate import verdict\n    import loadgate.cli\n")
    assert _imports("loadgate.analysis.x", module, set(GRAPH)) == {"loadgate.gate.verdict", "loadgate.cli"}


def _libraries(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
        out |= {n.split(".")[0] for n in names}
    return out


def test_locust_gevent_and_zmq_are_imported_in_the_plugin_only():
    for name, path in _modules().items():
        if _stage_name(name) == "plugin":
            continue
        allowed = {"gevent"} if name in GEVENT_SERVERS else set()
        found = (_libraries(path) & set(LOCUST_LIBS)) - allowed
        assert not found, f"{name} imports {sorted(found)}: only loadgate.plugin runs in the Locust process"


def test_function_size_is_ruffs_to_check():
    """Size is ruff's complexity rules (run before the tests), not a line count per module: a cap on lines made
    code squeeze to fit. Their settings are stated in pyproject.toml and docs/code-layout.md."""
    ruff = tomllib.loads((PKG.parent / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert {"C901", "PLR0912", "PLR0915"} <= set(ruff["select"])
    assert (ruff["mccabe"]["max-complexity"], ruff["pylint"]["max-branches"], ruff["pylint"]["max-statements"]) == (
        12,
        14,
        60,
    )


def test_import_loadgate_loads_no_stage():
    """The facade's stage imports are lazy: ``import loadgate`` loads no stage, no pandas, no pyarrow."""
    import subprocess
    import sys

    code = (
        "import sys, loadgate; heavy = sorted(m for m in sys.modules if m.startswith('loadgate.') "
        f"and m not in {sorted(BASE)!r} or m.split('.')[0] in ('pandas', 'pyarrow', 'numpy', 'locust')); "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PKG.parent, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(__import__("loadgate").open_run) and callable(__import__("loadgate").open_history)


def test_the_facade_may_import_stages_only_lazily(tmp_path):
    facade = tmp_path / "__init__.py"
    facade.write_text(
        "from typing import TYPE_CHECKING\nfrom loadgate.data import notebook\nif TYPE_CHECKING:\n"
        "    from loadgate.history import frame\ndef open_history():\n    from loadgate.history import frame\n"
    )
    assert _eager_imports(facade, set(GRAPH)) == {"loadgate.data.notebook"}
    assert _eager_imports(PKG / "__init__.py", set(GRAPH)) == {"loadgate._version"}  # the stages: lazily only
