"""The monitor's HTML report: one self-contained file (plots inline as base64 PNG) under
`<data>/monitor/<date>/report.html`. Per champion: the findings and the retraining command, the
score's distribution in the reference and now, the features' PSI (largest first) and missing
shares, and the matured figures beside the promoted backtest. Figures use matplotlib's object
API (no pyplot state)."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from memberscore.settings import Settings
from pipelines.figures import inline_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pipelines.monitor.results import ModelCheck, MonitorReport

REPORT = "report.html"
TOP_FEATURES = 20
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}"
    ".bad{color:#b00;font-weight:bold}.ok{color:#070}"
)


def folder(settings: Settings, now: datetime) -> Path:
    """Where a run at `now` writes: `<data>/monitor/<YYYY-MM-DD, UTC>`."""
    return settings.data_dir / "monitor" / f"{now:%Y-%m-%d}"


def write(settings: Settings, report: MonitorReport, now: datetime) -> Path:
    """Write the report of a run at `now`; returns its path."""
    path = folder(settings, now) / REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report, now), encoding="utf-8")
    return path


def render(report: MonitorReport, now: datetime) -> str:
    """The whole HTML document."""
    state = (
        '<p class="bad">Drift or decay found: retraining recommended.</p>'
        if report.drifted
        else '<p class="ok">Every champion is stable.</p>'
    )
    body = [
        f"<h1>memberscore monitor, snapshot {report.as_of:%Y-%m-%d}</h1>",
        f"<p>Run {now:%Y-%m-%d %H:%M} UTC; outcomes observed until "
        f"{report.observed_until:%Y-%m-%d} (exclusive).</p>",
        state,
        *(section(check) for check in report.checks.values()),
    ]
    if report.not_monitored:
        items = "".join(
            f"<li>{html.escape(n)}: {html.escape(w)}</li>" for n, w in report.not_monitored.items()
        )
        body.append(f"<h2>Not monitored</h2><ul>{items}</ul>")
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>memberscore monitor '
        f"{report.as_of:%Y-%m-%d}</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def section(check: ModelCheck) -> str:
    """One champion's part of the report."""
    days = ", ".join(f"{c:%Y-%m-%d}" for c in check.reference_cutoffs)
    parts = [
        f"<h2>{html.escape(check.name)} version {html.escape(check.version)}</h2>",
        f"<p>Horizon {check.horizon_days} days. Reference: {check.reference_rows:,} members of "
        f"the training snapshots {days}; now: {check.current_rows:,} members.</p>",
    ]
    if check.findings:
        items = "".join(f"<li>{html.escape(f.text)}</li>" for f in check.findings)
        parts.append(
            f'<ul class="bad">{items}</ul><p>Retrain: <code>{html.escape(check.retrain)}</code></p>'
        )
    else:
        parts.append('<p class="ok">No figure past its threshold.</p>')
    parts.append(f"<p>{inline_png(score_figure(check))}</p>")
    parts.append(f"<p>{inline_png(psi_figure(check.features))}</p>")
    parts.append(_table(pd.concat([check.scores, check.features.head(TOP_FEATURES)])))
    parts.append(matured_table(check))
    return "\n".join(parts)


def matured_table(check: ModelCheck) -> str:
    """The matured figures beside the promoted ones, or why there are none."""
    m = check.matured
    if m is None:
        return "<p>No prediction has matured yet (cutoff + horizon is after the data).</p>"
    where = "after the training window" if m.out_of_time else "inside the training window"
    rows = pd.DataFrame(
        {
            "figure": list(m.figures),
            "matured": list(m.figures.values()),
            "promoted backtest": [m.promoted.get(k, np.nan) for k in m.figures],
        }
    )
    return f"<h3>Matured at {m.cutoff:%Y-%m-%d} ({html.escape(m.source)}, {where})</h3>" + _table(
        rows
    )


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="")


def score_figure(check: ModelCheck) -> Figure:
    """Shares of the score per reference bin: training snapshots against now."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3))
    axes = figure.subplots()
    ref = check.score_reference
    x = np.arange(ref.bins)
    axes.bar(x - 0.2, ref.shares, 0.4, label="training snapshots")
    axes.bar(x + 0.2, check.score_current, 0.4, label="now")
    edges = [f"{e:.3g}" for e in (ref.edges or ())]
    labels = [f"<{edges[0]}" if edges else "all", *(f"≥{e}" for e in edges)]
    axes.set_xticks(x, labels[: ref.bins], fontsize=7, rotation=30)
    axes.set_ylabel("share of members")
    axes.set_title(f"{check.score}: PSI {check.scores['psi'].iloc[0]:.3f}")
    axes.legend()
    figure.tight_layout()
    return figure


def psi_figure(features: pd.DataFrame) -> Figure:
    """PSI of the features with the largest shifts."""
    from matplotlib.figure import Figure

    top = features.head(TOP_FEATURES).iloc[::-1]
    figure = Figure(figsize=(7, 0.25 * len(top) + 1))
    axes = figure.subplots()
    axes.barh(top["variable"].astype(str), top["psi"].fillna(0.0))
    axes.set_xlabel("PSI against the training snapshots")
    axes.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    return figure
