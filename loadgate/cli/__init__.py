"""The ``loadgate`` command line: a thin layer that parses flags, calls the library, prints, exits.

Only this module turns a :class:`loadgate.errors.LoadgateError` into one line on stderr and its
exit code. Exit codes: 0 pass, 1 gate failed, 2 usage/configuration error, 3 inconclusive.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from loadgate.cli.parser import build_parser
from loadgate.errors import EXIT_INCONCLUSIVE, LoadgateError
from loadgate.notify.targets import redact_argv

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # for run.json and its audit log: --notify URLs are secrets, recorded as scheme://host/[redacted]
    args.command_line = ["loadgate", *redact_argv(sys.argv[1:] if argv is None else argv)]
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LoadgateError as e:
        print(f"loadgate {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the machine, not the user: a full disk, a folder that went away
        where = e.filename or "output"
        print(
            f"loadgate {args.command}: error: cannot write {where}: {e.strerror or e}; free some space or "
            "choose another --out; what was recorded so far is kept",
            file=sys.stderr,
        )
        return EXIT_INCONCLUSIVE
    except KeyboardInterrupt:
        print(f"loadgate {args.command}: interrupted", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
