"""Training jobs: thin orchestration that reads snapshots, calls the core and the models, and
logs and registers in MLflow (train, backtest, promote; BTYD outlook; uplift)."""
