"""``loadgate init``: the files a repository needs to run the gate, locally and in CI.

The files are templates shipped in the package (``init_templates/``); only the bootstrap script is
filled in, with the version and the *spec* it installs loadgate from on a fresh runner — how this
loadgate was installed (PEP 610's ``direct_url.json``: a wheel's path, a VCS URL with its commit,
a project folder) or else its name and version on the package index.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from importlib import metadata, resources
from urllib.parse import unquote, urlparse

from loadgate._version import __version__
from loadgate.errors import ConfigError

SCRIPT = "scripts/performance-test.sh"
VALIDATE = "scripts/validate-requirements.sh"  # the pipeline's first step: loadgate trace
COMMON = (
    (SCRIPT, "performance-test.sh"),
    (VALIDATE, "validate-requirements.sh"),
    ("scenarios/example.py", "example.py.tmpl"),
    ("thresholds/REQ-PERF-001.yaml", "REQ-PERF-001.yaml"),
    ("reports/.gitignore", "reports.gitignore"),
)
CI_FILES = {
    "github": ((".github/workflows/performance-gate.yml", "github-workflow.yml"),),
    "gitlab": ((".gitlab-ci.yml", "gitlab-ci.yml"),),
    "jenkins": (("Jenkinsfile", "Jenkinsfile"),),
}
CI_CHOICES = (*CI_FILES, "all", "none")


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote (paths relative to ``directory``) and the spec the script installs from."""

    directory: str
    written: tuple[str, ...]
    spec: str
    spec_is_local: bool  # a path on this machine: a CI runner needs LOADGATE_SPEC


def installed_spec() -> str:
    """How to install this very loadgate elsewhere: a wheel path, a VCS URL, a folder, or loadgate==VERSION."""
    try:
        dist = metadata.distribution("loadgate")
        text = dist.read_text("direct_url.json")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return f"loadgate=={__version__}"
    if not text:
        return f"loadgate=={dist.version}"  # from an index: the same version from the same index
    info = json.loads(text)
    url = str(info.get("url", ""))
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        commit = vcs.get("commit_id")
        return f"{vcs.get('vcs', 'git')}+{url}" + (f"@{commit}" if commit else "")
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return url or f"loadgate=={dist.version}"


def is_local(spec: str) -> bool:
    """Whether a spec is a path on this machine (not reachable from another one)."""
    return spec.startswith(("/", "./", "../")) or spec.endswith(".whl") and "://" not in spec


def files_for(ci: str) -> tuple[tuple[str, str], ...]:
    """(destination, template) of every file ``init --ci CI`` writes."""
    if ci not in CI_CHOICES:
        raise ConfigError(f"--ci {ci}: unknown CI; expected one of {', '.join(CI_CHOICES)}")
    chosen = CI_FILES if ci == "all" else {} if ci == "none" else {ci: CI_FILES[ci]}
    return COMMON + tuple(f for files in chosen.values() for f in files)


def _template(name: str) -> str:
    return resources.files("loadgate.outputs").joinpath("init_templates", name).read_text(encoding="utf-8")


def _render(dest: str, template: str, spec: str) -> str:
    text = _template(template)
    if dest == SCRIPT:
        text = text.replace("@SPEC@", shlex.quote(spec)).replace("@VERSION@", __version__)
    return text


def init_repository(directory: str, ci: str = "github", *, force: bool = False, spec: str | None = None) -> InitResult:
    """Write the gate's files into ``directory``; never overwrite one unless ``force``.

    Raises ConfigError naming every file that exists already (and writes none), or an unknown ``ci``.
    """
    plan = files_for(ci)
    spec = spec or installed_spec()
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ConfigError(f"{directory}: not a folder; pass the repository's folder (default: .)")
    existing = [dest for dest, _ in plan if os.path.lexists(os.path.join(directory, dest))]
    if existing and not force:
        raise ConfigError(
            f"{directory}: {', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
            "nothing was written: move them aside, or pass --force to overwrite them"
        )
    texts = [(dest, _render(dest, template, spec)) for dest, template in plan]
    for dest, text in texts:
        path = os.path.join(directory, dest)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w" if force else "x", encoding="utf-8", newline="\n") as f:
            f.write(text)
        if dest in (SCRIPT, VALIDATE):
            os.chmod(path, os.stat(path).st_mode | 0o111)
    return InitResult(directory, tuple(dest for dest, _ in plan), spec, is_local(spec))
