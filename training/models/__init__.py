"""Models on the scikit-learn estimator contract: LightGBM calibrated classifiers and the hurdle
spend model, their saved form, and the MLflow pyfunc wrappers."""
