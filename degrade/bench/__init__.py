"""Benchmarking: frozen suites of degraded photos, restoration methods behind one interface, metrics and reports.

Suites are data (TOML definitions rendered by the engine, checksummed), so any method scored on a suite by name and
checksum saw exactly the same inputs.
"""
