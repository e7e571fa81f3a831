"""The scenario files as loadgate reads them: the catalogue of requirement-tagged tasks (from the probe's
JSON: the files are imported in a child process, :mod:`loadgate.plugin.probe`, never here), the traps
``loadgate check`` warns about, and ``check`` itself. Runs in the CLI process.
"""
