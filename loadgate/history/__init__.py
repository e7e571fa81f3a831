"""Runs over time: history.sqlite, the baseline of a run, and comparing two runs from their raw samples."""
