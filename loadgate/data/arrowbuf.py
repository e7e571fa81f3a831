"""Arrow arrays to numpy and back through their buffers, without Python-object conversion.

Arrow's ``to_numpy``, ``fill_null`` with a Python value, ``pa.array`` of a list and any Python scalar
in a compute call go through its pandas layer, which imports pandas: a third of a second and ~30 MiB
that ``loadgate analyze`` has no other use for, and that the load generator (the recorder and its live
view) must not pay while users run.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

_NUMPY_TYPES = {
    pa.float64(): np.float64,
    pa.int64(): np.int64,
    pa.int32(): np.int32,
    pa.int16(): np.int16,
    pa.int8(): np.int8,
    pa.uint8(): np.uint8,
}


def numpy_of(column: pa.Array, fill: Any) -> np.ndarray:
    """A numpy array of a primitive Arrow array, nulls replaced by ``fill``: a view of its data buffer
    when there are no nulls and it is not boolean, a copy otherwise."""
    n, offset = len(column), column.offset
    dtype = _NUMPY_TYPES.get(column.type)
    if dtype is None and not pa.types.is_boolean(column.type):
        filled: np.ndarray = (column.fill_null(fill) if column.null_count else column).to_numpy(zero_copy_only=False)
        return filled
    validity, values = column.buffers()[:2]
    if dtype is None:
        out = _bits(values, offset, n)
    else:
        out = np.frombuffer(values, dtype, n, offset * np.dtype(dtype).itemsize) if n else np.empty(0, dtype)
    if column.null_count:
        out = np.where(_bits(validity, offset, n), out, fill).astype(out.dtype)
    return out


def _bits(buffer: pa.Buffer, offset: int, n: int) -> np.ndarray:
    """An Arrow bitmap (least significant bit first) as booleans."""
    if n == 0:
        return np.zeros(0, bool)
    skip, first = divmod(offset, 8)  # unpack only the bytes of this slice, not the whole parent buffer
    packed = np.frombuffer(buffer, np.uint8, (first + n + 7) // 8, skip)
    return np.unpackbits(packed, count=first + n, bitorder="little")[first:].view(np.bool_)


def int32_array(values: bytes | Iterable[int]) -> pa.Array:
    """An int32 array of ``values`` (a list of ints, or the bytes of an ``array('i')``)."""
    data = values if isinstance(values, bytes) else array("i", values).tobytes()
    return pa.Array.from_buffers(pa.int32(), len(data) // 4, [None, pa.py_buffer(data)])


def string_array(values: list[str | None]) -> pa.Array:
    """A string array of ``values`` (None: null)."""
    data = [v.encode("utf-8", "surrogatepass") if v is not None else b"" for v in values]
    offsets = array("i", [0])
    for d in data:
        offsets.append(offsets[-1] + len(d))
    valid = None
    if any(v is None for v in values):
        bits = bytearray((len(values) + 7) // 8)
        for i, v in enumerate(values):
            if v is not None:
                bits[i // 8] |= 1 << (i % 8)
        valid = pa.py_buffer(bytes(bits))
    return pa.Array.from_buffers(
        pa.string(), len(values), [valid, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data))]
    )
