"""The KPI report: a short text headline and one self-contained HTML page (plots as inline
PNG, tables as HTML) drawn from the frames of `pipelines.kpis.tables`. No file or clock is
read here; matplotlib draws without pyplot (no global state, no display)."""

from __future__ import annotations

import html
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.figures import inline_png
from pipelines.kpis.definitions import Definitions

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def overall(monthly: pd.DataFrame) -> pd.DataFrame:
    """The rows of all members, one per month, in month order."""
    rows = monthly[monthly["dimension"] == "all"]
    return rows.sort_values("month").set_index("month")


def reference_month(monthly: pd.DataFrame) -> pd.Series | None:
    """The all-members row of the last complete month (of the last month if none is
    complete); None without months."""
    rows = overall(monthly)
    if rows.empty:
        return None
    complete = rows[rows["complete"].astype(bool)]
    return (complete if len(complete) else rows).iloc[-1]


def headline(
    monthly: pd.DataFrame, as_of: date, currency: str, definitions: Definitions, days: int
) -> str:
    """A few readable lines: members now by status, then activation (`days`), repurchase,
    churn, win-back and spend of the last complete month."""
    rows = overall(monthly)
    if rows.empty:
        return f"KPIs as of {as_of}: no member registered before {as_of}"
    now, ref = rows.iloc[-1], reference_month(monthly)
    assert ref is not None
    r = definitions.repurchase_days
    span = f"{rows.index[0]} .. {rows.index[-1]}" + ("" if now["complete"] else " (last partial)")
    statuses = ", ".join(f"{now[s]:,} {s.replace('_', ' ')}" for s in ("active", "dormant"))
    return "\n".join(
        [
            f"KPIs as of {as_of} (data before {as_of} 00:00 UTC), months {span}",
            f"  members          {now['members']:,}: {statuses}, {now['churned']:,} churned, "
            f"{now['no_purchase']:,} without an order",
            f"  in {ref.name}: activation {days} d {_pct(ref.get(f'activation_rate_{days}d'))}, "
            f"repurchase {r} d {_pct(ref[f'repurchase_rate_{r}d'])}, "
            f"churn {_pct(ref['churn_rate'])}, win-back {_pct(ref['win_back_rate'])}",
            f"  spend {ref.name}    {currency} {ref['spend']:,.0f} net, {ref['orders']:,} orders, "
            f"average order {_money(ref['average_order_value'])}, "
            f"{_number(ref['orders_per_active_member'], '.2f')} orders per active member",
        ]
    )


def _pct(value: Any) -> str:
    return _number(value, ".1%")


def _money(value: Any) -> str:
    return _number(value, ",.2f")


def _number(value: Any, spec: str) -> str:
    """`value` formatted with `spec`, "n/a" when missing."""
    return "n/a" if value is None or pd.isna(value) else format(float(value), spec)


