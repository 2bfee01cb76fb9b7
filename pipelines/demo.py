"""The end-to-end demo behind `make demo`: every job of the project, in order, on simulated data.

Each step prints what it did and where its output went. Rerunning it is safe: the simulator is
seeded, so the second ingest finds every row already stored and skips it as a duplicate, and a
retrained model that does not beat its champion is registered but not promoted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pandas as pd
import typer

from memberscore.contract import TABLES
from memberscore.redact import redact
from memberscore.settings import Settings

DEMO_MEMBERS = 20_000
DEMO_DAYS = 730
DEMO_START = date(2024, 1, 1)
AS_OF = DEMO_START + timedelta(days=DEMO_DAYS)  # the day after the last simulated day
SNAPSHOT_EVERY_DAYS = 28
SNAPSHOTS = 24
# Two simulated years leave too few cutoffs with a full year of future spend after them.
CLV_HORIZON_DAYS = 180
STAGE_WINDOW_DAYS = 168
CAMPAIGN_BUDGET = 2_000.0  # in the dataset currency
MODELS = ("churn", "activation", "clv")
SHOWN_FEATURES = (
    "recency_days", "frequency", "monetary", "mean_gap_days", "days_overdue", "tier", "segment",
    "tags",
)  # fmt: skip

Step = Callable[[Settings], None]


def demo_settings(settings: Settings) -> Settings:
    """The user's settings with the demo's CLV horizon."""
    return settings.model_copy(update={"clv_horizon_days": CLV_HORIZON_DAYS})


def run(settings: Settings) -> None:
    """Run every demo step; a failing step stops the demo with its error."""
    settings = demo_settings(settings)
    started = time.perf_counter()
    for title, step in _steps():
        typer.secho(f"\n== {title}  [{time.perf_counter() - started:.0f} s]", bold=True)
        step(settings)
    typer.secho(f"\nDemo finished in {time.perf_counter() - started:.0f} s.", bold=True)
    _where(settings)


def _steps() -> list[tuple[str, Step]]:
    return [
        (f"Simulate {DEMO_MEMBERS:,} members over {DEMO_DAYS} days", _simulate),
        ("Ingest the four tables into the lake", _ingest),
        (f"Build {SNAPSHOTS} feature snapshots up to {AS_OF}", _build),
        ("Register the features in Feast and load the latest into the online store", _feast),
        (f"Train, backtest and promote {', '.join(MODELS)}", _train),
        (f"Lifecycle stage migration over the last {STAGE_WINDOW_DAYS} days", _stages),
        ("Next-best action: learn uplift from the campaign log, evaluate policies", _nba),
        ("Score API: publish score cards, start, call each endpoint, stop", _serve),
        (f"Batch-score every member as of {AS_OF}, build campaign lists", _batch),
        (f"Programme KPIs as of {AS_OF}: monthly figures and acquisition cohorts", _kpis),
        ("Monitor the champions: feature and score drift, matured performance", _monitor),
        ("Erase one member from every store (a member's right to erasure)", _erase),
    ]


def _simulate(settings: Settings) -> None:
    from pipelines import simulate

    summary = simulate.run(
        settings, members=DEMO_MEMBERS, days=DEMO_DAYS, seed=settings.seed, start=DEMO_START
    )
    typer.echo(summary.describe())


def _ingest(settings: Settings) -> None:
    from pipelines.ingest import tables as ingest

    for name in TABLES:
        source = settings.raw_dir / f"{name}.parquet"
        report = ingest.ingest(settings, name, str(source), currency=settings.currency)
        typer.echo(report.describe())


def cutoffs() -> list[date]:
    """The demo's snapshot cutoffs: AS_OF and every SNAPSHOT_EVERY_DAYS before it."""
    step = timedelta(days=SNAPSHOT_EVERY_DAYS)
    return [AS_OF - step * k for k in reversed(range(SNAPSHOTS))]


def _build(settings: Settings) -> None:
    from features import build

    build.run(settings, cutoffs(), echo=typer.echo)


def _feast(settings: Settings) -> None:
    from features import store
    from features.reader import check_snapshots

    names = store.apply(settings)
    typer.echo(f"applied {len(names)} Feast objects: {', '.join(names)}")
    check_snapshots(settings, chunk_rows=settings.chunk_rows)  # the API predicts on these rows
    typer.echo(store.materialize(settings).describe())
    member = _members(settings)[0]
    row = store.online_member(settings, member)
    typer.echo(f"online features of {member} (as of {row[store.AS_OF]}), a few of them:")
    for name in SHOWN_FEATURES:
        typer.echo(f"  {name:<16} {_plain(row.get(name))}")


