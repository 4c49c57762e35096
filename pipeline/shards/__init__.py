"""Shard rows, the Arrow schema from `schemas/`, Parquet writing and the version manifest."""
