"""MLflow models-from-code entry point of the uplift pyfunc: MLflow runs this file when it
logs or loads the model.

Never imported by project code. The wrapper rebuilds the model from its JSON state artifact,
so no pickled Python object is stored.
"""

from mlflow.models import set_model

from training.models.uplift_pyfunc import UpliftPyfunc

set_model(UpliftPyfunc())
