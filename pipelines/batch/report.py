"""The HTML report of a batch run: one self-contained file, plots embedded as base64 PNG.

Sections: the models and their recorded quality (the optional ones not served named in the
header), expected orders, spend and CLV per stage with totals, stage distribution and migration
(from the previous snapshot cutoff), score histograms, CLV deciles (of the expected CLV; of CLV
p50 for a spend model without expected values), expected value and cost per action, and
campaign list sizes once `memberscore campaign build` has run. Tables are computed by the pure
functions below; figures are drawn with matplotlib's object API (no pyplot state); `write`
does the reading and writing.
"""

from __future__ import annotations

import html
import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from memberscore.settings import Settings
from pipelines.batch import manifest as mf
from pipelines.figures import inline_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT = "report.html"
CAMPAIGN_SUMMARY = "campaign.json"
COLUMNS = [
    "member_id",
    "stage",
    "churn",
    "clv_p50",
    "action_id",
    "expected_value",
    "unit_cost",
    "control_group",
]
# Runs of older releases lack the means and p_alive, and activation when they were scored
# without an activation model (the column is kept, null, since).
OPTIONAL = ["activation", "orders_mean", "spend_mean", "clv_mean", "p_alive"]
EXPECTED = {"orders_mean": "expected orders", "spend_mean": "expected spend",
            "clv_mean": "expected CLV"}  # fmt: skip
QUALITY = ["version", "grade", "notes", "horizon_days", "label_horizon_days"]


def clv_column(scores: pd.DataFrame) -> str:
    """The CLV to rank and sum: `clv_mean` (expected CLV) when the run has it, else `clv_p50`."""
    has_mean = "clv_mean" in scores.columns and scores["clv_mean"].notna().any()
    return "clv_mean" if has_mean else "clv_p50"


def expected_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per lifecycle stage and in total: members, members with expected values, the sums of
    expected orders, spend and CLV (currency, over the clv model's horizon) and the mean
    P(alive). Sums are of the means: the expected total of the stage."""
    from decisions.stages import STAGES

    frame = scores.assign(stage=scores["stage"].astype("string"))
    for name in (*EXPECTED, "p_alive"):
        if name not in frame.columns:
            frame[name] = np.nan
    grouped = frame.groupby("stage")
    table = pd.DataFrame({"members": grouped.size()}).reindex(list(STAGES), fill_value=0)
    table["with_expected"] = grouped["spend_mean"].count().reindex(table.index, fill_value=0)
    for name in EXPECTED:
        table[name] = grouped[name].sum(min_count=1).reindex(table.index)
    table["mean_p_alive"] = grouped["p_alive"].mean().reindex(table.index)
    total = {
        "members": len(frame),
        "with_expected": int(frame["spend_mean"].count()),
        **{name: frame[name].sum(min_count=1) for name in EXPECTED},
        "mean_p_alive": frame["p_alive"].mean(),
    }
    table.loc["total"] = pd.Series(total)
    table.index.name = "stage"
    return table.astype({"members": "int64", "with_expected": "int64"})


def quality_table(models: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per model scored with: version and the quality recorded at training (grade,
    notes, forecast and labelled horizons in days; empty where untagged)."""
    rows = {
        name: ["-" if quality.get(c) is None else str(quality[c]) for c in QUALITY]
        for name, quality in models.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=QUALITY, dtype=object)
    table.index.name = "model"
    return table


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
    """Histograms of churn probability, activation probability and CLV (`clv_column`); a
    score without values (activation while no model is served) gets an empty panel saying so."""
    figure = _figure(10.0, 3.0)
    clv = clv_column(scores)
    panels = (
        ("churn", "churn probability"),
        ("activation", "activation probability"),
        (clv, f"{'expected CLV' if clv == 'clv_mean' else 'CLV p50'} ({currency})"),
    )
    for k, (column, label) in enumerate(panels):
        axes = figure.add_subplot(1, 3, k + 1)
        values = scores[column].dropna().to_numpy() if column in scores else np.array([])
        axes.hist(values, bins=40, color="#55A868")
        if not len(values):
            axes.text(0.5, 0.5, "no scores", ha="center", va="center", transform=axes.transAxes)
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


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:,.2f}", border=0, classes="t", na_rep="-")


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
    manifest = mf.read(out)
    assert manifest is not None  # read_scores below fails first when there is none
    scores = mf.read_scores(out, COLUMNS, OPTIONAL)
    as_of = date.fromisoformat(manifest.as_of)
    currency = settings.currency
    stages = stage_counts(scores["stage"])
    clv = clv_column(scores)
    deciles, actions = clv_deciles(scores[clv]), action_table(scores)
    expected = expected_table(scores)
    horizon = manifest.models.get("clv", {}).get("horizon_days")
    window = f"the next {horizon} days" if horizon else "the clv model's horizon"
    sections = [
        ("Models", _table(quality_table(manifest.models))),
        (
            "Expected orders, spend and CLV",
            f"<p>Sums of the expected values over {window} ({currency}).</p>" + _table(expected),
        ),
        ("Lifecycle stages", inline_png(plot_stages(stages)) + _table(stages)),
        ("Stage migration", _migration(settings, as_of, scores)),
        ("Score distributions", inline_png(plot_histograms(scores, currency))),
        (
            "CLV deciles" + (" (CLV p50: no expected CLV)" if clv == "clv_p50" else ""),
            inline_png(plot_deciles(deciles, currency)) + _table(deciles),
        ),
        (
            "Expected value and cost per action",
            inline_png(plot_actions(actions, currency)) + _table(actions),
        ),
        ("Campaign lists", _lists(out)),
    ]
    facts = {
        "cutoff (features as of, 00:00 UTC)": manifest.as_of,
        "members": f"{manifest.counts.get('members', len(scores)):,}",
        "unscorable": f"{manifest.counts.get('unscorable', 0):,}",
        "models": _versions(manifest),
        **_not_served(manifest),
        f"expected spend over {window}": _money(expected.loc["total", "spend_mean"], currency),
        f"expected CLV over {window}": _money(expected.loc["total", "clv_mean"], currency),
        "currency": currency,
    }
    path = out / REPORT
    path.write_text(render(sections, f"Batch scoring {manifest.as_of}", facts))
    return path


def _versions(manifest: mf.Manifest) -> str:
    """'churn v3 (grade A), clv v2 (grade B, labels 180 of 365 days), ...'."""
    parts = []
    for name, version in manifest.inputs["models"].items():
        quality = manifest.models.get(name, {})
        notes = [f"grade {quality['grade']}"] if quality.get("grade") else []
        label, horizon = quality.get("label_horizon_days"), quality.get("horizon_days")
        if label is not None:
            notes.append(f"labels {label} of {horizon or '?'} days")
        parts.append(f"{name} v{version}" + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(parts)


def _not_served(manifest: mf.Manifest) -> dict[str, str]:
    """The header fact naming the optional models the run scored without, if any."""
    if not manifest.not_served:
        return {}
    text = "; ".join(f"{name} ({why})" for name, why in manifest.not_served.items())
    return {"not served (scores null)": text}


def _money(value: Any, currency: str) -> str:
    """An amount for the header, 'n/a' when missing."""
    return "n/a" if pd.isna(value) else f"{float(value):,.2f} {currency}"


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
    return note + inline_png(plot_migration(matrix, f"Stage migration {cutoff} to {as_of}"))


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
