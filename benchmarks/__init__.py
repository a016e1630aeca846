"""Benchmarks (`make bench`): AWS calls per operation, cold start, and the e2e run when present.

Nothing here asserts on timings: every section prints what it measured.
"""
