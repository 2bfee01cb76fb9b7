"""Training: labels, models, backtests and the MLflow registry.

Owns the pure core (`core/`: tasks, labels, datasets, rolling-origin backtests, metrics, reason
codes, figures, ground-truth comparison), the models (`models/`: LightGBM classifiers and spend
model, their saved form and MLflow pyfunc wrappers), MLflow I/O (`tracking`: one way to log,
register and promote) and the jobs (`jobs/`: train / backtest / promote, the BTYD outlook, the
uplift model).
"""
