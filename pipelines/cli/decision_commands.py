"""CLI of the decision engine: `memberscore stages` and `memberscore nba train|evaluate|show`.

Thin: arguments in, one job call, text out. Heavy imports (Feast, MLflow, LightGBM) happen
inside the commands.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from memberscore.settings import get_settings

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
    from pipelines.erase import finish_pending_quietly
    from pipelines.stages import stage_migration

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)
    matrix, figure, basis = stage_migration(
        settings, date.fromisoformat(start), date.fromisoformat(end)
    )
    typer.echo(f"members by stage at {start} (rows) and at {end} (columns); {basis}:")
    typer.echo(matrix.to_string())
    typer.echo(f"heatmap: {figure}\ntable:   {figure.with_suffix('.csv')}")


@nba_app.command()
def train(catalogue: CatalogueOption = None) -> None:
    """Learn per-action uplift (response probability and value) from the randomized contact log,
    measure it on the latest days, and register it in MLflow as `uplift@challenger`.

    Example: memberscore nba train
    """
    from decisions.catalogue import load_catalogue
    from pipelines.erase import finish_pending_quietly
    from training.jobs import uplift

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)  # no erased member's contacts in training
    typer.echo(uplift.train(settings, load_catalogue(catalogue)).describe())


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
    from decisions.evaluation import policy_text
    from training.jobs import uplift

    typer.echo(policy_text(uplift.evaluate(get_settings(), alias, load_catalogue(catalogue))))


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
    from memberscore import lake
    from memberscore.contract import CONTACTS
    from training.jobs import uplift

    settings = get_settings()
    row = store.online_member(settings, member_id)
    contacts = lake.read(settings.lake_dir, CONTACTS)
    decision = next_best_action(
        member_id,
        features={str(k): v for k, v in row.items()},
        scores={},
        contacts=contacts[contacts["member_id"] == member_id],
        now=pd.Timestamp.now(tz="UTC"),
        catalogue=load_catalogue(catalogue),
        uplift=uplift.load_model(settings, "champion"),
        settings=settings.decisions,
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
