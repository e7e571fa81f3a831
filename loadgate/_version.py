"""The package version, in a module of its own that imports nothing (pyproject.toml reads it)."""

__version__ = "0.1.0"
