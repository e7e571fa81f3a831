"""Exact statistics over samples: windows, group codes, percentile selection, CIs, per-second series.

Pure numpy/pyarrow: nothing here imports Locust, the gate, the outputs or the history.
"""
