"""The one thing pyproject.toml cannot say: the optional C request listener (loadgate/plugin/_rowpack.c).

``optional=True``: where it cannot be compiled (no C compiler or Python headers) the install goes on
without it, and the recorder uses its Python listener, which writes the same rows.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("loadgate.plugin._rowpack", ["loadgate/plugin/_rowpack.c"], optional=True,
                             extra_compile_args=["-O2"])])
