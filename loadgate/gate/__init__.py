"""Threshold files, their conditions and units, and the verdict: thresholds x summary -> pass/warn/fail/inconclusive."""
