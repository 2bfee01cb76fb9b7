"""Monitoring of champions (pure, no I/O): population stability (PSI) and missing-rate drift
of features and scores against a reference distribution (`psi`, `drift`), the performance of
predictions whose horizon has matured (`performance`), and the findings past the thresholds
of `settings.monitor` with the retraining they call for (`verdict`)."""
