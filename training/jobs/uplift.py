"""Jobs of the next-best-action engine: train the uplift model and evaluate decision policies.

I/O and orchestration only; the maths lives in `decisions`. Rows are contacts from the lake,
each joined by Feast (point in time) with the member's `nba_v1` features as of `sent_at`. The
latest `settings.decisions.uplift.holdout_days` of the log are held out: the model learns from
the earlier contacts and is measured (Qini / AUUC, policy values) on the later ones.

The model is logged to MLflow experiment `memberscore-uplift` as a pyfunc over its JSON state
(boosters as LightGBM text, no pickle); `load_model(settings, "champion")` returns the
`UpliftModel`. It is registered as `uplift` with alias `challenger` (and `champion` too when
there is none yet). Version tags `primary_metric` / `backtest_qini_value` let
`training.tracking.promote` gate promotion. Nothing of a member is logged: the tables are per
action and per policy, the state holds boosters, priors and per-action counts, and the input
example is synthetic (`_log_model`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from decisions.catalogue import NO_ACTION, Catalogue, load_catalogue
from decisions.evaluation import (
    TrueEffects,
    baseline_policies,
    evaluate_policies,
    greedy_choices,
    logged_data,
    most_popular,
    one_hot_policy,
    qini,
    reward_model,
    true_effects,
)
from decisions.uplift import ACTION, GROUP, RESPONDED, VALUE, UpliftModel, catalogue_priors
from memberscore.contract import CONTACTS
from memberscore.errors import DataNotFound, ModelNotReady
from memberscore.settings import Settings
from training.models.uplift_pyfunc import ENTRY_POINT, STATE, UpliftPyfunc

SERVICE = "nba_v1"
MODEL_NAME = "uplift"
PRIMARY_METRIC = "backtest_qini_value"
KEYS = ("contact_id", "member_id", "event_timestamp", "as_of", "sent_at")
MEMBER_ID = "member_id"
PROBE_ID = "synthetic-example"  # the id the output schema is inferred under; never logged


@dataclass(frozen=True)
class UpliftRun:
    """What one training run left in MLflow."""

    run_id: str
    version: str
    counts: pd.DataFrame
    metrics: dict[str, float]

    def describe(self) -> str:
        """A few lines for the CLI."""
        learned = int((self.counts["source"] == "learned").sum())
        return (
            f"uplift version {self.version} (run {self.run_id}) is challenger: {learned} of "
            f"{len(self.counts)} actions learned, the rest use catalogue priors; "
            f"{PRIMARY_METRIC} {self.metrics.get(PRIMARY_METRIC, float('nan')):.4f}\n"
            + self.counts.to_string()
        )


def contact_rows(settings: Settings) -> pd.DataFrame:
    """Every contact with its member's features as of sent_at, `responded`, `response_value`
    (currency, 0 without response) and `wave` (the send day)."""
    from features import store
    from features.reader import check_snapshots
    from memberscore import lake

    contacts = lake.read(settings.lake_dir, CONTACTS)
    if contacts.empty:
        raise DataNotFound(
            f"no contacts in the lake ({settings.lake_dir}); run `memberscore ingest contacts`"
        )
    entity = pd.DataFrame(
        {
            "contact_id": contacts["contact_id"].astype(str),
            "member_id": contacts["member_id"].astype(str),
            "event_timestamp": contacts["sent_at"].astype("datetime64[ns, UTC]"),
        }
    )
    check_snapshots(settings, chunk_rows=settings.chunk_rows)  # Feast joins from these files
    features = store.training_frame(settings, entity, SERVICE)
    return uplift_rows(contacts, features.drop(columns=["member_id", "event_timestamp"]))


def uplift_rows(contacts: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Contacts joined with per-contact `features` (keyed by contact_id), ready to learn from."""
    rows = contacts.merge(features, on="contact_id", how="left", validate="one_to_one")
    rows[RESPONDED] = rows["responded_at"].notna()
    rows[VALUE] = rows["response_value"].fillna(0.0).where(rows[RESPONDED], 0.0)
    rows["wave"] = rows["sent_at"].dt.floor("D")
    return rows


def feature_names(rows: pd.DataFrame) -> list[str]:
    """The feature columns of `uplift_rows` output."""
    skip = {*KEYS, *CONTACTS.names, RESPONDED, VALUE, "wave"}
    return [c for c in rows.columns if c not in skip]


