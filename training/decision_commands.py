"""CLI of the decision engine: `memberscore stages` and `memberscore nba train|evaluate|show`.

Thin: arguments in, one job call, text out. Heavy imports (Feast, MLflow, LightGBM) happen
inside the commands. The stage migration job is here too because it is only file reads around
`decisions.stages`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from memberscore.errors import ContractError, DataNotFound, ModelNotReady
from memberscore.settings import Settings, get_settings

if TYPE_CHECKING:
    from serving.bundle import ModelBundle

nba_app = typer.Typer(
    help="Next-best action: train the uplift model, evaluate policies, show a member's decision.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
CatalogueOption = Annotated[
    Path | None,
    typer.Option(help="Action catalogue YAML (default: the shipped decisions/actions.yaml)."),
]


def stages(
    start: Annotated[str, typer.Option("--from", help="First snapshot cutoff (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Second snapshot cutoff (YYYY-MM-DD).")],
) -> None:
    """Lifecycle stages of every member at two feature snapshots and how members moved between
    them: prints the migration matrix and saves it as a heatmap under data/outputs.

    Example: memberscore stages --from 2025-06-02 --to 2025-09-01
    """
    settings = get_settings()
    matrix, figure, basis = stage_migration(
        settings, date.fromisoformat(start), date.fromisoformat(end)
    )
    typer.echo(f"members by stage at {start} (rows) and at {end} (columns); {basis}:")
    typer.echo(matrix.to_string())
    typer.echo(f"heatmap: {figure}\ntable:   {figure.with_suffix('.csv')}")


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
    from serving.registry import RegistrySource

    try:
        return RegistrySource(settings).load()
    except ModelNotReady:
        return None


def _stages(settings: Settings, day: date, bundle: ModelBundle | None) -> pd.Series:
    """Stage per member of the snapshot of cutoff `day`, with churn scores from `bundle`."""
    from decisions.stages import assign_stages
    from features.store import JOIN_KEY, snapshot_path
    from serving.frames import score_frame

    path = snapshot_path(settings, day)
    if not path.is_file():
        raise DataNotFound(f"no snapshot for {day}; run `memberscore features build --as-of {day}`")
    features = pd.read_parquet(path).set_index(JOIN_KEY)
    scores = None if bundle is None else score_frame(features, bundle, settings, reasons=0)
    try:
        stages = assign_stages(features, scores, settings.decisions.stages, sentences=False)
    except ValueError as error:
        raise ContractError(f"snapshot {path.name}: {error}") from None
    return stages["stage"]


@nba_app.command()
def train(catalogue: CatalogueOption = None) -> None:
    """Learn per-action uplift (response probability and value) from the randomized contact log,
    measure it on the latest days, and register it in MLflow as `uplift@challenger`.

    Example: memberscore nba train
    """
    from decisions.catalogue import load_catalogue
    from training import uplift

    typer.echo(uplift.train(get_settings(), load_catalogue(catalogue)).describe())


@nba_app.command()
def evaluate(
    alias: Annotated[str, typer.Option(help="Registry alias of the uplift model.")] = "champion",
    catalogue: CatalogueOption = None,
) -> None:
    """Offline value of the learned policy and of the baselines (no action, everyone gets the
    most popular action, a random action) on the held-out contacts: IPS, SNIPS and doubly robust
    estimates with 95 % intervals, in currency per contacted member (docs/decisions.md).

    Example: memberscore nba evaluate --alias challenger
    """
    from decisions.catalogue import load_catalogue
    from training import uplift

    typer.echo(policy_text(uplift.evaluate(get_settings(), alias, load_catalogue(catalogue))))


def policy_text(table: pd.DataFrame) -> str:
    """The policy-value table as printed: 3 decimals, "–" where an estimator has no value (the
    simulator's true effect is known as a lift only)."""
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        return table.round(3).to_string(index=False, na_rep="–")


@nba_app.command()
def show(
    member_id: Annotated[str, typer.Argument(help="The member id, e.g. m0000001.")],
    catalogue: CatalogueOption = None,
) -> None:
    """The next-best action of one member now, with alternatives and reasons (features from the
    online store, contacts from the lake, uplift@champion; no churn score).

    Example: memberscore nba show m0000001
    """
    from decisions.catalogue import load_catalogue
    from decisions.engine import next_best_action
    from features import store
    from memberscore.contract import CONTACTS
    from pipelines import lake
    from training import uplift

    settings = get_settings()
    row = store.online_member(settings, member_id)
    contacts = lake.read(settings.lake_dir, CONTACTS)
    decision = next_best_action(
        member_id,
        {str(k): v for k, v in row.items()},
        {},
        contacts[contacts["member_id"] == member_id],
        pd.Timestamp.now(tz="UTC"),
        load_catalogue(catalogue),
        uplift.load_model(settings, "champion"),
        settings.decisions,
    )
    typer.echo(
        f"{member_id}: {decision.action.action_id} ({decision.stage}: {decision.stage_rule})"
    )
    for reason in (*decision.reasons, *decision.action.reasons):
        typer.echo(f"  - {reason}")
    for option in decision.alternatives:
        typer.echo(f"  alternative {option.action_id}: EV {option.expected_value:+.2f}")


def register(app: typer.Typer) -> None:
    """Add `stages` and the `nba` group to the top-level CLI."""
    app.command()(stages)
    app.add_typer(nba_app, name="nba")
