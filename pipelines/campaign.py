"""Campaign jobs around `decisions.campaigns`: lists for the CRM from a batch run, and the
measurement of a campaign from the contact and order logs.

`build` writes, under `<batch run>/campaign/`, one CSV per action (member_id, action, channel,
expected_value, reason, group, then the member's spend_mean and clv_mean: expected spend and
CLV over the clv model's horizon) and `campaign.json` (budget, spend, list sizes), then refreshes
the run's HTML report. Members who changed consent since the run are checked again against the
consent register (`decisions.guardrails.recheck_consent`): an opt-out made after the batch run
still keeps them off the lists, or off a channel they refused. `measure` reads the contacts (the
lake's, or a CRM export) and orders and returns the lift per action against its control group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from decisions.campaigns import CONTROL, TREATMENT, hold_out, list_summary, select_members
from memberscore.errors import DataNotFound
from memberscore.settings import Settings

FOLDER = "campaign"
SUMMARY = "campaign.json"
LIST_COLUMNS = [
    "member_id",
    "action",
    "channel",
    "expected_value",
    "reason",
    "group",
    "spend_mean",
    "clv_mean",
]
MEMBER_VALUES = ["spend_mean", "clv_mean"]  # empty in runs of older releases, which lack them
READ = [
    "member_id",
    "scored",
    "control_group",
    "action_id",
    "channel",
    "expected_value",
    "unit_cost",
    "stage",
    "stage_rule",
]


@dataclass(frozen=True)
class CampaignSummary:
    """The lists written: per action sizes, cost and expected value (currency)."""

    folder: Path
    lists: pd.DataFrame
    budget: float | None
    spent: float
    currency: str

    def describe(self) -> str:
        """A few lines for the CLI and the demo."""
        budget = "no budget" if self.budget is None else f"budget {self.budget:,.2f}"
        lines = [
            f"campaign lists in {self.folder} ({budget}, spent {self.spent:,.2f} "
            f"{self.currency} on treatment contacts):"
        ]
        for action, row in self.lists.iterrows():
            treatment, control = int(row["treatment"]), int(row["control"])
            lines.append(
                f"  {action}: {treatment:,} to contact, {control:,} held out, "
                f"cost {row['cost']:,.2f}, expected value {row['expected_value']:+,.2f}"
            )
        return "\n".join(lines)


def reason_text(rows: pd.DataFrame) -> pd.Series:
    """The list's reason column: stage and rule id, then the reason codes when computed."""
    text = rows["stage"].astype(str) + " (" + rows["stage_rule"].astype(str) + ")"
    codes = [c for c in ("reason_1", "reason_2", "reason_3") if c in rows.columns]
    drivers = pd.Series("", index=rows.index, dtype="string")
    for column in codes:  # vectorised: lists can hold millions of members
        code = rows[column].astype("string")
        joined = drivers.where(drivers == "", drivers + ", ") + code.fillna("")
        drivers = drivers.where(code.isna(), joined)
    return text + np.where(drivers != "", "; drivers: " + drivers.fillna(""), "")


def build(
    settings: Settings,
    batch_out: Path,
    *,
    budget: float | None = None,
    max_per_action: int | None = None,
    control_share: float = 0.1,
) -> CampaignSummary:
    """Lists from the complete batch run in `batch_out`: members given a sendable action
    (outside the persistent control group), capped per action, within `budget` by expected
    value per unit cost, with `control_share` of each list held out as its control group."""
    from pipelines.batch.manifest import read_scores
    from pipelines.batch.report import write as write_report

    scores = read_scores(batch_out, READ + _reason_columns(batch_out), optional=MEMBER_VALUES)
    for name in MEMBER_VALUES:
        if name not in scores.columns:
            scores[name] = np.nan
    sendable = scores["scored"] & ~scores["control_group"] & (scores["action_id"] != "no_action")
    candidates = scores.loc[sendable.to_numpy()].reset_index(drop=True)
    candidates = _under_current_consent(settings, batch_out, candidates)
    selected = select_members(candidates, budget, max_per_action)
    salt = f"{settings.decisions.guardrails.control_salt}:campaign"
    selected["group"] = hold_out(selected, control_share, salt)
    selected["reason"] = reason_text(selected)
    folder = batch_out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    lists = selected.rename(columns={"action_id": "action"})
    for action, rows in lists.groupby("action", sort=True):
        rows[LIST_COLUMNS].to_csv(folder / f"{action}.csv", index=False)
    table = list_summary(selected)
    spent = float(table["cost"].sum())
    _write_summary(folder, table, budget, spent, control_share, settings.currency)
    write_report(settings, batch_out)
    return CampaignSummary(folder, table, budget, spent, settings.currency)


