"""One exception tree; each error carries the exit code the CLI exits with.

    LoadgateError            (base, exit 2 unless a subclass says otherwise)
    ├── ConfigError          exit 2: bad flag, bad YAML, unknown requirement, scenario import error;
    │                        nothing was run
    └── RunError             exit 3: the run could not produce a trustworthy verdict
                             (crashed, interrupted, samples unreadable)

Library code raises these; only ``loadgate.cli`` prints them and exits. A failed threshold is a
result (a verdict), never an exception. Messages say what, where (file:line, key) and how to fix it.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_CONFIG = 2
EXIT_INCONCLUSIVE = 3


class LoadgateError(Exception):
    exit_code = EXIT_CONFIG


class ConfigError(LoadgateError):
    exit_code = EXIT_CONFIG


class RunError(LoadgateError):
    exit_code = EXIT_INCONCLUSIVE
