"""Traceability from the commit: requirement IDs in git history, and the commits behind a regression."""