def _train(settings: Settings) -> None:
    from training.core.tasks import get_task
    from training.jobs import train as job

    for name in MODELS:
        typer.secho(f"-- {name}", bold=True)
        plan, frame = job.prepare(
            settings, get_task(name), every_days=SNAPSHOT_EVERY_DAYS, progress=typer.echo
        )
        report = job.train(settings, plan, frame, progress=typer.echo)
        typer.echo(job.metric_table(report.result))
        _promote(settings, report.record.model_name)
    for horizon in sorted(set(settings.churn_horizons_days) - {settings.churn_horizon_days}):
        _train_other_churn_horizon(settings, horizon)
    typer.secho("-- btyd (P(alive) and expected next order for the score API)", bold=True)
    from training.jobs import outlook as outlook_job

    outlook = outlook_job.run(settings, progress=typer.echo)
    _promote(settings, outlook.record.model_name)
    typer.echo(f"runs, plots and models: {_mlflow_ui(settings)}")


def _train_other_churn_horizon(settings: Settings, horizon: int) -> None:
    """A churn model for another configured horizon (registered as churn_<h>d), on every
    other snapshot to keep the demo short; its metrics are in MLflow."""
    from training.core.tasks import get_task
    from training.jobs import train as job

    typer.secho(f"-- churn over {horizon} days", bold=True)
    plan, frame = job.prepare(
        settings, get_task("churn"), horizon_days=horizon, every_days=2 * SNAPSHOT_EVERY_DAYS
    )
    report = job.train(settings, plan, frame)
    mean = report.result.mean
    typer.echo(f"backtest ROC AUC {mean['roc_auc']:.4f}, Brier {mean['brier']:.4f}")
    _promote(settings, report.record.model_name)


def _promote(settings: Settings, model_name: str) -> None:
    """Promote the challenger; a refusal by the gate is an outcome to show, not a failure."""
    from training import tracking

    try:
        typer.echo(tracking.promote(settings, model_name).describe())
    except tracking.PromotionRefused as refused:
        typer.echo(f"not promoted: {refused}")


def _stages(settings: Settings) -> None:
    from pipelines.stages import stage_migration

    start = AS_OF - timedelta(days=STAGE_WINDOW_DAYS)
    matrix, figure, basis = stage_migration(settings, start, AS_OF)
    typer.echo(f"members by stage at {start} (rows) and at {AS_OF} (columns); {basis}:")
    typer.echo(matrix.to_string())
    typer.echo(f"heatmap: {figure}\ntable:   {figure.with_suffix('.csv')}")


def _nba(settings: Settings) -> None:
    from decisions.catalogue import load_catalogue
    from decisions.evaluation import policy_text
    from training.jobs import uplift

    catalogue = load_catalogue(None)
    typer.echo(uplift.train(settings, catalogue).describe())
    _promote(settings, "uplift")
    typer.echo("policy value on held-out contacts (currency per contacted member, 95 % CI):")
    typer.echo(policy_text(uplift.evaluate(settings, "champion", catalogue)))
    typer.echo("how to read it: docs/decisions.md")
    _decisions(settings)


def _decisions(settings: Settings) -> None:
    """The stage distribution at AS_OF and the next-best action, with its reasons, of one
    member per stage, as a campaign manager would look at them."""
    from decisions.catalogue import load_catalogue
    from decisions.engine import next_best_action
    from decisions.stages import assign_stages
    from features.reader import read_snapshot
    from features.store import JOIN_KEY
    from memberscore import lake
    from memberscore.contract import CONTACTS
    from serving.scoring.frames import score_frame
    from serving.scoring.registry import RegistrySource

    features = read_snapshot(settings, AS_OF).set_index(JOIN_KEY)
    bundle = RegistrySource(settings).load()
    scores = score_frame(features, bundle, settings, reasons=0)
    stages = assign_stages(features, scores, settings.decisions.stages, sentences=False)
    counts = stages["stage"].value_counts(sort=False)
    typer.echo(f"\nstage distribution at {AS_OF}:")
    for stage, count in counts.items():
        typer.echo(f"  {stage:<11} {count:>7,}  {count / len(stages):6.1%}")
    contacts = lake.read(settings.lake_dir, CONTACTS)
    now, catalogue = pd.Timestamp(AS_OF, tz="UTC"), load_catalogue(None)
    typer.echo(f"\nnext-best action on {AS_OF}, one member per stage:")
    for member_id in stages.groupby("stage", observed=True).head(1).index:
        decision = next_best_action(
            str(member_id),
            features=features.loc[member_id].to_dict(),
            scores=scores.loc[member_id].dropna().to_dict(),
            contacts=contacts[contacts["member_id"] == member_id],
            now=now,
            catalogue=catalogue,
            uplift=bundle.uplift,
            settings=settings.decisions,
        )
        _show_decision(decision)


