"""Model vs ground truth on simulator data: the true churn probability agrees with realised
labels, and `compare` measures a prediction's distance from the truth."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memberscore.contract import TABLES, validate
from memberscore.settings import Settings
from pipelines import simulate
from training.core import labels, metrics, truth
from training.core.tasks import TASKS
from training.jobs import train as job

CUTOFF = pd.Timestamp("2024-01-15", tz="UTC")
H = 90


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    """(settings with truth, canonical orders) of a 1,500-member simulated programme."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("sim") / "data")
    simulate.run(settings, members=1500, days=500, seed=11, start=date(2023, 1, 1))
    orders = validate(pd.read_parquet(settings.raw_dir / "orders.parquet"), TABLES["orders"])
    return settings, orders.accepted


def scored_churn(settings: Settings, orders: pd.DataFrame) -> pd.DataFrame:
    """Churn labels at CUTOFF joined with their truth rows; prediction = the truth itself."""
    members = job.read_truth(settings)
    churn = labels.churn_labels(orders, CUTOFF, H, labels.observed_until(orders))
    scored = churn.rename(columns={"churned": "actual"}).assign(prediction=np.nan)
    table = truth.truth_frame(TASKS["churn"], members, orders, [CUTOFF], H)
    joined = truth.join_truth(scored, table)
    return joined.assign(prediction=joined["true_churn"])


def test_true_churn_probability_matches_realised_churn(simulated) -> None:
    """Given the simulator's truth, the mean true churn probability of the buyers is close to
    their realised churn share, and as a score it ranks churners well (the best AUC)."""
    settings, orders = simulated
    scored = scored_churn(settings, orders)
    assert len(scored) > 300, "enough buyers to compare"
    share, mean = scored["actual"].mean(), scored["true_churn"].mean()
    assert abs(mean - share) < 0.06, f"true probability {mean:.3f} vs realised {share:.3f}"
    assert metrics.roc_auc(scored["actual"], scored["true_churn"]) > 0.75


def test_compare_measures_distance_from_the_truth(simulated) -> None:
    """A prediction equal to the truth has correlation 1 and distance 0; noise lowers the
    correlation and raises the distance; the best AUC does not depend on the prediction."""
    settings, orders = simulated
    perfect = scored_churn(settings, orders)
    exact = truth.compare(TASKS["churn"], perfect)
    assert exact["truth_pearson"] == pytest.approx(1.0)
    assert exact["truth_mean_abs_diff"] == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    noisy = perfect.assign(
        prediction=np.clip(perfect["prediction"] + rng.normal(0, 0.2, len(perfect)), 0, 1)
    )
    rough = truth.compare(TASKS["churn"], noisy)
    assert rough["truth_pearson"] < 0.95 and rough["truth_mean_abs_diff"] > 0.05
    assert rough["truth_best_roc_auc"] == exact["truth_best_roc_auc"]


def test_spend_truth_and_p_alive_feature(simulated) -> None:
    """For spend, twice the true expected spend shows +100 % total bias and a perfect rank
    correlation; a btyd_p_alive equal to the true P(alive) has correlation 1."""
    settings, orders = simulated
    members = job.read_truth(settings)
    table = truth.truth_frame(TASKS["clv"], members, orders, [CUTOFF], H)
    spend = labels.clv_labels(orders, CUTOFF, H, labels.observed_until(orders), 0.01)
    scored = spend[["member_id", "cutoff"]].assign(actual=spend["spend"], prediction=np.nan)
    features = table[["member_id", "cutoff"]].assign(btyd_p_alive=table["true_p_alive"])
    joined = truth.join_truth(scored, table, features)
    joined["prediction"] = 2 * joined["true_spend"]
    result = truth.compare(TASKS["clv"], joined)
    assert result["truth_total_bias_pct"] == pytest.approx(100.0)
    assert result["truth_spearman"] == pytest.approx(1.0)
    assert 0 < result["truth_best_normalized_gini"] <= 1
    assert result["truth_p_alive_pearson"] == pytest.approx(1.0)


def test_no_truth_outside_the_simulator(tmp_path: Path) -> None:
    assert job.read_truth(Settings(data_dir=tmp_path)) is None
