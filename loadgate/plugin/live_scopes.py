"""The live view's rules grouped by scope, and matched once per distinct request, not per rule and batch.

A rule's scope is its requirement and, if it names one, its request (``TYPE NAME`` or ``NAME``). Rules of
one scope share their rows. A sample's scopes depend only on its (requirement label, request type, name):
each distinct triple seen gets a small integer *key* the first time it appears, with the scopes it belongs
to found by dictionary look-ups (never by scanning the rules). A batch is reduced to one key per row, and
an evaluation groups the window's rows by key once: its cost follows the requests seen in the window, not
the number of rules times the requests.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loadgate.data.arrowbuf import numpy_of


class Scopes:
    """Rules (in their order) grouped by scope, and the scopes of each key seen."""

    def __init__(self, rules) -> None:
        index: dict[tuple, int] = {}
        self.rules: list[list[int]] = []  # per scope: its rules' indices, ascending
        self.of_rule: list[int] = []  # per rule: its scope
        for i, rule in enumerate(rules):
            scope = index.setdefault((rule.requirement, rule.request), len(self.rules))
            if scope == len(self.rules):
                self.rules.append([])
            self.rules[scope].append(i)
            self.of_rule.append(scope)
        self._index = index
        self.aborting = frozenset(
            s for s, members in enumerate(self.rules) if any(rules[i].abort_on_fail for i in members)
        )
        self._keys: dict[tuple, int] = {}
        self.key_scopes: list[tuple[int, ...]] = []  # per key: the scopes its rows are in

    def key(self, label: str | None, kind: str | None, name: str | None) -> int:
        """The key of (requirement label, request type, name); new ones are matched to their scopes."""
        triple = (label, kind, name)
        found = self._keys.get(triple)
        if found is None:
            found = self._keys[triple] = len(self.key_scopes)
            self.key_scopes.append(self._match(label, kind, name))
        return found

    def _match(self, label: str | None, kind: str | None, name: str | None) -> tuple[int, ...]:
        if label is None:
            return ()
        hits = []
        for requirement in label.split(","):
            requests = [None]  # the requirement-wide scope
            if name is not None:
                requests += [name] if kind is None else [name, f"{kind} {name}"]
            for request in requests:
                scope = self._index.get((requirement, request))
                if scope is not None and scope not in hits:
                    hits.append(scope)
        return tuple(sorted(hits))

    def row_keys(self, batch: pa.RecordBatch) -> np.ndarray:
        """Each row's key (int32). The distinct (label, type, name) codes of a batch are found with one
        ``np.unique``; only those go through :meth:`key`."""
        labels, lc = coded(batch.column("requirement"))
        names, nc = coded(batch.column("name"))
        kinds, kc = coded(batch.column("request_type"))
        nn, nk = len(names) + 1, len(kinds) + 1
        combined = (lc.astype(np.int64) + 1) * (nn * nk) + (nc.astype(np.int64) + 1) * nk + (kc.astype(np.int64) + 1)
        distinct, inverse = np.unique(combined, return_inverse=True)
        ids = np.empty(distinct.size, np.int32)
        for j, c in enumerate(distinct.tolist()):
            label, rest = divmod(c, nn * nk)
            name, kind = divmod(rest, nk)
            ids[j] = self.key(
                labels[label - 1] if label else None,
                kinds[kind - 1] if kind else None,
                names[name - 1] if name else None,
            )
        return ids[inverse.reshape(-1)]


class Grouped:
    """A window's rows grouped by key: the rows of a scope without a pass over every row per rule."""

    def __init__(self, keys: np.ndarray, scopes: Scopes) -> None:
        self.size = keys.size
        self.order = np.argsort(keys, kind="stable")  # within a key, rows stay in their order
        ordered = keys[self.order]
        starts = np.flatnonzero(np.diff(ordered)) + 1
        bounds = np.concatenate(([0], starts, [ordered.size])) if ordered.size else np.zeros(1, np.int64)
        self.segments = {int(ordered[a]): (int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])}
        members: dict[int, list[int]] = {}
        for k in self.segments:
            for s in scopes.key_scopes[k]:
                members.setdefault(s, []).append(k)
        self.members = members  # scope -> its keys present in the window

    def rows(self, scope: int) -> np.ndarray | None:
        """Indices of the scope's rows in the window, in their order; None: every row."""
        keys = self.members.get(scope)
        if not keys:
            return np.empty(0, np.int64)
        if len(keys) == 1:
            a, b = self.segments[keys[0]]
            return None if b - a == self.size else self.order[a:b]
        picked = np.concatenate([self.order[slice(*self.segments[k])] for k in keys])
        return None if picked.size == self.size else np.sort(picked)


def coded(column: pa.Array) -> tuple[list, np.ndarray]:
    """A string column as (its distinct values, each row's index among them; -1 for a null row). The
    recorder's batches are dictionary-encoded already; a plain string column is encoded here (comparing
    it with a Python string would import pandas into the load generator)."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    return column.dictionary.to_pylist(), numpy_of(column.indices, -1)
