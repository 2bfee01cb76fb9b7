"""The `memberscore simulate` job: simulate a member programme, write its four canonical tables
to `raw_dir` and the ground truth to `truth_dir`.

Thin orchestration over `simulator` (pure, seeded). Events are generated and written
in member blocks so memory stays proportional to one block. Same seed, same sizes, same start:
byte-identical files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from memberscore.settings import Settings
from simulator.calendar import season_curve
from simulator.campaigns import responses
from simulator.params import ACTIONS, SimulationParams
from simulator.purchases import draw_returns, order_details
from simulator.tables import (
    contact_ids,
    contacts_frame,
    events_frame,
    member_ids,
    members_frame,
    orders_frame,
)
from simulator.tiers import TierHistory, net_spend_ledger, tier_history
from simulator.truth import TRUTH_FILES, alive_intervals_frame, contacts_truth_frame, latent_frame
from simulator.world import World, block_events, simulate_world

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationSummary:
    """What one simulation produced and where it went."""

    seed: int
    start: date
    days: int
    rows: dict[str, int]
    returns: int
    activation_rate: float  # members with at least one order ÷ members
    repeat_share: float  # buyers with two or more orders ÷ buyers
    treatment_share: float  # contacts in the treatment group ÷ contacts
    raw_dir: Path
    truth_dir: Path
    seconds: float

    def describe(self) -> str:
        """A readable multi-line summary."""
        end = self.start + timedelta(days=self.days - 1)
        counts = "\n".join(f"  {name:<9} {count:>12,} rows" for name, count in self.rows.items())
        return (
            f"Simulated {self.start} .. {end} ({self.days} days), seed {self.seed}, "
            f"in {self.seconds:.1f} s\n{counts}\n"
            f"  orders include {self.returns:,} refunds\n"
            f"  activation rate  {self.activation_rate:.1%} of members bought at least once\n"
            f"  repeat purchase  {self.repeat_share:.1%} of buyers bought twice or more\n"
            f"  contacts         {self.treatment_share:.1%} treatment, rest control (held out)\n"
            f"Tables:       {self.raw_dir}/{{members,orders,events,contacts}}.parquet\n"
            f"Ground truth: {self.truth_dir}/ (evaluation only: "
            f"{', '.join(TRUTH_FILES.values())})"
        )


def _write(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as Parquet through a temporary file, so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), partial)
    partial.replace(path)


def run(
    settings: Settings, *, members: int, days: int, seed: int, start: date
) -> SimulationSummary:
    """Simulate `members` members over `days` days from `start` with `seed`; write the tables to
    `settings.raw_dir` and the ground truth to `settings.truth_dir`."""
    began = time.perf_counter()
    params = SimulationParams(members=members, days=days, start=start)
    names = [name for name, _ in settings.tier_thresholds]
    thresholds = np.array([value for _, value in settings.tier_thresholds], dtype=float)
    world_seed, detail_seed, event_seed = np.random.SeedSequence(seed).spawn(3)
    log.info("simulate: %s members, %s days from %s, seed %s", members, days, start, seed)
    blocks = -(-members // params.block_members)
    bar = tqdm(total=blocks + 4, desc="simulate: lives and orders", unit="step", disable=None)
    world = simulate_world(np.random.default_rng(world_seed), params, thresholds, log.info)
    bar.update()
    bar.set_description("simulate: details and tiers")
    rng = np.random.default_rng(detail_seed)
    details = order_details(rng, world.orders, world.latent, params)
    refunds = draw_returns(rng, world.orders, details, params)
    ledger = net_spend_ledger(world.orders, details.amount, refunds)
    tiers = tier_history(*ledger, thresholds, members, days)
    responded, value = responses(world.orders, details.amount, world.contacts, params)
    ids = member_ids(members)
    raw = settings.raw_dir
    bar.update()
    bar.set_description("simulate: members, orders, contacts")
    rows = {"members": members}
    _write(members_frame(world.population, tiers.final_rank, names, start), raw / "members.parquet")
    orders = orders_frame(world.orders, details, refunds, ids, start)
    _write(orders, raw / "orders.parquet")
    rows["orders"] = len(orders)
    contacts = contacts_frame(world.contacts, responded, value, ids, start)
    _write(contacts, raw / "contacts.parquet")
    rows["contacts"] = len(contacts)
    bar.update()
    bar.set_description("simulate: events")
    rows["events"] = _write_events(world, details.amount, tiers, ids, event_seed, raw, bar)
    log.info("simulate: tables written to %s", raw)
    bar.set_description("simulate: ground truth")
    _write_truth(settings.truth_dir, world, ids, seed, settings)
    bar.update()
    bar.close()
    bought = np.bincount(world.orders.member, minlength=members)
    return SimulationSummary(
        seed=seed,
        start=start,
        days=days,
        rows={k: rows[k] for k in ("members", "orders", "events", "contacts")},
        returns=len(refunds.order),
        activation_rate=float((bought > 0).mean()),
        repeat_share=float((bought > 1).sum() / max((bought > 0).sum(), 1)),
        treatment_share=float(world.contacts.treated.mean()) if len(world.contacts) else 0.0,
        raw_dir=raw,
        truth_dir=settings.truth_dir,
        seconds=time.perf_counter() - began,
    )


def _write_events(
    world: World,
    amount: np.ndarray,
    tiers: TierHistory,
    ids: pa.Array,
    seed: np.random.SeedSequence,
    raw: Path,
    bar: tqdm,
) -> int:
    """Generate and append events block by block of members; returns the number of rows."""
    size = world.params.block_members
    starts = range(0, world.params.members, size)
    seeds = seed.spawn(len(starts))
    path = raw / "events.parquet"
    partial = path.with_name(path.name + ".partial")
    written, writer = 0, None
    try:
        for lo, block_seed in zip(starts, seeds, strict=True):
            hi = min(lo + size, world.params.members)
            events = block_events(np.random.default_rng(block_seed), world, amount, tiers, lo, hi)
            table = pa.Table.from_pandas(
                events_frame(events, ids, written, world.params.start), preserve_index=False
            )
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            written += len(events)
            log.info("simulate: events of members %s..%s (%s rows so far)", lo, hi, written)
            bar.update()
    finally:
        if writer is not None:
            writer.close()
    partial.replace(path)
    return written


def _write_truth(folder: Path, world: World, ids: pa.Array, seed: int, settings: Settings) -> None:
    """The hidden lives, the contacts' true effects and propensities, the seasonality, params."""
    params = world.params
    _write(
        latent_frame(world.population, world.latent, ids, params.start),
        folder / TRUTH_FILES["members"],
    )
    _write(
        alive_intervals_frame(world.latent, ids, params.start),
        folder / TRUTH_FILES["alive_intervals"],
    )
    contacts = contacts_truth_frame(world.contacts, contact_ids(len(world.contacts)), ids, params)
    _write(contacts, folder / TRUTH_FILES["contacts"])
    season = pd.DataFrame(
        {
            "date": pd.date_range(params.start, periods=params.days, freq="D").date,
            "multiplier": season_curve(params.start, params.days),
        }
    )
    _write(season, folder / TRUTH_FILES["seasonality"])
    meta = {
        "seed": seed,
        "params": {
            k: str(v) if isinstance(v, date) else v for k, v in dataclasses.asdict(params).items()
        },
        "tier_thresholds": [list(t) for t in settings.tier_thresholds],
        "actions": list(ACTIONS),
        "propensity_action": params.action_propensity,
        "propensity_treatment": params.treatment_share,
        "response_window_days": params.response_window_days,
    }
    (folder / TRUTH_FILES["simulation"]).write_text(json.dumps(meta, indent=2) + "\n")
