"""Labels, models (LightGBM and native BTYD baselines), backtests and the MLflow registry."""