def _under_current_consent(
    settings: Settings, batch_out: Path, candidates: pd.DataFrame
) -> pd.DataFrame:
    """`candidates` under the consent register's entries as they are now, with the batch
    run's catalogue (the shipped one for runs that did not record it)."""
    from decisions.catalogue import Catalogue, load_catalogue
    from decisions.guardrails import recheck_consent
    from pipelines.batch import manifest as mf
    from serving.online.consent import open_consent_register

    manifest = mf.read(batch_out)
    recorded = manifest.inputs.get("catalogue") if manifest else None
    catalogue = Catalogue.model_validate(recorded) if recorded else load_catalogue()
    register = open_consent_register(settings)
    try:
        entries = register.entries(candidates["member_id"].astype(str).tolist())
    finally:
        register.close()
    return recheck_consent(candidates, entries, catalogue).reset_index(drop=True)


def _reason_columns(batch_out: Path) -> list[str]:
    from pipelines.batch import manifest as mf

    manifest = mf.read(batch_out)
    count = int(manifest.inputs.get("reasons", {}).get("count", 0)) if manifest else 0
    return [f"reason_{i + 1}" for i in range(min(count, 3))]


def _write_summary(
    folder: Path,
    table: pd.DataFrame,
    budget: float | None,
    spent: float,
    control_share: float,
    currency: str,
) -> None:
    lists = table.reset_index().astype({"members": int, "treatment": int, "control": int})
    summary = {
        "budget": budget,
        "spent": spent,
        "currency": currency,
        "control_share": control_share,
        "lists": lists.to_dict("records"),
        "files": {a: f"{a}.csv" for a in table.index},
    }
    (folder / SUMMARY).write_text(json.dumps(summary, indent=2, default=float) + "\n")


def measure(
    settings: Settings,
    *,
    since: date,
    until: date,
    contacts: Path | None = None,
    window_days: int = 30,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Lift per action and metric for contacts sent in [since, until) (UTC days): response
    rate, response value and net revenue in the `window_days` after each contact, treatment
    minus control, with `confidence` intervals. Contacts come from the lake unless a CSV or
    Parquet export is given; orders always from the lake."""
    from decisions.campaigns import measure_lift, outcomes
    from memberscore import lake
    from memberscore.contract import CONTACTS, ORDERS

    log = _read(contacts) if contacts else lake.read(settings.lake_dir, CONTACTS)
    sent = pd.to_datetime(log["sent_at"], utc=True)
    start, end = pd.Timestamp(since, tz="UTC"), pd.Timestamp(until, tz="UTC")
    log = log.loc[((sent >= start) & (sent < end)).to_numpy()]
    log = log[log["group"].isin([TREATMENT, CONTROL])]
    if log.empty:
        raise DataNotFound(f"no treatment or control contacts sent in [{since}, {until})")
    orders = lake.read(
        settings.lake_dir, ORDERS, ["member_id", "ordered_at", "amount", "is_return"]
    )
    return measure_lift(outcomes(log.reset_index(drop=True), orders, window_days), confidence)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataNotFound(f"no contact log at {path}")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
