"""The HTML report of a batch run: one self-contained file, plots embedded as base64 PNG.

Sections: stage distribution and migration (from the previous snapshot cutoff), score
histograms, CLV deciles, expected value and cost per action, and campaign list sizes once
`memberscore campaign build` has run. Tables are computed by the pure functions below; figures
are drawn with matplotlib's object API (no pyplot state); `write` does the reading and writing.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from memberscore.settings import Settings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT = "report.html"
CAMPAIGN_SUMMARY = "campaign.json"
COLUMNS = [
    "member_id",
    "stage",
    "churn",
    "activation",
    "clv_p50",
    "action_id",
    "expected_value",
    "unit_cost",
    "control_group",
]


def stage_counts(stages: pd.Series) -> pd.DataFrame:
    """Members and share per lifecycle stage, in lifecycle order."""
    from decisions.stages import STAGES

    counts = stages.astype("string").value_counts().reindex(list(STAGES), fill_value=0)
    table = pd.DataFrame({"members": counts.astype("int64")})
    table["share"] = table["members"] / max(int(table["members"].sum()), 1)
    table.index.name = "stage"
    return table


def clv_deciles(clv: pd.Series) -> pd.DataFrame:
    """Members with a CLV in ten equal-count groups (10 = highest): members, mean and total
    CLV (currency) and the share of all CLV each decile holds."""
    values = clv.dropna()
    if values.empty:
        return pd.DataFrame(columns=["members", "mean_clv", "total_clv", "share"])
    ranks = values.rank(method="first")
    decile = np.ceil(ranks / len(values) * 10).clip(1, 10).astype(int)
    # Named aggregation of a SeriesGroupBy gives a DataFrame; pandas-stubs say Series.
    table = cast(
        pd.DataFrame,
        values.groupby(decile).agg(members="size", mean_clv="mean", total_clv="sum"),
    )
    table["share"] = table["total_clv"] / table["total_clv"].sum()
    table.index.name = "decile"
    return table


def action_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per chosen action: members, total and mean expected value and total cost (currency),
    for members outside the control group."""
    sent = scores.loc[~scores["control_group"].astype(bool)].copy()
    sent["cost"] = sent["unit_cost"]
    table = sent.groupby("action_id", observed=True).agg(
        members=("member_id", "size"),
        expected_value=("expected_value", "sum"),
        mean_ev=("expected_value", "mean"),
        cost=("cost", "sum"),
    )
    return table.sort_values("members", ascending=False)


def _figure(width: float = 7.0, height: float = 3.2) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def plot_stages(table: pd.DataFrame) -> Figure:
    """Bar chart of members per stage."""
    figure = _figure()
    axes = figure.add_subplot()
    axes.bar(table.index.astype(str), table["members"], color="#4C72B0")
    axes.set_ylabel("members")
    axes.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    return figure


def plot_histograms(scores: pd.DataFrame, currency: str) -> Figure:
    """Histograms of churn probability, activation probability and CLV p50."""
    figure = _figure(10.0, 3.0)
    panels = (
        ("churn", "churn probability"),
        ("activation", "activation probability"),
        ("clv_p50", f"CLV p50 ({currency})"),
    )
    for k, (column, label) in enumerate(panels):
        axes = figure.add_subplot(1, 3, k + 1)
        values = scores[column].dropna().to_numpy() if column in scores else np.array([])
        axes.hist(values, bins=40, color="#55A868")
        axes.set_xlabel(label)
        axes.set_ylabel("members" if k == 0 else "")
    figure.tight_layout()
    return figure


def plot_deciles(table: pd.DataFrame, currency: str) -> Figure:
    """Mean CLV per decile."""
    figure = _figure()
    axes = figure.add_subplot()
    axes.bar(table.index.astype(str), table["mean_clv"], color="#C44E52")
    axes.set_xlabel("CLV decile (10 = highest)")
    axes.set_ylabel(f"mean CLV ({currency})")
    figure.tight_layout()
    return figure


def plot_actions(table: pd.DataFrame, currency: str) -> Figure:
    """Total expected value and total cost per action (no_action left out)."""
    shown = table.drop(index="no_action", errors="ignore")
    figure = _figure()
    axes = figure.add_subplot()
    x = np.arange(len(shown))
    axes.bar(x - 0.2, shown["expected_value"], width=0.4, label="expected value")
    axes.bar(x + 0.2, shown["cost"], width=0.4, label="cost")
    axes.set_xticks(x, list(shown.index), rotation=30, ha="right")
    axes.set_ylabel(currency)
    axes.legend()
    figure.tight_layout()
    return figure


