"""Issue 17: what MLflow keeps of a training run holds no member's data.

Tiny models are trained on the synthetic programme of `conftest.py`; every file of the run's
artifacts and of the registered version's model (downloaded as a client would) and the tracking
database itself are searched byte for byte for the members' ids, and the logged input example
must be no member's row while keeping the model's schema.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memberscore.settings import Settings
from training import tracking
from training.core import dataset
from training.core.labels import as_cutoff, observed_until
from training.core.tasks import TASKS
from training.jobs import train as job
from training.models import persistence
from training.models.boosting import BoostParams


def stored_files(settings: Settings, run_id: str, model_uri: str, folder: Path) -> Path:
    """Download the run's artifacts and the model of `model_uri` into `folder`, beside a copy
    of the tracking database (params, tags, metric names, version tags); returns `folder`."""
    import mlflow

    uri = tracking.tracking_uri(settings)
    client = tracking.client(settings)
    mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_run(run_id).info.artifact_uri,
        dst_path=str(folder / "run"),
        tracking_uri=uri,
    )
    mlflow.artifacts.download_artifacts(
        artifact_uri=model_uri, dst_path=str(folder / "model"), tracking_uri=uri, registry_uri=uri
    )
    database = Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///"))
    shutil.copyfile(database, folder / "tracking.db")
    return folder


def ids_in_files(folder: Path, ids: Iterable[str]) -> dict[str, list[str]]:
    """Each file under `folder` (relative path) whose bytes hold one of `ids` as a whole token
    → those ids. A token is not glued to letters or digits: SQLite stores a row's cells side by
    side, so a tag value ending in "m" before a random run uuid starting "0516" must not read
    as member m0516."""
    needles = [
        (i, re.compile(rb"(?<![0-9A-Za-z])" + re.escape(i.encode()) + rb"(?![0-9A-Za-z])"))
        for i in sorted(set(ids))
    ]
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [i for i, needle in needles if needle.search(data)]
        if hits:
            found[path.relative_to(folder).as_posix()] = hits
    return found


def matching_rows(example: pd.DataFrame, rows: pd.DataFrame) -> int:
    """How many (example row, row) pairs agree on every column of `example` (missing values
    agree with missing values)."""
    count = 0
    for _, logged in example.iterrows():
        same = np.ones(len(rows), dtype=bool)
        for name, value in logged.items():
            column = rows[name]
            if pd.isna(value):
                same &= column.isna().to_numpy()
            elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
                same &= np.isclose(column.to_numpy(dtype=float), float(value), rtol=0, atol=0)
            else:
                same &= (column.astype(object).astype(str) == str(value)).to_numpy()
        count += int(same.sum())
    return count


def logged_example(model_folder: Path) -> pd.DataFrame | None:
    """The input example stored with a downloaded model folder, or None without one."""
    from mlflow.models import Model

    return Model.load(str(model_folder / "MLmodel")).load_input_example(str(model_folder))


def train_task(
    settings: Settings, programme: tuple[pd.DataFrame, pd.DataFrame], rfm, name: str
) -> tuple[job.TrainReport, pd.DataFrame]:
    """A small `name` model on the programme (features from `rfm`), logged to `settings`'
    MLflow store; returns the report and every member-cutoff row it could train on."""
    members, orders = programme
    task = TASKS[name]
    cutoffs = [as_cutoff("2023-03-01") + pd.Timedelta(days=28 * i) for i in range(10)]
    plan = job.make_plan(
        settings, task, orders, horizon_days=90, cutoffs=[c.date() for c in cutoffs]
    )
    plan = replace(plan, params=BoostParams(seed=settings.seed, num_boost_round=20))
    end = observed_until(orders)
    frame = dataset.join_features(
        dataset.entity_frame(task, members, orders, plan.cutoffs, 90, end, 0),
        rfm(members, orders, plan.cutoffs),
    )
    data = dataset.training_data(task, members, orders, frame, 0.0)
    return job.train(settings, plan, data), frame


@pytest.mark.parametrize("name", ["churn", "clv"])
def test_a_registered_task_model_carries_no_member_data(
    mlflow_settings: Settings, programme, rfm, name: str, tmp_path: Path
) -> None:
    """Issue 17 (MLflow input examples). Given a churn or clv model trained on 600 members,
    when its run and its registered version are downloaded, then no file (plots, tables,
    native folder, MLmodel, input examples, environment files) nor the tracking database holds
    a member id; the input example is no member's row, yet has the model's features, and the
    pyfunc's signature still accepts members' rows, missing values included."""
    import mlflow

    report, frame = train_task(mlflow_settings, programme, rfm, name)
    record = report.record
    model_uri = f"models:/{record.model_name}/{record.version}"

    folder = stored_files(mlflow_settings, record.run_id, model_uri, tmp_path / "stored")

    ids = programme[0]["member_id"].astype(str)
    assert ids_in_files(folder, ids) == {}, "files holding member ids of the training data"
    example = logged_example(folder / "model")
    assert example is not None and len(example) >= 1, "an input example is still logged"
    native = _native(mlflow_settings, record, tmp_path / "native")
    features = list(native.encoding_.feature_names)
    assert list(example.columns) == features, "the example has the model's columns, no id"
    assert matching_rows(example, frame) == 0, "the input example copies a member's row"
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    assert pyfunc.metadata.get_input_schema().input_names() == features
    gaps = frame[features].isna().any(axis=1)
    real = pd.concat([frame.loc[gaps, features].head(10), frame.loc[~gaps, features].head(10)])
    predicted = pyfunc.predict(tracking.pyfunc_input(native, real))
    assert len(predicted) == len(real), "members' rows (with their missing values) still score"


def _native(settings: Settings, record: tracking.RunRecord, tmp: Path) -> persistence.Model:
    """The native model of the challenger of `record` (downloaded into `tmp`)."""
    folder = tracking.download_native(settings, record.model_name, tracking.CHALLENGER, tmp)
    return persistence.load(folder)


def test_the_outlook_artifact_carries_no_member_data(
    mlflow_settings: Settings, programme, tmp_path: Path
) -> None:
    """Issue 17 (guard: the BTYD outlook never held member rows; this keeps it so). Given an
    outlook fitted on the members' snapshot, when it is registered, then neither its run, its
    version nor the tracking database holds a member id."""
    from features.families.btyd import fit_family
    from tests.training.jobs.test_outlook import CUTOFF, snapshot_of
    from training.jobs import outlook as outlook_job

    members, orders = programme
    outlook = fit_family(snapshot_of(members, orders, CUTOFF))
    record = outlook_job.log_outlook(mlflow_settings, outlook, CUTOFF, {"roc_auc": 0.7}, {})

    uri = f"models:/{record.model_name}/{record.version}"
    folder = stored_files(mlflow_settings, record.run_id, uri, tmp_path / "stored")

    assert (folder / "model" / outlook_job.ARTIFACT_FILE).is_file(), "the version's artifact"
    assert ids_in_files(folder, members["member_id"].astype(str)) == {}


def test_ids_are_found_as_whole_tokens_only(tmp_path: Path) -> None:
    """Guard of the search itself: an id quoted, comma-separated or at a line's end is found;
    the same characters glued into a longer token (adjacent SQLite cells) are not."""
    (tmp_path / "leak.json").write_bytes(b'{"member_id": "m0516"}')
    (tmp_path / "leak.csv").write_bytes(b"x,m0042\n")
    (tmp_path / "glued.db").write_bytes(b"\x00lightgbm0516ab3f\x00m05160\x00")

    assert ids_in_files(tmp_path, ["m0516", "m0042"]) == {
        "leak.csv": ["m0042"],
        "leak.json": ["m0516"],
    }
