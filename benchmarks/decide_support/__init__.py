"""The parts of `benchmarks/decide.py`: the HTTP servers and the open-loop load generator."""
