"""The monitor job: for each champion, drift of its features and score between its training
snapshots and the latest snapshot, and the performance of its predictions at the latest cutoff
whose horizon has matured, beside the backtest it was promoted on.

Orchestration only (the figures are `training.monitoring`'s). Reference rows: a seeded sample
(`monitor.sample_rows` in all) of the model's population across its training snapshots (the
run's `cutoffs` tag) that are still built. Current rows: the whole population of the latest
snapshot for the features, a sample of it for the score. Matured rows: the latest snapshot
cutoff c with c + horizon <= the end of the data, preferring one after the training window;
predictions from the complete batch run of c made with the same version when there is one,
else recomputed with the champion on a sample of snapshot c; outcomes from the lake through
`training.core.labels`, so only what has been observed by now counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from memberscore.errors import DataNotFound
from memberscore.settings import Settings
from pipelines.monitor import inputs
from pipelines.monitor.champions import MONITORED, Champion, Champions, load_champions
from pipelines.monitor.results import Matured, ModelCheck, MonitorReport
from serving.scoring.bundle import ModelBundle, ServedModel
from serving.scoring.frames import score_frame
from training.core import labels
from training.core.tasks import default_horizon, get_task
from training.monitoring import drift, performance, psi, verdict

__all__ = ["Matured", "ModelCheck", "MonitorReport", "run"]

Progress = Callable[[str], None]
# Training snapshots a reference is drawn from, spread over the training window (first and
# last included): reading every one of a dozen million-row files costs more than it tells.
REFERENCE_SNAPSHOTS = 4


def _quiet(_: str) -> None:
    """Progress sink that prints nothing."""


def run(
    settings: Settings,
    *,
    as_of: date | None = None,
    champions: Champions | None = None,
    now: datetime | None = None,
    track: bool = True,
    write_report: bool = True,
    progress: Progress = _quiet,
) -> MonitorReport:
    """Monitor every champion against the snapshot of `as_of` (default: the latest); log the
    figures to MLflow (`track`) and write the HTML report under `<data>/monitor/<date of now,
    UTC>/` (`write_report`). DataNotFound when the snapshot or the lake is missing."""
    now = now or datetime.now(UTC)
    cutoffs = inputs.snapshot_cutoffs(settings)
    latest = _latest(cutoffs, as_of)
    progress(f"loading the champions of {', '.join(MONITORED)} from the registry")
    champs = champions or load_champions(settings)
    names = sorted({n for m in champs.models for n in champs.bundle.models[m].feature_names})
    progress(f"reading the snapshot of {latest:%Y-%m-%d} and the lake")
    raw = inputs.read_raw(settings, latest, names)
    seed = inputs.seed_of(settings, latest, "")
    current = raw.samples(dict.fromkeys(champs.models, settings.monitor.sample_rows), seed)
    for frame in current.values():
        inputs.check_rows(frame, str(raw.path), latest)
    tables = inputs.lake_tables(settings)
    end = labels.observed_until(tables[1])
    progress("sampling the champions' training snapshots")
    samples = reference_samples(settings, champs, cutoffs, names)
    checks = {}
    for name, champion in champs.models.items():
        progress(f"{name} version {champion.version}: drift and matured performance")
        checks[name] = check_model(
            settings,
            champion,
            champs.bundle,
            samples[name],
            current[name],
            cutoffs,
            latest,
            tables,
            end,
        )
    report = MonitorReport(latest, end, checks, not_monitored=champs.bundle.not_served())
    progress("writing the report and the MLflow run" if track else "writing the report")
    return publish(settings, report, champs, now, track=track, write_report=write_report)


def publish(
    settings: Settings,
    report: MonitorReport,
    champs: Champions,
    now: datetime,
    *,
    track: bool,
    write_report: bool,
) -> MonitorReport:
    """Write the HTML report and log the MLflow run (each when asked); record on each version
    the score reference the API's drift gauges compare with."""
    from dataclasses import replace

    from pipelines.monitor import report as html
    from pipelines.monitor import series
    from pipelines.monitor.champions import record_references

    if write_report:
        report = replace(report, report_path=html.write(settings, report, now))
    if track:
        report = replace(report, run_id=series.log(settings, report, now))
        for name, check in report.checks.items():
            record_references(settings, champs.models[name], {check.score: check.score_reference})
    return report


