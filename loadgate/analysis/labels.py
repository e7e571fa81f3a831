"""Group labels: a string column's values as global integer codes, and requirement IDs of a label."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class Labels:
    """Global codes of one string column's values over all row groups; null is ""."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {"": 0}
        self.labels: list[str] = [""]

    def table(self, column: pa.DictionaryArray) -> np.ndarray:
        """Global code of each dictionary entry of a batch, then of null (at index len(dictionary))."""
        codes = []
        for value in column.dictionary.to_pylist():
            code = self.index.get(value or "")
            if code is None:
                code = self.index[value] = len(self.labels)
                self.labels.append(value)
            codes.append(code)
        return np.array(codes + [0], np.int32)


def split_ids(label: str | None) -> tuple[str, ...]:
    """Requirement IDs of a comma-joined label, each once."""
    return tuple(dict.fromkeys(p.strip() for p in (label or "").split(",") if p.strip()))
