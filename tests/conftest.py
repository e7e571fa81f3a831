"""Shared fixtures: run the real CLI in a child process, as a pipeline would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
E2E = ROOT / "tests" / "e2e"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [l for l in self.stderr.splitlines() if "error:" in l]


def run_cli(*args: str, cwd: Path | str = ROOT, timeout: float = 180, env: dict | None = None) -> Result:
    """``python -m loadgate ARGS`` in a child process; returns exit code and output."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    full_env.pop("GITHUB_STEP_SUMMARY", None)
    full_env.update(env or {})
    p = subprocess.run(
        [sys.executable, "-m", "loadgate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        stdin=subprocess.DEVNULL,
    )
    return Result(p.returncode, p.stdout, p.stderr)


def run_dir_of(out: Path) -> Path:
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 1, f"expected one run directory in {out}, found {dirs}"
    return dirs[0]


def load(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text())


@pytest.fixture
def e2e_run(tmp_path):
    """Run ``loadgate run`` on the test scenarios/thresholds into a fresh --out; returns (Result, run_dir)."""

    def go(*args: str):
        out = tmp_path / "reports"
        res = run_cli(
            "run",
            "--scenarios",
            str(E2E / "scenarios"),
            "--thresholds",
            str(E2E / "thresholds"),
            "--out",
            str(out),
            *args,
        )
        dirs = sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []
        return res, (dirs[-1] if dirs else None)

    return go
