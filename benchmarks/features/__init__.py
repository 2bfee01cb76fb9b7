"""Feature store benchmark (issue 3): feature build, materialize and historical retrieval at 1M."""
