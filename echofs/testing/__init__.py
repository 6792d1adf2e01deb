"""Helpers for tests and benchmarks: nodes to run, stores to inspect and damage."""
