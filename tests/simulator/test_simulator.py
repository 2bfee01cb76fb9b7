"""The lifecycle simulator: contract-valid, reproducible, and realistic enough to learn from.

One simulation of 8,000 members over two years is shared by the statistical tests; the
reproducibility tests run their own tiny simulations.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memberscore.contract import TABLES, TIMESTAMP_DTYPE, validate
from memberscore.settings import Settings
from pipelines import simulate
from simulator import tiers, truth
from simulator.calendar import season_multiplier
from simulator.params import ACTIONS

START = date(2024, 1, 1)
DAYS = 730
END = pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=DAYS)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Given 8,000 members simulated over 730 days, the four tables and the truth."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("sim") / "data")
    summary = simulate.run(settings, members=8_000, days=DAYS, seed=7, start=START)
    tables = {name: pd.read_parquet(settings.raw_dir / f"{name}.parquet") for name in TABLES}
    return {
        "summary": summary,
        "settings": settings,
        **tables,
        "truth": pd.read_parquet(settings.truth_dir / "members.parquet"),
        "intervals": pd.read_parquet(settings.truth_dir / "alive_intervals.parquet"),
        "contacts_truth": pd.read_parquet(settings.truth_dir / "contacts.parquet"),
    }


def _purchases(world: dict) -> pd.DataFrame:
    orders = world["orders"]
    return orders.loc[~orders["is_return"]]


@pytest.mark.parametrize("name", list(TABLES))
def test_every_table_passes_the_contract_with_canonical_columns(world: dict, name: str) -> None:
    frame = world[name]
    result = validate(frame, TABLES[name])
    assert result.rejected.empty, f"{name}: rejected rows, e.g. {result.rejected.head(3)}"
    assert list(frame.columns) == TABLES[name].names, f"{name}: columns are not the contract's"
    stamps = [c.name for c in TABLES[name].columns if c.kind == "timestamp"]
    for column in stamps:
        assert str(frame[column].dtype) == TIMESTAMP_DTYPE, f"{name}.{column} is not us UTC"
    assert frame[TABLES[name].key].is_unique, f"{name}: duplicate primary keys"


def _number(member_id: pd.Series) -> np.ndarray:
    """Member number from an id such as m0000042 (ids are numbered from 1 in members order)."""
    return member_id.str.slice(1).astype(np.int64).to_numpy() - 1


def test_rows_stay_inside_the_window_and_after_registration(world: dict) -> None:
    members = world["members"]
    assert (_number(members["member_id"]) == np.arange(len(members))).all()
    registered = members["registered_at"].to_numpy()
    for name, column in (
        ("orders", "ordered_at"),
        ("events", "occurred_at"),
        ("contacts", "sent_at"),
    ):
        frame = world[name]
        assert frame[column].max() < END, f"{name} has rows after the window"
        before = frame[column].to_numpy() < registered[_number(frame["member_id"])]
        assert not before.any(), f"{name}: {before.sum()} rows before the member registered"


def _tiny(tmp_path: Path, seed: int) -> dict[str, pd.DataFrame]:
    settings = Settings(data_dir=tmp_path / f"s{seed}-{len(list(tmp_path.iterdir()))}")
    simulate.run(settings, members=600, days=120, seed=seed, start=START)
    return {name: (settings.raw_dir / f"{name}.parquet").read_bytes() for name in TABLES}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    first, again, other = _tiny(tmp_path, 3), _tiny(tmp_path, 3), _tiny(tmp_path, 4)
    for name in TABLES:
        assert first[name] == again[name], f"{name}: same seed gave different bytes"
        assert first[name] != other[name], f"{name}: a different seed gave the same file"


def test_activation_rate_and_repeat_share_are_plausible(world: dict) -> None:
    counts = _purchases(world).groupby("member_id").size()
    members = world["members"]
    old = members.loc[members["registered_at"] < END - pd.Timedelta(days=180), "member_id"]
    activation = counts.reindex(old).fillna(0).gt(0).mean()
    assert 0.40 <= activation <= 0.85, f"{activation:.1%} of older members ever bought"
    repeat = counts.gt(1).mean()
    assert 0.35 <= repeat <= 0.90, f"{repeat:.1%} of buyers bought twice or more"
    assert world["summary"].activation_rate == pytest.approx(counts.size / len(members))


def test_some_members_never_buy_and_activation_is_not_instant(world: dict) -> None:
    first = _purchases(world).groupby("member_id")["ordered_at"].min()
    members = world["members"].set_index("member_id")
    delay = (first - members["registered_at"].reindex(first.index)) / pd.Timedelta(days=1)
    assert delay.median() > 3, f"median activation delay is {delay.median():.1f} days"
    by_channel = delay.groupby(members["acquisition_channel"].reindex(delay.index)).median()
    assert by_channel["store_signup"] < by_channel["social"], (
        f"store sign-ups should activate faster than social: {by_channel.to_dict()}"
    )


def _alive_members_per_day(intervals: pd.DataFrame) -> pd.Series:
    days = pd.date_range(pd.Timestamp(START, tz="UTC"), periods=DAYS, freq="D")
    start = np.searchsorted(days, intervals["alive_from"].to_numpy(), side="left")
    stop = np.searchsorted(days, intervals["alive_until"].to_numpy(), side="left")
    delta = np.bincount(start, minlength=DAYS + 1) - np.bincount(stop, minlength=DAYS + 1)
    return pd.Series(np.cumsum(delta)[:DAYS], index=days)


def test_november_buys_clearly_more_per_alive_member_than_march(world: dict) -> None:
    alive = _alive_members_per_day(world["intervals"])
    daily = _purchases(world).set_index("ordered_at").resample("D").size()
    rate = (daily.reindex(alive.index, fill_value=0) / alive).dropna()
    november = rate[rate.index.month == 11].mean()
    march = rate[rate.index.month == 3].mean()
    assert november > 1.25 * march, (
        f"orders per alive member-day: Nov {november:.4f}, Mar {march:.4f}"
    )


def test_engagement_fades_in_the_weeks_before_the_true_dropout(world: dict) -> None:
    truth_members = world["truth"]
    death = truth_members.set_index("member_id")["death_at"]
    life = death - truth_members.set_index("member_id")["activation_at"]
    dying = death[(death < END - pd.Timedelta(days=5)) & (life > pd.Timedelta(days=160))]
    events = world["events"]
    events = events.loc[events["member_id"].isin(dying.index)]
    before = (dying.reindex(events["member_id"]).to_numpy() - events["occurred_at"].to_numpy()) / (
        np.timedelta64(1, "D")
    )
    earlier = ((before >= 100) & (before < 150)).sum() / (50 * len(dying))
    last = ((before >= 0) & (before < 20)).sum() / (20 * len(dying))
    assert len(dying) > 300, f"only {len(dying)} members die with a long life; test is weak"
    assert last < 0.6 * earlier, (
        f"events/day per member: {earlier:.3f} at 100-150 days before dropout, "
        f"{last:.3f} in the last 20 days; engagement should fade"
    )


def test_dead_members_still_emit_a_little_noise(world: dict) -> None:
    truth_members = world["truth"].set_index("member_id")
    dead_long = truth_members.index[
        (truth_members["death_at"] < END - pd.Timedelta(days=200))
        & truth_members["revival_at"].isna()
    ]
    events = world["events"]
    late = events.loc[
        events["member_id"].isin(dead_long)
        & (events["occurred_at"] >= END - pd.Timedelta(days=100))
    ]
    per_day = len(late) / (100 * len(dead_long))
    assert 0 < per_day < 0.1, f"dead members emit {per_day:.3f} events/day"


def test_welcome_coupon_lifts_response_among_members_who_have_not_bought_yet(world: dict) -> None:
    contacts = world["contacts"]
    first = _purchases(world).groupby("member_id")["ordered_at"].min()
    welcome = contacts.loc[contacts["action_id"] == "welcome_coupon"]
    first_at = first.reindex(welcome["member_id"]).to_numpy()
    not_buying = pd.isna(first_at) | (first_at > welcome["sent_at"].to_numpy())
    rates = (
        welcome.loc[not_buying].groupby("group")["responded_at"].apply(lambda s: s.notna().mean())
    )
    sizes = welcome.loc[not_buying, "group"].value_counts()
    assert sizes.min() > 150, f"too few welcome contacts to compare: {sizes.to_dict()}"
    assert rates["treatment"] > rates["control"] + 0.05, (
        f"welcome coupon response among not-yet-buying members: {rates.to_dict()}"
    )


def test_winback_coupon_does_nothing_for_active_buyers_in_truth(world: dict) -> None:
    true = world["contacts_truth"]
    effect = true.groupby(["action_id", "segment"])["true_uplift"].mean()
    assert effect["winback_coupon", "active"] == 0.0, "win-back coupons should not move actives"
    assert effect["winback_coupon", "lapsed"] > 0.05, "win-back coupons should move lapsed"
    assert effect["welcome_coupon", "active"] == 0.0, "welcome coupons should not move actives"
    value = true.groupby(["action_id", "segment"])["expected_incremental_value"].mean()
    assert value["winback_coupon", "active"] < 0, "a coupon given to actives should cost money"


def test_contacts_are_randomised_and_responses_follow_the_definition(world: dict) -> None:
    contacts, true = world["contacts"], world["contacts_truth"]
    assert set(contacts["action_id"]) == set(ACTIONS), "every action of the catalogue is used"
    share = (contacts["group"] == "treatment").mean()
    assert 0.45 < share < 0.55, f"treatment share {share:.2f}, expected about 0.5"
    assert (true["propensity_treatment"] == 0.5).all(), "truth keeps the logging propensity"
    responded = contacts.dropna(subset=["responded_at"])
    lag = (responded["responded_at"] - responded["sent_at"]) / pd.Timedelta(days=1)
    assert lag.gt(0).all() and lag.le(14).all(), "responses fall within 14 days after sending"
    assert responded["response_value"].ge(0).all(), "response values are paid amounts"
    assert contacts["response_value"].isna().eq(contacts["responded_at"].isna()).all()


def test_purchase_rates_are_heterogeneous_and_drive_realised_orders(world: dict) -> None:
    truth_members = world["truth"].set_index("member_id")
    rate = truth_members["purchase_rate_per_day"]
    spread = rate.std() / rate.mean()
    assert spread > 0.6, f"purchase rates barely vary (coefficient of variation {spread:.2f})"
    counts = _purchases(world).groupby("member_id").size().reindex(rate.index, fill_value=0)
    early = truth_members["activation_at"] < pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=120)
    corr = counts[early].corr(rate[early], method="spearman")
    assert corr > 0.4, f"realised orders hardly follow the true rate (Spearman {corr:.2f})"


def test_tier_is_net_spend_over_the_trailing_year(world: dict) -> None:
    orders = world["orders"]
    recent = orders.loc[orders["ordered_at"] >= END - pd.Timedelta(days=365)]
    signed = np.where(recent["is_return"], -recent["amount"], recent["amount"])
    growth = pd.Series(signed).groupby(recent["member_id"].to_numpy()).sum()
    thresholds = world["settings"].tier_thresholds
    values = np.array([v for _, v in thresholds])
    names = np.array([n for n, _ in thresholds])
    members = world["members"].set_index("member_id")
    rank = np.searchsorted(values, growth.reindex(members.index, fill_value=0) + 1e-6, side="right")
    expected = names[np.clip(rank - 1, 0, None)]
    agree = (members["tier"].to_numpy() == expected).mean()
    assert agree > 0.999, f"only {agree:.2%} of tiers match the trailing-365-day net spend"
    assert members["tier"].nunique() >= 3, "at least three tiers should be populated"
    changes = world["events"].query("event_type == 'tier_change'")
    assert changes["value"].isin([0, 1, 2, 3]).all(), "tier_change values are tier ranks"


def test_truth_p_alive_agrees_with_future_purchases_and_true_state(world: dict) -> None:
    cutoff = pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=450)
    orders = world["orders"]
    past = orders.loc[orders["ordered_at"] <= cutoff]
    p = truth.p_alive(world["truth"], past, cutoff)
    purchases = _purchases(world)
    horizon = cutoff + pd.Timedelta(days=180)
    future = purchases.loc[purchases["ordered_at"].gt(cutoff) & purchases["ordered_at"].le(horizon)]
    buys = p.index.isin(future["member_id"])
    buyers = p.index.isin(past.loc[~past["is_return"], "member_id"])
    high, low = buys[buyers & (p > 0.7)].mean(), buys[buyers & (p < 0.3)].mean()
    assert high > low + 0.3, f"future buying: {high:.2f} when P(alive)>0.7, {low:.2f} when <0.3"
    alive = truth.alive_at(world["truth"], cutoff)
    gap = p[buyers & alive.to_numpy()].mean() - p[buyers & ~alive.to_numpy()].mean()
    assert gap > 0.3, f"P(alive) is only {gap:.2f} higher for truly alive buyers"
    expected = truth.expected_purchases(world["truth"], past, cutoff, 180)
    realised = future.groupby("member_id").size().reindex(expected.index, fill_value=0)
    corr = expected[buyers].corr(realised[buyers], method="spearman")
    assert corr > 0.4, f"expected vs realised purchases: Spearman {corr:.2f}"
    spend = truth.expected_spend(world["truth"], past, cutoff, 180)
    assert (spend >= 0).all() and spend[buyers].sum() > 0, "expected spend is non-negative"


def test_summary_describes_counts_rates_and_places(world: dict) -> None:
    text = world["summary"].describe()
    for needle in ("members", "orders", "events", "contacts", "activation", "repeat", "truth"):
        assert needle in text.lower(), f"summary lacks {needle!r}:\n{text}"
    assert world["summary"].rows["events"] == len(world["events"])


def test_tier_history_replays_a_hand_computed_ledger() -> None:
    # member 0: 600 on day 10 (silver), refund 200 on day 20 (basic), 2,500 on day 400 after the
    # first order expired on day 375 (gold with 2,500 - 200 + 200 = 2,500 on day 400)
    history = tiers.tier_history(
        member=np.array([0, 0, 0]),
        time=np.array([10.0, 20.0, 400.0]),
        signed_amount=np.array([600.0, -200.0, 2500.0]),
        thresholds=np.array([0.0, 500.0, 2000.0, 5000.0]),
        members=2,
        days=500,
    )
    assert list(history.time) == [10.0, 20.0, 400.0], "changes at the order, refund, big order"
    assert list(history.rank) == [1, 0, 2], "silver, back to basic, then gold"
    assert list(history.final_rank) == [2, 0], "member 1 never bought: lowest tier"


def test_seasonality_peaks_in_june_november_and_december_not_march() -> None:
    dates = pd.to_datetime(["2024-03-13", "2024-06-18", "2024-11-11", "2024-11-29", "2024-12-19"])
    march, june, singles, black_friday, year_end = season_multiplier(dates)
    for name, level in [
        ("June", june),
        ("11/11", singles),
        ("BF", black_friday),
        ("Dec", year_end),
    ]:
        assert level > 1.5 * march, f"{name} multiplier {level:.2f} vs March {march:.2f}"