def split(rows: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier contacts, the last `holdout_days` of contacts)."""
    cut = rows["sent_at"].max() - pd.Timedelta(days=holdout_days)
    later = rows["sent_at"] > cut
    if later.all() or not later.any():
        raise DataNotFound(f"the contact log does not span more than {holdout_days} days")
    return rows[~later], rows[later]


def fit(settings: Settings, train: pd.DataFrame, catalogue: Catalogue) -> UpliftModel:
    """The uplift model on `train`, seeded from settings, one LightGBM thread."""
    rules = settings.decisions.uplift
    model = UpliftModel(
        feature_names(train),
        min_treated=rules.min_treated,
        min_control=rules.min_control,
        seed=settings.seed,
        num_threads=1,
    )
    return model.fit(train, catalogue_priors(catalogue))


def holdout_metrics(model: UpliftModel, test: pd.DataFrame) -> dict[str, float]:
    """Qini and AUUC (value per treated member, currency) on held-out contacts, overall (each
    row scored for its own action) and per learned action."""
    arrays = model.predict_arrays(test)
    column = pd.Index(arrays.actions).get_indexer(pd.Index(test[ACTION]))
    known = column >= 0
    score = arrays.value[np.flatnonzero(known), column[known]]
    treated = (test[GROUP] == "treatment").to_numpy()[known]
    outcome = test[VALUE].to_numpy(dtype="float64")[known]
    overall = qini(score, treated, outcome)
    metrics = {PRIMARY_METRIC: overall[0], "backtest_auuc_value": overall[1]}
    for j, action in enumerate(arrays.actions):
        rows = (test[ACTION] == action).to_numpy()
        if arrays.source[j] == "learned" and rows.any():
            own = qini(arrays.value[rows, j], (test[GROUP] == "treatment").to_numpy()[rows],
                       test[VALUE].to_numpy(dtype="float64")[rows])  # fmt: skip
            metrics[f"qini_value_{action}"] = own[0]
    metrics["holdout_contacts"] = float(len(test))
    return metrics


def policy_table(
    model: UpliftModel,
    train: pd.DataFrame,
    test: pd.DataFrame,
    catalogue: Catalogue,
    truth: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """IPS / SNIPS / DR values of the learned policy and the baselines on `test` (currency per
    contacted member), plus the simulator's true lift when `truth` is given."""
    treatments = catalogue.ids
    costs = {a.id: a.unit_cost for a in catalogue.actions}
    test = test[test[ACTION].isin(treatments)]
    q_hat = reward_model(model.predict_arrays(test), treatments, costs, NO_ACTION)
    policies = {
        "learned": one_hot_policy(greedy_choices(q_hat, treatments), treatments),
        **baseline_policies(len(test), treatments, NO_ACTION, most_popular(_log(train))),
    }
    data = logged_data(test, treatments, costs, NO_ACTION)
    effects = None if truth is None else _true_effects(test, truth, treatments, costs)
    return evaluate_policies(data, policies, NO_ACTION, q_hat=q_hat, truth=effects)


