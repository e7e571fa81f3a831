"""``loadgate init`` and ``loadgate check --format github``: the files another repository gets, checked
against the CI systems' published schemas, and never written over a user's file."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
import yaml

from conftest import E2E, ROOT, run_cli
from loadgate.scenarios.check import Problem

SCEN = str(E2E / "scenarios")
ALL = [
    "scripts/performance-test.sh",
    "scripts/validate-requirements.sh",
    "scenarios/example.py",
    "thresholds/REQ-PERF-001.yaml",
    "reports/.gitignore",
    ".github/workflows/performance-gate.yml",
    ".gitlab-ci.yml",
    "Jenkinsfile",
]


@pytest.fixture
def repo(tmp_path):
    """An empty folder after ``loadgate init --ci all`` (spec given: no install is looked up)."""
    res = run_cli("init", str(tmp_path), "--ci", "all", "--spec", "loadgate==0.1.0")
    assert res.code == 0, res.stderr
    return tmp_path


def test_init_writes_every_file_and_the_script_is_executable(repo):
    for name in ALL:
        assert (repo / name).is_file(), name
    script = repo / "scripts/performance-test.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    assert (repo / "scripts/validate-requirements.sh").stat().st_mode & stat.S_IXUSR
    subprocess.run(["bash", "-n", str(repo / "scripts/validate-requirements.sh")], check=True)
    assert "\ndefault_spec=loadgate==0.1.0\n" in script.read_text()
    assert "@SPEC@" not in script.read_text() and "@VERSION@" not in script.read_text()
    subprocess.run(["bash", "-n", str(script)], check=True)
    thresholds = yaml.safe_load((repo / "thresholds/REQ-PERF-001.yaml").read_text())
    assert [(t["metric"], t["target"], t["alert"]) for t in thresholds["thresholds"]] == [
        ("p95", "<200ms", ">500ms"),
        ("error_rate", "<0.1%", ">1%"),
        ("throughput", ">1000/s", "<500/s"),
    ]
    # the example and the thresholds trace to each other
    res = run_cli("check", cwd=repo)
    assert res.code == 0, res.stdout + res.stderr
    assert "REQ-PERF-001: System must support 1000 concurrent users" in res.stdout


def test_init_ci_choice_writes_only_that_ci(tmp_path):
    res = run_cli("init", str(tmp_path), "--ci", "gitlab", "--spec", "loadgate")
    assert res.code == 0, res.stderr
    assert (tmp_path / ".gitlab-ci.yml").exists()
    assert not (tmp_path / "Jenkinsfile").exists() and not (tmp_path / ".github").exists()


def test_init_never_overwrites(repo):
    mine = repo / "thresholds/REQ-PERF-001.yaml"
    mine.write_text("requirement: REQ-PERF-001  # mine\n")
    (repo / "Jenkinsfile").unlink()
    res = run_cli("init", str(repo), "--ci", "all", "--spec", "loadgate")
    assert res.code == 2
    assert res.error_lines == [
        f"loadgate init: error: {repo}: scripts/performance-test.sh, scripts/validate-requirements.sh, scenarios/example.py, "
        "thresholds/REQ-PERF-001.yaml, reports/.gitignore, .github/workflows/performance-gate.yml, .gitlab-ci.yml "
        "already exist; nothing was written: move them aside, or pass --force to overwrite them"
    ]
    assert mine.read_text() == "requirement: REQ-PERF-001  # mine\n"
    assert not (repo / "Jenkinsfile").exists()  # nothing at all was written
    res = run_cli("init", str(repo), "--ci", "all", "--spec", "loadgate", "--force")
    assert res.code == 0, res.stderr
    assert "# mine" not in mine.read_text() and (repo / "Jenkinsfile").exists()


def test_init_names_a_single_existing_file(tmp_path):
    (tmp_path / "Jenkinsfile").write_text("pipeline {}\n")
    res = run_cli("init", str(tmp_path), "--ci", "jenkins", "--spec", "loadgate")
    assert res.error_lines == [
        f"loadgate init: error: {tmp_path}: Jenkinsfile already exists; nothing was written: "
        "move them aside, or pass --force to overwrite them"
    ]
    assert not (tmp_path / "scripts").exists()


def _validate(schema: str, path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "name, schema, breakage",
    [
        (".github/workflows/performance-gate.yml", "vendor.github-workflows", ("runs-on: ubuntu-latest", "runs-on: [")),
        (".github/workflows/performance-gate.yml", "vendor.github-workflows", ("    steps:", "    stepz:")),
        (".gitlab-ci.yml", "vendor.gitlab-ci", ("when: always", "when: sometimes")),
    ],
)
def test_ci_files_validate_against_the_published_schemas(repo, tmp_path, name, schema, breakage):
    res = _validate(schema, repo / name)
    assert res.returncode == 0, res.stdout + res.stderr
    # ... and the same check rejects the file once broken, so it can fail
    broken = tmp_path / ("broken-" + os.path.basename(name))
    text = (repo / name).read_text()
    assert breakage[0] in text
    broken.write_text(text.replace(breakage[0], breakage[1], 1))
    assert _validate(schema, broken).returncode != 0


def _script_options(repo, command: str = "run|check") -> set[str]:
    text = (repo / "scripts/performance-test.sh").read_text()
    return set(re.findall(rf"(?:{command}):(--[a-z-]+)", text))


def _validate_options(repo) -> set[str]:
    text = (repo / "scripts/validate-requirements.sh").read_text()
    return set(re.findall(r"(--[a-z-]+)=?\*?[|)]", text.split('case "$a" in', 1)[1].split("esac", 1)[0]))


def test_ci_files_validate_traceability_first_then_check_then_the_gate_and_keep_the_results(repo):
    accepted = _script_options(repo)
    assert {"--users", "--requirement", "--host", "--out", "--format"} <= accepted
    assert _validate_options(repo) == {"--help", "--since", "--format", "--allow", "--pattern", "--merges"}
    # every option the validate script passes on is one performance-test.sh takes for trace
    assert _validate_options(repo) - {"--help"} <= _script_options(repo, "trace")
    for name in (".github/workflows/performance-gate.yml", ".gitlab-ci.yml", "Jenkinsfile"):
        text = (repo / name).read_text()
        lines = text.splitlines()
        calls = [line for line in lines if "./scripts/performance-test.sh" in line]
        assert len(calls) == 2 and "performance-test.sh check" in calls[0], (name, calls)
        for call in calls:  # every flag a CI file passes is one the script accepts
            assert set(re.findall(r"(--[a-z-]+)=", call)) <= accepted, (name, call)
        validate = [i for i, line in enumerate(lines) if "./scripts/validate-requirements.sh" in line]
        assert len(validate) == 1 and validate[0] < lines.index(calls[0]), name  # the first step
        assert set(re.findall(r"(--[a-z-]+)=", lines[validate[0]])) <= _validate_options(repo)
        assert "LOADGATE_TRACE_SINCE" in text and "Validate Requirements Traceability" in text
    workflow = yaml.safe_load((repo / ".github/workflows/performance-gate.yml").read_text())
    steps = workflow["jobs"]["performance-gate"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0  # trace reads the whole history
    names = [s.get("name", s.get("uses")) for s in steps]
    assert (
        names.index("Validate Requirements Traceability")
        < names.index("Check thresholds and scenarios")
        < names.index("Performance test")
    )
    assert (
        steps[names.index("Validate Requirements Traceability")]["run"]
        == "./scripts/validate-requirements.sh --format=github"
    )
    assert "check --format=github" in steps[names.index("Check thresholds and scenarios")]["run"]
    after = steps[names.index("Performance test") + 1 :]
    assert all(s["if"] == "${{ !cancelled() }}" for s in after)  # results are kept when the gate fails
    assert any("junit.xml" in str(s.get("with")) for s in after)
    assert any("report.html" in str(s.get("with")) for s in after)
    gitlab = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())["performance-gate"]
    assert gitlab["variables"]["GIT_DEPTH"] == "0" and not gitlab["image"].endswith("-slim")  # git, whole history
    assert gitlab["artifacts"]["when"] == "always" and gitlab["artifacts"]["reports"]["junit"] == "reports/*/junit.xml"
    jenkins = (repo / "Jenkinsfile").read_text()
    assert (
        "junit testResults: 'reports/*/junit.xml'" in jenkins
        and "archiveArtifacts artifacts: 'reports/*/**'" in jenkins
    )


def _script(repo, *args, env=None):
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LOADGATE_SPEC")}
    full.update(env or {})
    return subprocess.run(
        [str(repo / "scripts/performance-test.sh"), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )


def test_script_refuses_unknown_options_and_a_missing_wheel_before_installing(repo):
    res = _script(repo, "--users=5", "--bogus=1")
    assert res.returncode == 2
    assert res.stderr.startswith("scripts/performance-test.sh: error: unknown option '--bogus=1'; expected --users=N")
    res = _script(repo, "--requirement=REQ-PERF-001", env={"LOADGATE_SPEC": "/nowhere/loadgate-0.1.0-py3-none-any.whl"})
    assert res.returncode == 2
    assert res.stderr == (
        "scripts/performance-test.sh: error: LOADGATE_SPEC '/nowhere/loadgate-0.1.0-py3-none-any.whl' "
        "does not exist on this machine; set LOADGATE_SPEC to a package name (loadgate==0.1.0), "
        "a VCS URL (git+https://…) or the path of a wheel\n"
    )
    assert not (repo / ".loadgate").exists()
    assert _script(repo, "--help").stdout.startswith("Performance gate:")


def _git(repo, *args: str, author: str = "Dev") -> str:
    pre = ["-c", f"user.name={author}", "-c", "user.email=dev@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", *pre, "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _installed_venv(tmp_path):
    """A .loadgate/venv the script takes as installed (its spec stamp matches): its python is this one, on
    this source tree, so the script's own install step is skipped and loadgate trace runs for real."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (venv / ".loadgate-spec").write_text("loadgate==0.1.0\n")
    return venv