def _show_decision(decision: Any) -> None:
    """One member's decision: stage and rule, the action with its value and reasons, and the
    alternatives."""
    action = decision.action
    typer.echo(f"{decision.member_id}  {decision.stage}: {decision.stage_rule}")
    typer.echo(f"  -> {action.action_id} ({action.channel or '-'}), expected value "
               f"{action.expected_value:+.2f}")  # fmt: skip
    for reason in (*decision.reasons, *action.reasons):
        typer.echo(f"     - {reason}")
    others = ", ".join(f"{o.action_id} {o.expected_value:+.2f}" for o in decision.alternatives)
    typer.echo(f"     alternatives: {others or 'none allowed'}")


def _serve(settings: Settings) -> None:
    from pipelines import demo_api, publish

    typer.echo(publish.run(settings, progress=typer.echo).describe())
    demo_api.tour(settings, _members(settings))


def _batch(settings: Settings) -> None:
    from pipelines import campaign
    from pipelines.batch import job as batch

    summary = batch.run(settings, AS_OF, force=True)
    typer.echo(summary.describe())
    lists = campaign.build(settings, summary.out, budget=CAMPAIGN_BUDGET)
    typer.echo(lists.describe())
    typer.echo(f"HTML report: {summary.report}")


def _kpis(settings: Settings) -> None:
    from pipelines.kpis import job as kpis

    typer.echo(kpis.run(settings, AS_OF).headline())


def _monitor(settings: Settings) -> None:
    """Check every champion against the latest snapshot; the demo's programme does not drift,
    so a finding here is printed for reading, not a failed step (`memberscore monitor` exits
    non-zero on one)."""
    from pipelines.monitor import job as monitor

    typer.echo(monitor.run(settings, as_of=AS_OF, progress=typer.echo).headline())


def _erase(settings: Settings) -> None:
    """Finish the erasure the API tour requested, then erase the first member of the latest
    snapshot from every store; the batch run still verifies. A rerun of the demo skips the
    member at ingest (the erasure log), so it then erases the next one."""
    from pipelines import erase
    from pipelines.batch import job as batch

    erase.finish_pending(settings)
    member = _members(settings)[0]
    typer.echo(erase.erase(settings, [member], by="demo").describe())
    typer.echo(batch.verify(batch.default_out(settings, AS_OF)).describe())


def _members(settings: Settings) -> list[str]:
    """Two members of the latest snapshot: one who has ordered, one who never has."""
    from features.reader import read_snapshot
    from features.store import JOIN_KEY

    latest = read_snapshot(settings, AS_OF, columns=[JOIN_KEY, "has_ordered"])
    ordered = latest["has_ordered"].fillna(False).astype(bool)
    return [str(latest.loc[ordered, JOIN_KEY].iloc[0]), str(latest.loc[~ordered, JOIN_KEY].iloc[0])]


def _plain(value: object) -> str:
    """A feature value for reading: floats to 4 significant digits, missing as '-'."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _mlflow_ui(settings: Settings) -> str:
    return f"mlflow ui --backend-store-uri {redact(settings.mlflow_tracking_uri)}"


def _where(settings: Settings) -> None:
    """Where the demo's outputs are."""
    data = settings.data_dir.resolve()
    typer.echo(f"Data:      {data}  (raw, lake, quarantine, truth, features, feast, outputs)")
    typer.echo(
        f"Models:    {redact(settings.mlflow_tracking_uri)}  (browse: {_mlflow_ui(settings)})"
    )
    typer.echo(f"Outputs:   {settings.outputs_dir.resolve()}")
    typer.echo("Next:      make serve  (README.md shows curl calls)")
