"""MLflow models-from-code entry point: MLflow runs this file when it logs or loads the model.

Never imported by project code. Logging the model from code keeps the pickled Python object
out of the artifact; the wrapper reads everything it needs from the `native` artifact folder.
"""

from mlflow.models import set_model

from training.models.pyfunc import MemberModel

set_model(MemberModel())
