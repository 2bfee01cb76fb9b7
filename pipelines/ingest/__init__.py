"""Ingest into the lake: chunked readers, row-level validation against the contract, quarantine
of rejected rows, and importers of transaction exports (order lines, CDNOW)."""
