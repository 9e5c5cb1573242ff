"""Vector stores: the embedded Qdrant Edge shard (default). No Qt."""
