"""Benchmarks of the engine: ingest efficiency, search, memory (`python -m tests.bench`)."""
