"""Benchmarks, run on purpose (`make bench`), never as timed assertions in the test suite."""
