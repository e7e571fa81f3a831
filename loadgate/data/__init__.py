"""The files of a run directory and how they are read and written: samples schema, Arrow/Parquet, run.json."""
