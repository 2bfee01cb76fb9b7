"""The `memberscore kpis` job: KPI tables from the lake as of a day, written as Parquet and CSV
with the HTML report under `<data>/kpis/<as-of>/` (or a folder given).

Thin orchestration over `pipelines.kpis.tables` (pure) and `pipelines.kpis.report`. As of a day
means: rows strictly before 00:00 UTC of that day, as `features build --as-of` reads them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from memberscore import lake
from memberscore.settings import Settings
from pipelines.kpis import report
from pipelines.kpis.definitions import Definitions, Month
from pipelines.kpis.inputs import read_inputs
from pipelines.kpis.tables import cohort_kpis, monthly_kpis

log = logging.getLogger(__name__)
MONTHLY, COHORTS, HTML = "kpis_monthly", "cohorts", "report.html"


def definitions_from(settings: Settings) -> Definitions:
    """The KPI windows and thresholds of `settings` (docs/kpis.md)."""
    stages = settings.decisions.stages
    return Definitions(
        activation_days=tuple(settings.activation_horizons_days),
        repurchase_days=settings.repurchase_days,
        dormant_days=stages.dormant_days,
        churned_days=stages.churned_days,
        tier_thresholds=tuple(settings.tier_thresholds),
    )


@dataclass(frozen=True)
class KpiReport:
    """What one `kpis` run computed and where it wrote it."""

    as_of: date
    monthly: pd.DataFrame
    cohorts: pd.DataFrame
    out_dir: Path
    currency: str
    definitions: Definitions
    activation_days: int  # the activation window of the headline (days)
    seconds: float

    @property
    def report_path(self) -> Path:
        """The HTML report."""
        return self.out_dir / HTML

    def headline(self) -> str:
        """A few lines: members by status, last complete month's rates and spend, the files."""
        text = report.headline(
            self.monthly, self.as_of, self.currency, self.definitions, self.activation_days
        )
        return (
            f"{text}\nreport: {self.report_path} ({self.seconds:.1f} s; tables "
            f"{MONTHLY}.parquet/.csv and {COHORTS}.parquet/.csv beside it)"
        )


def run(settings: Settings, as_of: date, out: Path | None = None) -> KpiReport:
    """Compute the KPIs of the lake in `settings` as of `as_of` and write them under `out`
    (default `<data>/kpis/<as-of>/`)."""
    from features.build import open_lake

    began = time.perf_counter()
    definitions = definitions_from(settings)
    cutoff = pd.Timestamp(as_of, tz="UTC")
    out = out or settings.data_dir / "kpis" / as_of.isoformat()
    log.info("kpis: as of %s from %s", as_of, settings.lake_dir)
    with open_lake(settings) as con:
        inputs = read_inputs(con, cutoff)
    log.info("kpis: %s members, %s order rows", f"{inputs.size:,}", f"{len(inputs.o_time):,}")
    with _progress() as bar:

        def advance(month: Month) -> None:
            bar.set_description(f"kpis: {month.label}")
            bar.update()

        monthly = monthly_kpis(inputs, definitions, advance)
        bar.set_description("kpis: cohorts")
        cohorts = cohort_kpis(inputs)
    currency = lake.dataset_currency(settings.lake_dir) or settings.currency
    days = settings.activation_horizon_days
    if days not in definitions.activation_days:
        days = definitions.activation_days[0]
    result = KpiReport(
        as_of, monthly, cohorts, out, currency, definitions, days, time.perf_counter() - began
    )
    _write(result)
    return result


def _progress() -> tqdm:
    """A bar counting months (shown on a terminal only)."""
    return tqdm(desc="kpis", unit="month", disable=None)


def _write(result: KpiReport) -> None:
    """Tables as Parquet and CSV, and the HTML report, each through a temporary name."""
    result.out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in ((MONTHLY, result.monthly), (COHORTS, result.cohorts)):
        _replace(result.out_dir / f"{name}.parquet", lambda p, f=frame: f.to_parquet(p))
        _replace(result.out_dir / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
    page = report.html_report(
        result.monthly,
        result.cohorts,
        result.as_of,
        result.currency,
        result.definitions,
        result.activation_days,
    )
    _replace(result.report_path, lambda p: p.write_text(page, encoding="utf-8"))
    log.info("kpis: written to %s", result.out_dir)


def _replace(path: Path, write: object) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)  # type: ignore[operator]
    partial.replace(path)
