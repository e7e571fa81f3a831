"""The wheel, as another repository gets it: built with ``pip wheel``, every asset and template inside,
installed into a fresh virtual environment by the script ``loadgate init`` writes, then a real gate run
against the embedded target from that environment (not from this source tree).

The install takes ~45 s here (dependencies from the package index or pip's cache), once per session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

import loadgate

PKG = ROOT / "loadgate"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet", "-w", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (path,) = out.glob("loadgate-*.whl")
    return path


def _clean_env(**extra: str) -> dict:
    """This machine's environment without anything that would put the source tree on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LOADGATE_SPEC", "LOADGATE_VENV", "GITHUB_STEP_SUMMARY")
    }
    env.update(extra)
    return env


def test_wheel_holds_every_package_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        p.relative_to(ROOT).as_posix()
        for p in PKG.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".c")
    }
    assert wanted - names == set()
    assert {
        "loadgate/outputs/init_templates/performance-test.sh",
        "loadgate/outputs/templates/report.html.j2",
        "loadgate/outputs/assets/uPlot.iife.min.js",
    } <= names
    native = [n for n in names if n.startswith("loadgate/plugin/_rowpack.") and n.endswith((".so", ".pyd"))]
    if importlib.util.find_spec("loadgate.plugin._rowpack"):  # built here, so into the wheel: a platform wheel
        assert len(native) == 1, names
        assert wheel.name.startswith(f"loadgate-{loadgate.__version__}-cp3") and "none-any" not in wheel.name
    else:
        assert native == [] and wheel.name == f"loadgate-{loadgate.__version__}-py3-none-any.whl"


def test_init_then_the_generated_script_bootstraps_the_wheel_and_gates_a_real_run(wheel, tmp_path):
    repo = tmp_path / "service"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    res = run_cli("init", str(repo), "--ci", "all", "--spec", str(wheel))
    assert res.code == 0, res.stderr
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "add the performance gate"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    script = str(repo / "scripts" / "performance-test.sh")

    # 1. the traceability step: creates .loadgate/venv and installs the wheel (and its dependencies) there
    check = subprocess.run(
        [script, "check", "--format=github"], cwd=repo, capture_output=True, text=True, env=_clean_env(), timeout=600
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "creating" in check.stderr and ".loadgate/venv" in check.stderr
    assert "ok: 1 threshold file(s), 1 scenario file(s), 4 task(s), 0 problem(s)" in check.stdout
    venv = repo / ".loadgate" / "venv"
    assert subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout == ""

    # 2. a short real gate, from the installed wheel, against the embedded target on loopback
    run = subprocess.run(
        [script, "--users=5", "--spawn-rate=5", "--duration=3s", "--warmup=0s", "--requirement=REQ-PERF-001"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=300,
    )
    assert "creating" not in run.stderr  # installed once
    assert "started the embedded demo target at http://127.0.0.1:" in run.stderr
    (run_dir,) = [p for p in (repo / "reports").iterdir() if p.is_dir()]
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert run.returncode == verdict["exit_code"] == 1, run.stdout + run.stderr  # 5 users cannot make 500/s
    statuses = {t["metric"]: t["status"] for t in verdict["thresholds"]}
    assert statuses["throughput"] == "fail" and set(statuses) == {"p95", "error_rate", "throughput"}
    assert {"samples.parquet", "junit.xml", "summary.md", "report.html"} <= {p.name for p in run_dir.iterdir()}
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["git"]["commit"] == head and run_json["samples"] > 0
    assert run_json["versions"]["loadgate"] == loadgate.__version__
    assert subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout == ""

    # 3. that environment runs the wheel, not this source tree, and knows where it came from
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import loadgate; print(loadgate.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=True,
    ).stdout
    assert str(venv) in where and str(ROOT) not in where
    version = subprocess.run(
        [str(venv / "bin" / "loadgate"), "--version"], capture_output=True, text=True, env=_clean_env(), check=True
    ).stdout
    assert version.strip() == f"loadgate {loadgate.__version__}"
    other = tmp_path / "other"
    init = subprocess.run(
        [str(venv / "bin" / "loadgate"), "init", str(other), "--ci", "none"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=tmp_path,
    )
    assert init.returncode == 0, init.stderr
    assert f"installs loadgate from: {wheel} (LOADGATE_SPEC overrides it)" in init.stdout
    assert "is a path on this machine; on a CI runner set LOADGATE_SPEC" in init.stderr
