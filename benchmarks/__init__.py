"""Reproducible benchmarks of the project's models against published data and peer libraries."""