def png(figure: Figure) -> str:
    """A figure as an <img> tag holding the PNG inline (base64)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:,.2f}", border=0, classes="t")


def render(sections: list[tuple[str, str]], title: str, facts: dict[str, Any]) -> str:
    """The whole HTML page from (heading, HTML body) sections and header facts."""
    items = "".join(
        f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in facts.items()
    )
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        ".t{border-collapse:collapse}.t td,.t th{padding:2px 8px;text-align:right}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><ul>{items}</ul>"
        f"{body}</body></html>\n"
    )


def write(settings: Settings, out: Path) -> Path:
    """Write `report.html` into the batch run folder `out` and return its path."""
    from pipelines.batch import manifest as mf
    from pipelines.batch.manifest import read_scores

    manifest = mf.read(out)
    assert manifest is not None  # read_scores below fails first when there is none
    scores = read_scores(out, COLUMNS)
    as_of = date.fromisoformat(manifest.as_of)
    currency = settings.currency
    stages = stage_counts(scores["stage"])
    deciles, actions = clv_deciles(scores["clv_p50"]), action_table(scores)
    sections = [
        ("Lifecycle stages", png(plot_stages(stages)) + _table(stages)),
        ("Stage migration", _migration(settings, as_of, scores)),
        ("Score distributions", png(plot_histograms(scores, currency))),
        ("CLV deciles", png(plot_deciles(deciles, currency)) + _table(deciles)),
        (
            "Expected value and cost per action",
            png(plot_actions(actions, currency)) + _table(actions),
        ),
        ("Campaign lists", _lists(out)),
    ]
    facts = {
        "cutoff (features as of, 00:00 UTC)": manifest.as_of,
        "members": f"{manifest.counts.get('members', len(scores)):,}",
        "unscorable": f"{manifest.counts.get('unscorable', 0):,}",
        "models": ", ".join(f"{k} v{v}" for k, v in manifest.inputs["models"].items()),
        "currency": currency,
    }
    path = out / REPORT
    path.write_text(render(sections, f"Batch scoring {manifest.as_of}", facts))
    return path


def _migration(settings: Settings, as_of: date, scores: pd.DataFrame) -> str:
    """Migration from the stages at the previous snapshot cutoff (rules without scores there:
    declining rests on days overdue) to this run's stages."""
    from decisions.stages import StageColumns, assign_stages, migration_matrix, plot_migration
    from features.reader import read_snapshot, snapshot_day
    from features.store import snapshot_files

    earlier = [p for p in snapshot_files(settings) if p.stem.split("-", 1)[1] < f"{as_of}"]
    if not earlier:
        return "<p>No earlier snapshot: nothing to compare with.</p>"
    previous = earlier[-1]
    wanted = ["member_id", *(v for k, v in vars(StageColumns()).items() if k != "churn")]
    frame = read_snapshot(settings, snapshot_day(previous), wanted).set_index("member_id")
    before = assign_stages(frame, sentences=False)["stage"]
    after = scores.set_index("member_id")["stage"]
    matrix = migration_matrix(before, after)
    cutoff = previous.stem.split("-", 1)[1]
    matrix.index.name, matrix.columns.name = cutoff, f"{as_of}"
    note = f"<p>From {cutoff} (stages without scores) to {as_of}.</p>"
    return note + png(plot_migration(matrix, f"Stage migration {cutoff} to {as_of}"))


def _lists(out: Path) -> str:
    """List sizes of the campaign built from this run, if any."""
    path = out / "campaign" / CAMPAIGN_SUMMARY
    if not path.is_file():
        return "<p>No campaign built yet: run <code>memberscore campaign build</code>.</p>"
    summary = json.loads(path.read_text())
    table = pd.DataFrame(summary["lists"]).set_index("action_id")
    budget = summary.get("budget")
    head = f"<p>Budget {budget if budget is not None else 'unlimited'}, spent "
    head += f"{summary['spent']:,.2f} {summary['currency']}.</p>"
    return head + _table(table)