def _axes(title: str, ylabel: str, width: float = 9.0) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, 3.4))
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _month_ticks(axes: Axes, labels: pd.Index) -> None:
    step = max(1, len(labels) // 12)
    axes.set_xticks(range(0, len(labels), step), list(labels[::step]), rotation=45, ha="right")


def plot_statuses(rows: pd.DataFrame) -> Figure:
    """Members at each month's end by status, stacked."""
    figure, axes = _axes("Members at month end by status", "members")
    x = np.arange(len(rows))
    statuses = ["active", "dormant", "churned", "no_purchase"]
    axes.stackplot(x, *(rows[s].to_numpy(float) for s in statuses), labels=statuses, alpha=0.8)
    axes.legend(loc="upper left", fontsize=8)
    _month_ticks(axes, rows.index)
    figure.tight_layout()
    return figure


def plot_lines(rows: pd.DataFrame, columns: list[str], title: str, ylabel: str) -> Figure:
    """One line per column over the months (rates as percentages)."""
    figure, axes = _axes(title, ylabel)
    x = np.arange(len(rows))
    scale = 100.0 if ylabel == "%" else 1.0
    for column in columns:
        axes.plot(x, rows[column].to_numpy(float) * scale, marker=".", label=column)
    axes.legend(loc="best", fontsize=8)
    _month_ticks(axes, rows.index)
    figure.tight_layout()
    return figure


def plot_bars(rows: pd.DataFrame, up: str, down: str | None, title: str, ylabel: str) -> Figure:
    """`up` as bars over the months, and `down` as bars below zero when given."""
    figure, axes = _axes(title, ylabel)
    x = np.arange(len(rows))
    axes.bar(x, rows[up].to_numpy(float), label=up)
    if down is not None:
        axes.bar(x, -rows[down].to_numpy(float), label=down)
        axes.axhline(0, color="black", linewidth=0.8)
    axes.legend(loc="best", fontsize=8)
    _month_ticks(axes, rows.index)
    figure.tight_layout()
    return figure


def plot_retention(cohorts: pd.DataFrame) -> Figure:
    """Heatmap of retention (share of a cohort buying in a month) by months since registration."""
    grid = cohorts.pivot(index="cohort", columns="months_since_registration", values="retention")
    figure, axes = _axes("Retention by acquisition cohort", "registration month", width=10.0)
    figure.set_size_inches(10.0, 1.5 + 0.22 * len(grid))
    image = axes.imshow(grid.to_numpy(float) * 100, aspect="auto", cmap="viridis")
    axes.set_yticks(range(len(grid)), list(grid.index), fontsize=7)
    axes.set_xlabel("months since registration (0 = registration month)")
    axes.grid(False)
    figure.colorbar(image, ax=axes, label="% of the cohort with a purchase")
    figure.tight_layout()
    return figure


def plot_cumulative_spend(cohorts: pd.DataFrame, currency: str) -> Figure:
    """Cumulative net spend per member of each cohort by months since registration."""
    figure, axes = _axes("Cumulative spend per member by acquisition cohort", currency)
    names = sorted(cohorts["cohort"].unique())
    from matplotlib import colormaps

    colours = colormaps["viridis"](np.linspace(0, 1, max(len(names), 1)))
    for colour, name in zip(colours, names, strict=True):
        one = cohorts[cohorts["cohort"] == name]
        axes.plot(one["months_since_registration"], one["cumulative_spend_per_member"], c=colour)
    axes.set_xlabel("months since registration (colour: earliest cohort dark, latest light)")
    figure.tight_layout()
    return figure


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(border=0, na_rep="–", float_format=lambda v: f"{v:,.3f}", escape=True)


def by_group(monthly: pd.DataFrame, month: str, definitions: Definitions, days: int) -> str:
    """HTML tables of `month` per acquisition channel, tier and RFM segment."""
    r = definitions.repurchase_days
    columns = ["members", "new_registrations", "active", "dormant", "churned"]
    columns += [f"activation_rate_{days}d", f"repurchase_rate_{r}d", "churn_rate"]
    columns += ["win_back_rate", "tier_upgrades", "tier_downgrades", "orders", "spend"]
    columns += ["average_order_value", "orders_per_active_member"]
    rows = monthly[monthly["month"] == month]
    parts = []
    for dimension in ("acquisition_channel", "tier", "segment"):
        part = rows[rows["dimension"] == dimension].set_index("group")[columns]
        parts.append(f"<h3>By {dimension.replace('_', ' ')}</h3>{_table(part)}")
    return "\n".join(parts)


_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1100px; }
table { border-collapse: collapse; font-size: 12px; margin-bottom: 1em; }
td, th { padding: 2px 6px; text-align: right; border-bottom: 1px solid #ddd; }
pre { background: #f4f4f4; padding: 1em; }
img { max-width: 100%; }
"""


def html_report(
    monthly: pd.DataFrame,
    cohorts: pd.DataFrame,
    as_of: date,
    currency: str,
    definitions: Definitions,
    days: int,
) -> str:
    """The whole report as one HTML document (no external files)."""
    rows = overall(monthly)
    text = headline(monthly, as_of, currency, definitions, days)
    body = [f"<h1>Member KPIs as of {as_of}</h1>", f"<pre>{html.escape(text)}</pre>"]
    body.append(
        "<p>Definitions, formulas and windows: docs/kpis.md. Tier and segment are the member's "
        "at the start of the month; money in " + html.escape(currency) + ".</p>"
    )
    if not rows.empty:
        body += _plots(rows, cohorts, currency, definitions, days)
        ref = reference_month(monthly)
        assert ref is not None
        body.append(f"<h2>{ref.name} by group</h2>")
        body.append(by_group(monthly, str(ref.name), definitions, days))
        body.append("<h2>All members by month</h2>")
        body.append(_table(rows.drop(columns=["dimension", "group", "period_start"])))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>Member KPIs {as_of}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _plots(
    rows: pd.DataFrame,
    cohorts: pd.DataFrame,
    currency: str,
    definitions: Definitions,
    days: int,
) -> list[str]:
    activation = [f"activation_rate_{d}d" for d in definitions.activation_days]
    rates = [f"repurchase_rate_{definitions.repurchase_days}d", "churn_rate", "win_back_rate"]
    figures = [
        plot_statuses(rows),
        plot_bars(rows, "new_registrations", None, "New registrations", "members"),
        plot_lines(rows, activation, "Activation: first order within N days", "%"),
        plot_lines(rows, rates, "Repurchase, churn and win-back rates", "%"),
        plot_bars(rows, "tier_upgrades", "tier_downgrades", "Tier changes", "members"),
        plot_bars(rows, "spend", None, "Net spend", currency),
        plot_lines(rows, ["average_order_value"], "Average order value", currency),
        plot_lines(rows, ["orders_per_active_member"], "Orders per active member", "orders"),
    ]
    if len(cohorts):
        figures += [plot_retention(cohorts), plot_cumulative_spend(cohorts, currency)]
    return [f"<div>{inline_png(figure)}</div>" for figure in figures]
