"""An imported file read as blocks of whole lines, each with the number of its first line; ``.gz`` too.

A block is a few MB of the file cut after its last newline, so a reader parses it with Arrow's
multi-threaded readers and still knows which line of the file each row came from; what follows the
last newline of the file (a line cut short, or a last line without its newline) comes last, alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from loadgate.errors import ConfigError

BLOCK_BYTES = 16 << 20
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Block:
    data: bytes
    first_line: int  # 1-based line number of the block's first line
    last: bool  # no newline ends it: the file's end, after its last newline
    newlines: int = 0  # the newlines it holds


def is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_input(path: str) -> pa.NativeFile:
    """The file's bytes, decompressed when it is gzip (by its first bytes, whatever its name)."""
    try:
        return pa.input_stream(path, compression="gzip" if is_gzip(path) else None)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; give the results file") from None


def blocks(path: str, size: int = BLOCK_BYTES) -> Iterator[Block]:
    """The file as blocks of whole lines (the tail after the last newline, if any, as a ``last`` block)."""
    line, carry = 1, b""
    with open_input(path) as stream:
        while True:
            try:
                chunk = stream.read(size)
            except OSError as e:  # a gzip file cut short or damaged
                raise ConfigError(
                    f"{path}: cannot be read past line {line} ({e}); the file is damaged or cut "
                    "short: copy it again from where the tool wrote it"
                ) from None
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1 :]
            block = data[: cut + 1]
            newlines = block.count(b"\n")
            yield Block(block, line, False, newlines)
            line += newlines
    if carry:
        yield Block(carry, line, True, 0)


def head_line(path: str) -> tuple[int, bytes]:
    """The first non-empty line of the file and its number (0 and b"" for an empty file)."""
    with open_input(path) as stream:
        data = stream.read(1 << 20)
    for number, text in enumerate(data.split(b"\n"), start=1):
        if text.strip():
            return number, text
    return 0, b""


def first_bad_line(block: Block, bad: Callable[[bytes], str | None]) -> tuple[int, str]:
    """The number of the first line of ``block`` that ``bad`` finds a fault in, and the fault."""
    for offset, text in enumerate(block.data.split(b"\n")):
        if text.strip():
            fault = bad(text)
            if fault:
                return block.first_line + offset, fault
    return block.first_line, "a line Arrow could not read"


def json_fault(text: bytes) -> str | None:
    """Why a line is not one JSON object, or None."""
    try:
        value = json.loads(text)
    except ValueError as e:
        return f"not valid JSON ({e})"
    return None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"
