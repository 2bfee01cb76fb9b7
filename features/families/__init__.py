"""Feature families: pure functions from lake tables and a cutoff to per-member columns (RFM,
behaviour, profile, lifecycle, segments, tags, BTYD outlook) and the population statistics some
of them are compared against."""
