"""Another load tool's results as loadgate samples: k6's JSON output, JMeter's JTL (CSV or XML).

Each reader yields Arrow record batches of :data:`loadgate.data.imports.columns.IMPORT_SCHEMA` (the
samples schema plus the tool's ``group`` and ``scenario``) a block of the file at a time, so memory
grows with a block, never with the file; :mod:`loadgate.data.imports.writer` streams them into a run
directory's ``samples.parquet`` and writes its ``run.json``. The run directory is then gated like any
other (``loadgate.evaluate.gate_run``).
"""
