"""The longest functions and methods of the loadgate package, by lines (end_lineno - lineno + 1, from ast).

    python bench/longest_functions.py [--top 10] [PATH] [--ref REV]

PATH is a package folder (default: this checkout's loadgate/). Each row: length, qualified name (a method
as Class.method, a nested function as outer.inner), file:line. With --ref REV, the same list for that
revision (files read with ``git show REV:path``, nothing checked out) is printed beside it: this checkout
on the left, REV on the right. Decorators are not counted; a docstring is.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent

Row = tuple[int, str, str]  # (lines, qualified name, file:line)


def functions(source: str, filename: str) -> Iterator[Row]:
    """Every function and method of one module's source."""

    def walk(node: ast.AST, prefix: str) -> Iterator[Row]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                yield child.end_lineno - child.lineno + 1, name, f"{filename}:{child.lineno}"
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(ast.parse(source, filename), "")


def longest(sources: dict[str, str], top: int) -> list[Row]:
    """The ``top`` longest over ``{filename: source}``, longest first (ties by name)."""
    rows = [row for name, text in sources.items() for row in functions(text, name)]
    return sorted(rows, key=lambda r: (-r[0], r[1]))[:top]


def sources_here(package: Path) -> dict[str, str]:
    base = package.parent
    return {str(p.relative_to(base)): p.read_text() for p in sorted(package.rglob("*.py"))}


def sources_at(rev: str, package: Path) -> dict[str, str]:
    """The package's .py files at ``rev`` (the same folder, relative to the top of its repository)."""
    top = Path(git(package, "rev-parse", "--show-toplevel").strip()).resolve()
    rel = package.resolve().relative_to(top).as_posix()
    listed = git(top, "ls-tree", "-r", "--name-only", rev, "--", rel).splitlines()
    base = os.path.dirname(rel)
    return {
        os.path.relpath(n, base) if base else n: git(top, "show", f"{rev}:{n}") for n in listed if n.endswith(".py")
    }


def git(where: Path, *args: str) -> str:
    p = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"longest_functions: error: git {' '.join(args)}: {p.stderr.strip()}", file=sys.stderr)
        raise SystemExit(2)
    return p.stdout


def cells(row: Row | None) -> list[str]:
    return ["", "", ""] if row is None else [str(row[0]), row[1], row[2]]


def print_table(columns: list[tuple[str, list[Row]]]) -> None:
    """One block of (lines, function, where) per column, side by side."""
    heads = [["lines", f"function ({title})", "where"] for title, _ in columns]
    depth = max(len(rows) for _, rows in columns)
    table = [sum(heads, [])] + [
        sum((cells(rows[i] if i < len(rows) else None) for _, rows in columns), []) for i in range(depth)
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        parts = [(c.rjust(w) if i % 3 == 0 else c.ljust(w)) for i, (c, w) in enumerate(zip(r, widths))]
        blocks = ["  ".join(parts[k : k + 3]) for k in range(0, len(parts), 3)]
        print("   |   ".join(blocks).rstrip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "path",
        nargs="?",
        default=str(ROOT / "loadgate"),
        metavar="PATH",
        help="package folder (default: this checkout's loadgate/)",
    )
    ap.add_argument("--top", type=int, default=10, metavar="N", help="how many (default: 10)")
    ap.add_argument("--ref", metavar="REV", help="also list them at this revision, side by side")
    args = ap.parse_args(argv)
    package = Path(args.path).resolve()
    if not package.is_dir():
        print(f"longest_functions: error: {args.path}: not a folder", file=sys.stderr)
        return 2
    columns = [("this checkout", longest(sources_here(package), args.top))]
    if args.ref:
        columns.append((args.ref, longest(sources_at(args.ref, package), args.top)))
    print_table(columns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
