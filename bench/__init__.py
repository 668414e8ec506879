"""Benchmarks run by hand against a migrated database; not part of the product."""
