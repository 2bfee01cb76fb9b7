"""Models on the scikit-learn estimator contract and their saved form: the LightGBM calibrated
classifier (`classifier`: churn, activation) and hurdle spend model (`spend`: clv) on shared
boosting helpers (`boosting`: hyperparameters, feature encoding, calibration hold-out), the
native model folder (`persistence`: save, load, new_model) and the MLflow pyfunc wrappers
(`pyfunc`, `uplift_pyfunc`). No I/O except the model folder and the pyfunc artifacts."""
