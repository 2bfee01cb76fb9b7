"""CLI commands of the score API: `serve`, `publish-scores` and `api-key new`."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

api_key_app = typer.Typer(
    help="Create API keys for the score API.", no_args_is_help=True, rich_markup_mode="markdown"
)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the score API (FastAPI on uvicorn); OpenAPI docs at http://HOST:PORT/docs.

    Models are loaded from the MLflow registry by alias `champion` at start and polled every
    `serving.model_poll_seconds`. Each worker loads its own copy.

    Example: memberscore serve --host 0.0.0.0 --port 8000 --workers 2
    """
    import uvicorn

    from serving.api.logs import log_config

    uvicorn.run(
        "serving.api.app:app_from_settings",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config(log_level.upper()),
        access_log=False,
    )


def publish_scores(
    chunk: Annotated[
        int, typer.Option(min=1, help="Members per part (scored, written and resumed together).")
    ] = 50_000,
    force: Annotated[
        bool, typer.Option(help="Publish every part again, even those of a finished run.")
    ] = False,
) -> None:
    """Write the latest snapshot of every member to the online store together with its score
    card computed with the current champions (reason codes included), so the score API answers
    from the card instead of scoring live. One pass: features and cards land together.

    Run it after `features build` (it materializes the features itself) and after promoting
    champions; until it has finished the API scores members whose card is not current live.
    A stopped run resumes where it stopped when run again.

    Example: memberscore publish-scores
    """
    from features.reader import check_snapshots
    from memberscore.settings import get_settings
    from pipelines import publish
    from pipelines.erase import finish_pending_quietly

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)  # erasures the API recorded, first
    check_snapshots(settings, chunk_rows=settings.chunk_rows)  # the API predicts on these rows
    report = publish.run(settings, chunk_members=chunk, progress=typer.echo, force=force)
    typer.echo(report.describe())


@api_key_app.command("new")
def new_api_key(
    scope: Annotated[
        str, typer.Option(help="read: scores, actions, models. write: also contacts and reload.")
    ] = "read",
) -> None:
    """Print a new API key and the sha256 hash to put in settings (only the hash is stored).

    Example: memberscore api-key new --scope write
    """
    from serving.api.security import hash_key, new_key

    if scope not in ("read", "write"):
        raise typer.BadParameter("scope must be 'read' or 'write'", param_hint="--scope")
    chosen: Literal["read", "write"] = "write" if scope == "write" else "read"
    key = new_key()
    typer.echo(f"key:   {key}")
    typer.echo(f"hash:  {hash_key(key)}")
    typer.echo("Give the key to the client; add the hash to memberscore.toml:")
    typer.echo(f'[serving]\napi_keys = [["{hash_key(key)}", "{chosen}"]]')


def register(app: typer.Typer) -> None:
    """Add the score-API commands to the top-level CLI."""
    app.command()(serve)
    app.command("publish-scores")(publish_scores)
    app.add_typer(api_key_app, name="api-key")
