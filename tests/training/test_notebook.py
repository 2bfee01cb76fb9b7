"""notebooks/retrain.ipynb runs top to bottom on a small simulated programme: its code cells
are executed in order in one namespace (as a kernel would), with the parameters cell replaced."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from memberscore.settings import Settings, get_settings

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "retrain.ipynb"
START = date(2024, 1, 1)


def code_cells(path: Path) -> list[tuple[list[str], str]]:
    """(tags, source) of every code cell of a notebook file (nbformat 4 JSON)."""
    notebook = json.loads(path.read_text())
    assert notebook["nbformat"] == 4, "an nbformat 4 notebook"
    return [
        (cell["metadata"].get("tags", []), "".join(cell["source"]))
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
    ]


@pytest.fixture
def programme_settings(
    tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """A 600-member simulated programme ingested, with snapshots every 28 days in Feast, and
    the environment pointing `get_settings()` at it."""
    import shutil

    from features import build, store
    from memberscore.contract import TABLES
    from pipelines import simulate
    from pipelines.ingest import tables as ingest

    env = {
        "MEMBERSCORE_DATA_DIR": str(tmp_path / "data"),
        "MEMBERSCORE_FEAST_REPO": str(tmp_path / "feature_repo"),
        "MEMBERSCORE_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MEMBERSCORE_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    shutil.copyfile(mlflow_template, tmp_path / "mlflow.db")
    get_settings.cache_clear()
    settings = get_settings()
    simulate.run(settings, members=600, days=420, seed=5, start=START)
    for name in TABLES:
        ingest.ingest(settings, name, str(settings.raw_dir / f"{name}.parquet"), currency="USD")
    first = START + timedelta(days=35)
    build.run(settings, build.cutoffs(START + timedelta(days=413), first, 28), echo=lambda _: None)
    store.apply(settings)
    yield settings
    get_settings.cache_clear()


@pytest.mark.slow
def test_retrain_notebook_runs_and_promotes(programme_settings: Settings) -> None:
    """Given the programme, when every code cell runs with a one-fold churn backtest, then a
    challenger is registered, compared with the champion and promoted (no champion before)."""
    cells = code_cells(NOTEBOOK)
    assert [tags for tags, _ in cells].count(["parameters"]) == 1, "one parameters cell"
    namespace: dict[str, Any] = {}
    for tags, source in cells:
        if "parameters" in tags:
            source = 'TASK = "churn"\nEVERY_DAYS = None\nFOLDS = 1\nPROMOTE = True\n'
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    assert len(namespace["result"].folds) == 1
    assert {"truth_best_roc_auc", "truth_pearson"} <= set(namespace["truth"]), "simulator truth"
    table = namespace["tracking"].compare_aliases(programme_settings, "churn")
    assert isinstance(table, pd.DataFrame) and list(table.index) == ["champion", "challenger"]
    assert table.loc["champion", "version"] == table.loc["challenger", "version"], "promoted"
    assert "backtest_truth_best_roc_auc" in table.columns, "truth metrics logged to MLflow"
    assert any(c.startswith("btyd_") for c in namespace["data"].feature_names), "btyd features"
    assert namespace["grade"].letter in "ABC", "the churn model beats the naive baseline"
