"""What the commands print: keep third-party chatter out of the user's terminal."""

from __future__ import annotations

import os
import warnings

NOISY_LIBRARIES = ("ibis", "sqlalchemy", "mlflow", "feast", "starlette")


def quiet_libraries() -> None:
    """Hide MLflow's INFO lines and download bars and third-party deprecation notices; they say
    nothing about the user's job. Errors and warnings of other kinds still show.

    Feast resets the warning filters when it is imported (`simplefilter("once", ...)`), so code
    that imports Feast lazily calls this again afterwards."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for module in NOISY_LIBRARIES:
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=module)