def test_validate_requirements_script_runs_trace_on_the_repository(repo, tmp_path):
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "REQ-PERF-001: add the performance gate")
    base = _git(repo, "rev-parse", "HEAD")
    (repo / "notes.txt").write_text("x\n")
    _git(repo, "add", "notes.txt")
    _git(repo, "commit", "-q", "-m", "Notes")
    untraced = _git(repo, "rev-parse", "--short=7", "HEAD")
    (repo / "notes.txt").write_text("y\n")
    _git(repo, "commit", "-q", "-am", "Bump deps", author="renovate[bot]")
    env = {"LOADGATE_VENV": str(_installed_venv(tmp_path)), "LOADGATE_TRACE_SINCE": base}
    script = [str(repo / "scripts/validate-requirements.sh")]

    def run(*args, **more):
        full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LOADGATE_SPEC")}
        return subprocess.run(
            script + list(args), cwd=repo, capture_output=True, text=True, timeout=120, env={**full, **env, **more}
        )

    res = run()
    assert res.returncode == 1, res.stdout + res.stderr
    assert f'error: {untraced} "Notes" (Dev): references no requirement ID' in res.stdout
    assert "skipped (allowed)" in res.stdout  # the bot commit, by the default LOADGATE_TRACE_ALLOW
    assert res.stdout.splitlines()[-1] == "FAILED: 0 of 1 commit(s) traced; skipped 0 merge(s) and 1 allowed commit(s)"
    github = run("--format=github")
    assert github.returncode == 1 and github.stdout.count("::error ") == 1
    assert run(LOADGATE_TRACE_ALLOW="").stdout.splitlines()[-1].startswith("FAILED: 0 of 2 commit(s)")
    # a new branch's first push has no "before": the all-zero hash is no REF; trace takes its own default
    # (no passing run yet, the merge base with main: HEAD itself, nothing to trace)
    assert run(LOADGATE_TRACE_SINCE="0" * 40).returncode == 0
    assert run("--since=no-such-ref").returncode == 2
    bad = run("--bogus")
    assert bad.returncode == 2 and bad.stderr.startswith(
        "scripts/validate-requirements.sh: error: unknown option '--bogus'"
    )
    assert run("--help").stdout.startswith("Validate Requirements Traceability:")