def _latest(cutoffs: Sequence[pd.Timestamp], as_of: date | None) -> pd.Timestamp:
    """The snapshot to check: `as_of`, or the latest built."""
    if as_of is None:
        return cutoffs[-1]
    wanted = labels.as_cutoff(as_of)
    if wanted not in cutoffs:
        raise DataNotFound(
            f"no feature snapshot of {as_of:%Y-%m-%d}; build it with `memberscore features "
            f"build --as-of {as_of:%Y-%m-%d}` or leave --as-of out for the latest"
        )
    return wanted


def score_name(model: ServedModel) -> str:
    """The score column a model gives (`serving.scoring.frames.score_columns`): churn_<h>d,
    activation, or spend_mean (expected spend over the clv horizon, currency)."""
    if model.ref.name == "churn":
        return f"churn_{model.horizon_days}d"
    return "spend_mean" if model.ref.name == "clv" else model.ref.name


def scores(frame: pd.DataFrame, model: ServedModel, settings: Settings) -> pd.Series:
    """The score of `model` for each row of `frame` (rows of its population), by member id;
    in `settings.batch_workers` slices at once (LightGBM releases the GIL; rows are scored
    independently, so the slicing does not change them)."""
    from concurrent.futures import ThreadPoolExecutor

    rows = frame.set_index(inputs.MEMBER_ID)
    rows.index = rows.index.astype(str)
    bundle, column = ModelBundle({model.ref.name: model}), score_name(model)
    slices = np.array_split(np.arange(len(rows)), max(1, min(settings.batch_workers, len(rows))))

    def one(positions: np.ndarray) -> pd.Series:
        return score_frame(rows.iloc[positions], bundle, settings, reasons=0)[column]

    with ThreadPoolExecutor(settings.batch_workers) as pool:
        parts = list(pool.map(one, slices))
    return pd.concat(parts).astype(float) if parts else pd.Series(dtype=float)


def reference_samples(
    settings: Settings, champs: Champions, cutoffs: Sequence[pd.Timestamp], columns: Sequence[str]
) -> dict[str, tuple[pd.DataFrame, tuple[pd.Timestamp, ...]]]:
    """For each champion, a seeded sample of its population over its training snapshots still
    built (`monitor.sample_rows` in all, shared evenly between them) and those cutoffs; each
    snapshot is read once. DataNotFound when none of a champion's is built."""
    built = {
        name: spread([c for c in m.cutoffs if c in set(cutoffs)], REFERENCE_SNAPSHOTS)
        for name, m in champs.models.items()
    }
    for name, days in built.items():
        if not days:
            champion = champs.models[name]
            raise DataNotFound(
                f"{name} version {champion.version} was trained on snapshots "
                f"{', '.join(f'{c:%Y-%m-%d}' for c in champion.cutoffs)}, none of them built "
                "now: rebuild one with `memberscore features build --as-of "
                f"{champion.cutoffs[-1]:%Y-%m-%d}`"
            )
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in built}
    for cutoff in sorted({c for days in built.values() for c in days}):
        rows = {
            name: max(1, settings.monitor.sample_rows // len(days))
            for name, days in built.items()
            if cutoff in days
        }
        raw = inputs.read_raw(settings, cutoff, columns)
        for name, frame in raw.samples(rows, inputs.seed_of(settings, cutoff, "")).items():
            parts[name].append(frame)
    out = {}
    for name, days in built.items():
        frame = pd.concat(parts[name], ignore_index=True)
        files = ",".join(f"{d:%Y-%m-%d}" for d in days)
        inputs.check_rows(frame, f"{settings.snapshots_dir}/snapshot-{{{files}}}", None)
        out[name] = (frame, days)
    return out


def spread(cutoffs: Sequence[pd.Timestamp], most: int) -> tuple[pd.Timestamp, ...]:
    """At most `most` of `cutoffs` (sorted), evenly spread, the first and the last included."""
    ordered = sorted(cutoffs)
    if len(ordered) <= most:
        return tuple(ordered)
    picks = np.linspace(0, len(ordered) - 1, most).round().astype(int)
    return tuple(ordered[i] for i in sorted(set(picks)))


def check_model(
    settings: Settings,
    champion: Champion,
    bundle: ModelBundle,
    sample: tuple[pd.DataFrame, tuple[pd.Timestamp, ...]],
    current: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp],
    latest: pd.Timestamp,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    end: pd.Timestamp,
) -> ModelCheck:
    """Drift and matured performance of one champion against `current`, a sample of its
    population in the latest snapshot."""
    limits = settings.monitor
    model = bundle.models[champion.name]
    names = list(model.feature_names)
    reference, built = sample
    refs = drift.references(reference, names, limits.bins, text=model.categories)
    features = drift.drift_table(refs, current)
    column = score_name(model)
    score_ref = champion.references.get(column) or psi.reference(
        scores(reference, model, settings), limits.bins, text=False
    )
    served = scores(current, model, settings).rename(column).to_frame()
    score_table = drift.drift_table({column: score_ref}, served, kind="score")
    counts, _ = score_ref.counts(served[column])
    ripe = matured_check(settings, champion, model, cutoffs, latest, tables, end)
    found = verdict.drift_findings(champion.name, pd.concat([score_table, features]), limits)
    if ripe is not None:
        found += verdict.decay_findings(champion.name, ripe.figures, ripe.promoted, limits)
    task = get_task(champion.name)
    return ModelCheck(
        name=champion.name,
        version=champion.version,
        horizon_days=model.horizon_days,
        score=column,
        reference_cutoffs=built,
        reference_rows=len(reference),
        current_rows=len(current),
        features=features,
        scores=score_table,
        score_reference=score_ref,
        score_current=tuple(psi.shares(counts)),
        matured=ripe,
        findings=tuple(found),
        retrain=verdict.retrain_command(
            task.name, model.horizon_days, default_horizon(settings, task)
        ),
    )