def _log(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.assign(response_value=rows[VALUE].where(rows[RESPONDED]))


def _true_effects(
    test: pd.DataFrame, truth: pd.DataFrame, treatments: list[str], costs: dict[str, float]
) -> TrueEffects:
    """Simulator truth re-costed with the catalogue: the simulator's expected incremental value
    is net of its own channel cost, the logged rewards are net of the catalogue's unit cost."""
    joined = test[["contact_id", ACTION, "wave"]].merge(
        truth[["contact_id", "expected_incremental_value", "cost"]],
        on="contact_id",
        how="left",
        validate="one_to_one",
    )
    if joined["expected_incremental_value"].isna().any():
        raise DataNotFound("the simulator truth lacks some held-out contacts; re-run simulate")
    unit = joined[ACTION].map(costs)
    joined["true_value"] = joined["expected_incremental_value"] + joined["cost"] - unit
    return true_effects(joined, treatments, "true_value")


def train(settings: Settings, catalogue: Catalogue | None = None) -> UpliftRun:
    """Fit on all but the held-out days, measure on them, log and register the model."""
    import mlflow

    from training import tracking

    catalogue = catalogue or load_catalogue()
    rows = contact_rows(settings)
    earlier, later = split(rows, settings.decisions.uplift.holdout_days)
    model = fit(settings, earlier, catalogue)
    metrics = holdout_metrics(model, later)
    table = policy_table(model, earlier, later, catalogue, read_truth(settings))
    params = {**_params(model), "seed": settings.seed, "feature_service": SERVICE}
    tags = {"catalogue_currency": catalogue.currency}
    with tracking.training_run(
        settings, MODEL_NAME, MODEL_NAME, params=params, tags=tags, metrics=metrics
    ) as run:
        mlflow.log_text(model.counts_.to_csv(), "tables/contacts_per_action.csv")
        mlflow.log_text(table.to_csv(index=False), "tables/policy_values.csv")
        version = _log_model(model, tracking.pip_requirements(), example_rows(model, earlier))
    tracking.register_challenger(
        settings, run, MODEL_NAME, version, PRIMARY_METRIC, metrics[PRIMARY_METRIC]
    )
    return UpliftRun(run.info.run_id, version, model.counts_, metrics)


def evaluate(settings: Settings, alias: str, catalogue: Catalogue | None = None) -> pd.DataFrame:
    """The policy-value table of `uplift@alias` on the held-out days of the contact log."""
    catalogue = catalogue or load_catalogue()
    model = load_model(settings, alias)
    earlier, later = split(contact_rows(settings), settings.decisions.uplift.holdout_days)
    return policy_table(model, earlier, later, catalogue, read_truth(settings))


def load_model(settings: Settings, alias: str) -> UpliftModel:
    """The registered `uplift@alias`, or ModelNotReady naming the command to run."""
    import mlflow

    from training import tracking

    client = tracking.client(settings)
    if tracking.aliased(client, MODEL_NAME, alias) is None:
        raise ModelNotReady(f"no {MODEL_NAME}@{alias} in the registry; run `memberscore nba train`")
    wrapper = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{alias}").unwrap_python_model()
    if not isinstance(wrapper, UpliftPyfunc):
        raise ModelNotReady(f"{MODEL_NAME}@{alias} is not an uplift model")
    return wrapper.model


def example_rows(model: UpliftModel, contacts: pd.DataFrame) -> pd.DataFrame:
    """The model's feature columns of `contacts` as the pyfunc receives them (text as strings,
    None when missing), without `member_id`: what `_log_model` takes the schema from."""
    from training import tracking

    frame = contacts[list(model.features)].reset_index(drop=True)
    return tracking.text_as_objects(frame, model.categories_)


def _log_model(model: UpliftModel, requirements: list[str], rows: pd.DataFrame) -> str:
    """Log the model's JSON state as a pyfunc in the active run; returns the new version.

    Of the training `rows` (any `member_id` column is dropped) only the schema goes to MLflow:
    the signature (`member_id` and the columns with missing values optional) and, as input
    example, their `tracking.typical_row` unless a member's row equals it. The output schema
    comes from predicting that row under a made-up id, which is not logged."""
    import mlflow

    from training import tracking

    features = rows.drop(columns=[MEMBER_ID], errors="ignore").reset_index(drop=True)
    typical = tracking.typical_row(features, model.categories_)
    held = features.columns.empty or tracking.holds_row(features, typical)
    probe = typical.assign(**{MEMBER_ID: PROBE_ID})[[MEMBER_ID, *features.columns]]
    wrapper = UpliftPyfunc()
    wrapper.model = model
    optional = [MEMBER_ID, *tracking.missing_columns(features)]
    signature = tracking.signature(probe, wrapper.predict(None, probe), optional)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "uplift.json"
        path.write_text(json.dumps(model.to_state()), encoding="utf-8")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ENTRY_POINT),
            artifacts={STATE: str(path)},
            signature=signature,
            input_example=None if held else typical,
            pip_requirements=requirements,
            registered_model_name=MODEL_NAME,
        )
    return str(info.registered_model_version)


def read_truth(settings: Settings) -> pd.DataFrame | None:
    """The simulator's per-contact truth, or None for real data (no truth file)."""
    path = settings.truth_dir / "contacts.parquet"
    return pd.read_parquet(path) if path.is_file() else None


def _params(model: UpliftModel) -> dict[str, Any]:
    names = ("min_treated", "min_control", "n_estimators", "learning_rate", "num_leaves")
    extra = {"min_child_samples": model.min_child_samples, "features": len(model.features)}
    return {**{n: getattr(model, n) for n in names}, **extra, "num_threads": model.num_threads}
