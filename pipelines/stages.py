"""Stage jobs: lifecycle stages of the members of a feature snapshot, and how members moved
between two snapshots (migration matrix, written as PNG + CSV under `outputs_dir`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from memberscore.errors import ContractError, ModelNotReady
from memberscore.settings import Settings
from serving.scoring.bundle import ModelBundle


def stage_migration(settings: Settings, start: date, end: date) -> tuple[pd.DataFrame, Path, str]:
    """Migration matrix between the snapshots of two cutoffs; writes PNG + CSV. Returns the
    matrix, the PNG path and the basis: churn scores of the registered churn champion when
    there is one, else declining rests on days_overdue alone."""
    from decisions.stages import migration_matrix, plot_migration

    bundle = _champions(settings)
    before, after = (_stages(settings, day, bundle) for day in (start, end))
    matrix = migration_matrix(before, after)
    matrix.index.name, matrix.columns.name = f"{start}", f"{end}"
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    path = settings.outputs_dir / f"stage-migration-{start}-{end}.png"
    plot_migration(matrix, f"Stage migration {start} to {end}").savefig(path, dpi=120)
    matrix.to_csv(path.with_suffix(".csv"))
    churn = None if bundle is None else bundle.get("churn")
    basis = (
        "no churn champion: declining rests on days overdue alone"
        if churn is None
        else f"churn scores of churn version {churn.ref.version} ({churn.ref.alias})"
    )
    return matrix, path, basis


def _champions(settings: Settings) -> ModelBundle | None:
    """The registered champions, or None while there are none."""
    from serving.scoring.registry import RegistrySource

    try:
        return RegistrySource(settings).load()
    except ModelNotReady:
        return None


def _stages(settings: Settings, day: date, bundle: ModelBundle | None) -> pd.Series:
    """Stage per member of the snapshot of cutoff `day`, with churn scores from `bundle`."""
    from decisions.stages import assign_stages
    from features.reader import read_snapshot
    from features.store import JOIN_KEY
    from serving.scoring.frames import score_frame

    features = read_snapshot(settings, day, _columns(bundle)).set_index(JOIN_KEY)
    scores = None if bundle is None else score_frame(features, bundle, settings, reasons=0)
    try:
        stages = assign_stages(features, scores, settings.decisions.stages, sentences=False)
    except ValueError as error:
        raise ContractError(f"snapshot of {day}: {error}") from None
    return stages["stage"]


def _columns(bundle: ModelBundle | None) -> list[str]:
    """The snapshot columns stages need: member_id, the stage rules' features and the catalog
    features of the models in `bundle` (scores read nothing else)."""
    from dataclasses import asdict

    from decisions.stages import StageColumns
    from features.catalog import feature_names
    from features.store import JOIN_KEY

    rules = [name for field, name in asdict(StageColumns()).items() if field != "churn"]
    models = [] if bundle is None else [f for m in bundle.models.values() for f in m.feature_names]
    catalog = set(feature_names())
    return list(dict.fromkeys([JOIN_KEY, *rules, *(f for f in models if f in catalog)]))