def matured_check(
    settings: Settings,
    champion: Champion,
    model: ServedModel,
    cutoffs: Sequence[pd.Timestamp],
    latest: pd.Timestamp,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    end: pd.Timestamp,
) -> Matured | None:
    """The champion's figures at its latest matured snapshot cutoff (one after its training
    window when there is one); None while no prediction has matured."""
    ripe = performance.matured([c for c in cutoffs if c <= latest], model.horizon_days, end)
    if not ripe:
        return None
    later = [c for c in ripe if c > max(champion.cutoffs)]
    cutoff = (later or ripe)[-1]
    predicted, source = predictions(settings, champion, model, cutoff)
    members, orders = tables  # only the predicted members' rows: a sample's labels are cheap
    ids = pd.Index(predicted.index.astype(str))
    own = (
        members.loc[members[labels.MEMBER_ID].isin(ids)],
        orders.loc[orders[labels.MEMBER_ID].isin(ids)],
    )
    outcomes = outcome_frame(settings, champion.name, own, cutoff, model.horizon_days, end)
    joined = outcomes.join(predicted.rename("predicted"), how="inner")
    if joined.empty:
        return None
    task = get_task(champion.name)
    figures = performance.matured_metrics(
        task.kind, joined["actual"].to_numpy(), joined["predicted"].to_numpy()
    )
    promoted = performance.promoted_figures(task.kind, champion.backtest)
    return Matured(cutoff, source, bool(later), figures, promoted)


def outcome_frame(
    settings: Settings,
    name: str,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    cutoff: pd.Timestamp,
    horizon_days: int,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """What happened in [cutoff, cutoff + horizon) to the task's population (its label, as
    `actual`), by member id (`training.core.labels`)."""
    members, orders = tables
    task = get_task(name)
    if name == "churn":
        frame = labels.churn_labels(orders, cutoff, horizon_days, end)
    elif name == "activation":
        frame = labels.activation_labels(members, orders, cutoff, horizon_days, end)
    else:
        rate = settings.monthly_discount_rate
        frame = labels.clv_labels(orders, cutoff, horizon_days, end, rate)
    actual = frame[task.label].astype(float).rename("actual")
    return actual.set_axis(frame[labels.MEMBER_ID].astype(str)).to_frame()


def predictions(
    settings: Settings, champion: Champion, model: ServedModel, cutoff: pd.Timestamp
) -> tuple[pd.Series, str]:
    """The champion's predictions at `cutoff` by member id and where they came from: the batch
    run of that cutoff made with this version, else recomputed on a sample of its snapshot."""
    column = score_name(model)
    found = inputs.batch_predictions(
        settings, cutoff.date(), champion.name, champion.version, column
    )
    if found is not None:
        return found, "batch run"
    raw = inputs.read_raw(settings, cutoff, list(model.feature_names))
    seed = inputs.seed_of(settings, cutoff, column)
    rows = raw.samples({champion.name: settings.monitor.sample_rows}, seed)[champion.name]
    inputs.check_rows(rows, str(raw.path), cutoff)
    return scores(rows, model, settings).dropna(), "recomputed"
