"""Feature logic and the Feast repo: per-member snapshots as of a cutoff (RFM, behaviour, profile,
lifecycle), computed from the lake with pure functions, declared to Feast in `feature_repo/`."""