def test_check_format_github_annotates_file_and_line(tmp_path):
    thr = tmp_path / "thr"
    thr.mkdir()
    (thr / "orphan.yaml").write_text(
        '# no tasks\nrequirement: REQ-T-ORPHAN\nthresholds:\n  - metric: p95\n    alert: ">1s"\n'
    )
    res = run_cli("check", "--scenarios", SCEN, "--thresholds", str(thr), "--format", "github")
    assert res.code == 2
    annotations = [line for line in res.stdout.splitlines() if line.startswith("::error")]
    assert annotations[0] == (
        f"::error file={thr}/orphan.yaml,line=2::requirement REQ-T-ORPHAN has thresholds but "
        f'no task in {SCEN} is tagged @tag("REQ-T-ORPHAN"); tag the tasks that provide its '
        "evidence"
    )
    assert any(
        re.match(rf"::error file={re.escape(SCEN)}/paths\.py,line=\d+::tag REQ-T-PASS has no threshold file", a)
        for a in annotations
    ), annotations
    assert all(not line.startswith("error:") for line in res.stdout.splitlines())
    # a YAML mistake: the file and line of the mistake, in the plain form too
    (thr / "orphan.yaml").write_text('requirement: REQ-T-ORPHAN\nthresholds:\n  - metric: p95\n    alert: ">1mss"\n')
    res = run_cli("check", "--scenarios", SCEN, "--thresholds", str(thr), "--format", "github")
    assert res.code == 2
    assert res.stdout.startswith(f"::error file={thr}/orphan.yaml,line=4::thresholds[0].alert: unknown unit")
    plain = run_cli("check", "--scenarios", SCEN, "--thresholds", str(thr))
    assert plain.stdout.startswith(f"error: {thr}/orphan.yaml:4: thresholds[0].alert: unknown unit")


def test_github_annotation_escaping():
    assert (
        Problem("50% of\nrequests", "a,b:c.yaml", 3).github()
        == "::error file=a%2Cb%3Ac.yaml,line=3::50%25 of%0Arequests"
    )
    assert Problem("no place").github() == "::error::no place"
    assert Problem("x", "t.yaml").plain() == "error: t.yaml: x"


def test_is_local_tells_paths_from_urls_and_names():
    from loadgate.outputs.scaffold import is_local

    assert is_local("/tmp/loadgate-0.1.0-py3-none-any.whl") and is_local("dist/loadgate-0.1.0-py3-none-any.whl")
    assert is_local("../loadgate")
    assert not is_local("https://example.invalid/loadgate-0.1.0-py3-none-any.whl")
    assert not is_local("git+https://example.invalid/loadgate.git@v0.1.0") and not is_local("loadgate==0.1.0")
