"""Benchmark of `memberscore monitor` at 1M members."""
