"""The requirement IDs a repository defines, and where: threshold files, scenario tags, and the
``requirement-id`` annotations of its Kubernetes manifests (``loadgate.io/requirements``, which
loadgate's own deployment manifests carry, counts the same).

Scenario tags come from the scenario probe, which imports Locust in a child process; this stage may not
run it, so the caller hands them in as :class:`Definition` objects (``loadgate.scenarios.scenario_ids``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml

from loadgate.gate.thresholds import load_thresholds
from loadgate.gate.yaml_lines import LineLoader, LineMap
from loadgate.trace import git

KINDS = ("thresholds", "scenario", "manifest")
ANNOTATIONS = ("requirement-id", "loadgate.io/requirements")
_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Definition:
    """Where one requirement ID is defined; ``file`` is relative to the repository's top when inside it."""

    id: str
    kind: str  # thresholds | scenario | manifest
    file: str
    line: int | None
    detail: str = ""  # the requirement's title, the task (Class.task), the manifest object (Kind/name)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "file": self.file, "line": self.line, "detail": self.detail}


@dataclass(frozen=True)
class Catalogue:
    """Every definition found, and notes on what could not be read (a folder missing, a manifest that does
    not parse) that the output shows without failing the trace."""

    definitions: tuple[Definition, ...]
    notes: tuple[str, ...] = ()

    def ids(self) -> set[str]:
        return {d.id for d in self.definitions}

    def owners(self) -> dict[str, set[str]]:
        """Requirement IDs per threshold or scenario file: a commit changing that file must name one of them."""
        out: dict[str, set[str]] = {}
        for d in self.definitions:
            if d.kind in ("thresholds", "scenario"):
                out.setdefault(d.file, set()).add(d.id)
        return out

    def by_id(self) -> dict[str, list[Definition]]:
        out: dict[str, list[Definition]] = {}
        for d in sorted(self.definitions, key=lambda d: (d.id, KINDS.index(d.kind), d.file, d.line or 0)):
            out.setdefault(d.id, []).append(d)
        return out


def relative(path: str, top: str) -> str:
    """``path`` from the repository's top (as git names files), or as given when it lies outside."""
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(top))
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def threshold_definitions(path: str, top: str) -> tuple[list[Definition], list[str]]:
    """One definition per threshold file under ``path``; a missing folder is a note, a bad file a ConfigError."""
    if not os.path.exists(path):
        return [], [f"{path}: no threshold files there; pass --thresholds PATH to count their requirements"]
    out = []
    for req, tf in load_thresholds(path).items():
        out.append(Definition(req, "thresholds", relative(tf.path, top), _requirement_line(tf.path), tf.title))
    return out, []


def _requirement_line(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8-sig") as f:
            for n, text in enumerate(f, 1):
                if text.startswith("requirement:"):
                    return n
    except OSError:
        pass
    return None


def manifest_definitions(top: str) -> tuple[list[Definition], list[str]]:
    """The ``requirement-id`` annotations of every tracked YAML file of the repository that is a Kubernetes
    object (``kind`` and ``metadata``), at any depth (a Deployment's pod template too)."""
    out: list[Definition] = []
    notes: list[str] = []
    for rel in git.tracked_files(top, "*.yaml", "*.yml"):
        try:
            with open(os.path.join(top, rel), encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        if not any(key in text for key in ANNOTATIONS):
            continue
        try:
            docs = list(yaml.load_all(text, Loader=LineLoader))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{rel}:{mark.line + 1}" if mark else rel
            notes.append(
                f"{where}: not plain YAML (a template?), so its requirement-id annotations are not "
                "counted; define those IDs in a threshold file or a scenario tag too"
            )
            continue
        for doc in docs:
            if isinstance(doc, Mapping) and "kind" in doc and isinstance(doc.get("metadata"), Mapping):
                name = f"{doc.get('kind')}/{doc['metadata'].get('name', '?')}"
                out += [Definition(i, "manifest", rel, line, name) for i, line in _annotated(doc)]
    return list(dict.fromkeys(out)), notes


def _annotated(node: object) -> Iterable[tuple[str, int | None]]:
    """(ID, line) of every requirement annotation under ``node``."""
    if isinstance(node, Mapping):
        annotations = node.get("annotations")
        if isinstance(annotations, Mapping):
            for key in ANNOTATIONS:
                if key in annotations and annotations[key] is not None:
                    line = annotations.key_lines.get(key) if isinstance(annotations, LineMap) else None
                    for value in _SPLIT.split(str(annotations[key]).strip()):
                        if value:
                            yield value, line
        for value in node.values():
            yield from _annotated(value)
    elif isinstance(node, list):
        for value in node:
            yield from _annotated(value)


def build(
    top: str, thresholds: str, scenario_definitions: Iterable[Definition] = (), scenario_notes: Iterable[str] = ()
) -> Catalogue:
    """The catalogue of a repository: its threshold files, the scenario tags given, its manifests."""
    found, notes = threshold_definitions(thresholds, top)
    manifests, manifest_notes = manifest_definitions(top)
    return Catalogue(
        tuple([*found, *scenario_definitions, *manifests]), tuple([*notes, *scenario_notes, *manifest_notes])
    )
