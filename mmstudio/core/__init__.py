"""The headless engine: library, catalog, media decoding, ingest, search. No Qt."""
