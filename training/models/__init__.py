"""Models on the scikit-learn estimator contract and their saved form: the LightGBM calibrated
classifier (`classifier`: churn, activation) and spend model (`spend`: clv), both starting
from the BTYD forecast (`prior`), on shared boosting helpers (`boosting`: hyperparameters,
feature encoding, calibration hold-out, early stopping), the native model folder
(`persistence`: save, load, new_model) and the MLflow pyfunc wrappers (`pyfunc`,
`uplift_pyfunc`). No I/O except the model folder and the pyfunc artifacts."""
