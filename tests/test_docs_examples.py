"""The docs cannot drift from the code: every runnable example runs, and every flag is in docs/cli.md.

A ```console block whose previous line is ``<!-- runnable -->`` (in README.md or docs/*.md) is run here:
each ``$ command`` line runs in bash, in a fresh folder holding a copy of docs/examples/ as ``examples/``,
with this checkout's ``loadgate`` first on PATH and ``$REPO`` naming the checkout; the commands of one
block share that folder, in order.
A command must exit 0, unless the next command is ``echo $?``, whose printed line is then the expected exit
code. Every other line under a command is an expected output line and must appear in the command's output,
in order; ``…`` in it matches any text (times, ports, paths), and a line that is only ``…`` stands for lines
left out. Machine-dependent figures belong in blocks that are not marked runnable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loadgate.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- runnable -->"
ELIDED = "…"
COMMAND_TIMEOUT_S = 120


@dataclass
class Command:
    line: int  # 1-based line of the ``$ `` line in its file
    text: str
    expected: list[str] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class Block:
    path: Path
    line: int
    commands: list[Command]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def runnable_blocks(path: Path) -> list[Block]:
    """The marked console blocks of one Markdown file; a marker not followed by a console block is an error."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        opening = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if opening != "```console":
            raise AssertionError(
                f"{path.relative_to(ROOT)}:{i + 1}: {MARKER} must be followed by a ```console block, found {opening!r}"
            )
        body, j = [], i + 2
        while j < len(lines) and lines[j].strip() != "```":
            body.append((j + 1, lines[j]))
            j += 1
        blocks.append(Block(path, i + 2, _commands(path, body)))
    return blocks


def _commands(path: Path, body: list[tuple[int, str]]) -> list[Command]:
    commands: list[Command] = []
    for number, line in body:
        if line.startswith("$ "):
            text = line[2:].strip()
            if text == "echo $?":
                if not commands:
                    raise AssertionError(f"{path.relative_to(ROOT)}:{number}: 'echo $?' with no command before it")
                commands[-1].exit_code = -1  # set by the line that follows
                continue
            commands.append(Command(number, text))
        elif commands and commands[-1].exit_code == -1:
            commands[-1].exit_code = int(line.strip())
        elif commands:
            commands[-1].expected.append(line.rstrip())
        elif line.strip():
            raise AssertionError(f"{path.relative_to(ROOT)}:{number}: output before the first '$ ' command")
    return commands


def _pattern(expected: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in expected.strip().split(ELIDED)) + "$")


def unmatched_lines(expected: list[str], output: str) -> list[str]:
    """The expected lines (in order, ``…`` a wildcard) that the output does not have."""
    actual = [line.rstrip() for line in output.splitlines()]
    at, missing = 0, []
    for want in expected:
        if not want.strip() or want.strip() == ELIDED:
            continue
        pattern = _pattern(want)
        for k in range(at, len(actual)):
            if pattern.match(actual[k].strip()):
                at = k + 1
                break
        else:
            missing.append(want)
    return missing


ALL_BLOCKS = [b for p in doc_files() for b in runnable_blocks(p)]


def test_the_docs_have_runnable_examples():
    files = {b.path.name for b in ALL_BLOCKS}
    assert "README.md" in files and "cli.md" in files, files


def test_expected_lines_are_matched_in_order():
    out = "alpha 1\nbeta port 4711\ngamma\n"
    assert unmatched_lines(["alpha 1", "beta port …", ELIDED], out) == []
    assert unmatched_lines(["gamma", "alpha 1"], out) == ["alpha 1"]
    assert unmatched_lines(["delta"], out) == ["delta"]


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_runnable_example(block: Block, tmp_path: Path):
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "LOADGATE_NOTIFY": "",
        "COLUMNS": "120",
        "REPO": str(ROOT),
    }
    env.pop("GITHUB_STEP_SUMMARY", None)
    for c in block.commands:
        done = subprocess.run(
            ["bash", "-c", c.text], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )
        output = done.stdout + done.stderr
        where = f"{block.path.relative_to(ROOT)}:{c.line}: $ {c.text}"
        assert done.returncode == c.exit_code, f"{where}: exit {done.returncode}, the docs say {c.exit_code}\n{output}"
        missing = unmatched_lines(c.expected, output)
        assert not missing, f"{where}: output lacks {missing!r} (in this order); it printed:\n{output}"


# --- every flag of every command is in docs/cli.md, in that command's section ------------------

HELP = ("-h", "--help")


def _commands_and_flags() -> dict[str, list[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    out = {"": sorted(o for a in parser._actions for o in a.option_strings if o not in HELP)}
    for name, p in sub.choices.items():
        out[name] = sorted(
            {o for a in p._actions for o in a.option_strings if o not in HELP}
            | {a.metavar or a.dest for a in p._actions if not a.option_strings}
        )
    return out


def cli_sections() -> dict[str, str]:
    """docs/cli.md's sections, keyed by command: '## loadgate run' -> 'run' ('## loadgate' -> '')."""
    sections: dict[str, str] = {}
    current = None
    for line in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^## `?loadgate(?: (\w+))?`?\s*$", line)
        if m:
            current = m.group(1) or ""
            sections[current] = ""
        elif line.startswith("## "):
            current = None
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def test_every_command_flag_is_in_docs_cli():
    sections = cli_sections()
    problems = []
    for command, flags in _commands_and_flags().items():
        name = f"loadgate {command}".strip()
        if command not in sections:
            problems.append(f"'{name}' has no section in docs/cli.md: add '## {name}' with its flags")
            continue
        for flag in flags:
            if not re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", sections[command]):
                problems.append(f"{flag} of '{name}' is not in docs/cli.md: describe it in the section '## {name}'")
    assert not problems, "\n".join(problems)


def test_docs_cli_names_no_command_that_does_not_exist():
    extra = set(cli_sections()) - set(_commands_and_flags())
    assert not extra, f"docs/cli.md has sections for commands loadgate does not have: {sorted(extra)}"


def test_the_readme_links_every_doc_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"](docs/{p.name}" not in readme]
    assert not unlinked, f"README.md does not link these pages: {unlinked}; add a [link](docs/NAME.md) to each"


def test_the_readme_stays_short():
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= 300, f"README.md has {lines} lines, more than 300: move the detail to a page in docs/"


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, flags=re.M)}


def test_relative_links_and_anchors_resolve():
    broken = []
    for page in [*doc_files(), ROOT / "CHANGELOG.md"]:
        for m in re.finditer(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text(encoding="utf-8")):
            target, anchor = m.group(1), m.group(2)
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (page.parent / target).resolve() if target else page
            where = f"{page.relative_to(ROOT)}: ({target}{'#' + anchor if anchor else ''})"
            if not path.exists():
                broken.append(f"{where}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{where}: no heading with that anchor in {path.name}")
    assert not broken, "\n".join(broken)
