"""Helpers for tests and benchmarks: tiny but architecture-exact models of each supported family."""
