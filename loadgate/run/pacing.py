"""The pacing drop-ins' former home: :mod:`loadgate.pacing` is their place now. This alias stays so that
scenario files written as ``from loadgate.run.pacing import constant_throughput`` keep loading (in the
Locust process: nothing in :mod:`loadgate.run` imports it).
"""

from loadgate.pacing import constant_pacing, constant_throughput

__all__ = ["constant_pacing", "constant_throughput"]
