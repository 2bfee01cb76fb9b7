"""The vectorised scoring core: same numbers as the score API, reason codes, encoding, spend
outputs read by name, P(alive) from the served outlook."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.btyd.outlook import outlook_from_params
from features.families.btyd import member_outlook
from memberscore.errors import ModelNotReady
from memberscore.settings import Settings
from serving.scoring.adapters import LibraryDomain
from serving.scoring.bundle import ModelBundle
from serving.scoring.frames import (
    QUANTILES,
    SMALL_FRAME_ROWS,
    discount_factor,
    encode_frame,
    score_frame,
    tier_state,
    tier_state_rows,
    top_codes,
)
from serving.scoring.score import encode, score
from serving.scoring.sources import MemberFeatures
from tests.serving.conftest import AS_OF, SPEND_OUTPUTS, FakeSource, FakeSpendModel, member_row
from training.core.reasons import top_reasons


@pytest.mark.parametrize("copies", [1, 2], ids=["rows-path", "frame-path"])
def test_the_api_serves_exactly_the_numbers_and_reasons_of_score_frame(
    member_rows: dict[str, dict[str, Any]],
    snapshot: pd.DataFrame,
    settings: Settings,
    copies: int,
) -> None:
    """Given the conftest members as a snapshot frame (the batch path) and as API rows (the
    score API's path: read straight from the rows up to SMALL_FRAME_ROWS members, through a
    frame beyond), when both are scored with reasons, then every probability, interval and
    reason code is the same to the bit."""
    frames = [
        snapshot.set_index("member_id").rename(index=lambda m, c=c: f"{m}.{c}")
        for c in range(copies)
    ]
    features = pd.concat(frames)
    rows = {f"{m}.{c}": row for c in range(copies) for m, row in member_rows.items()}
    assert (len(rows) > SMALL_FRAME_ROWS) == (copies > 1), "each case must take its own path"
    bundle = FakeSource().load()
    table = score_frame(features, bundle, settings)
    domain = LibraryDomain(None, None, settings.decisions, {})
    served = score(
        list(rows), MemberFeatures(rows, dict.fromkeys(rows, AS_OF)), bundle, domain, settings
    )
    assert sorted(card.member_id for card in served.scores) == sorted(features.index)
    for card in served.scores:
        row, who = table.loc[card.member_id], card.member_id
        assert bool(row["insufficient_history"]) == card.insufficient_history, who
        assert [c.probability for c in card.churn] == (
            [] if card.insufficient_history else [row["churn_90d"]]
        ), who
        if card.insufficient_history:
            assert (
                card.activation is not None and card.activation.probability == row["activation"]
            ), who
            assert card.clv is None and card.spend is None, who
        else:
            assert card.activation is None, f"{who}: activation only for members who never ordered"
            assert card.spend is not None and card.clv is not None, who
            assert [card.spend.p10, card.spend.p50, card.spend.p90] == row[
                ["spend_p10", "spend_p50", "spend_p90"]
            ].tolist(), who
            assert [card.clv.p10, card.clv.p50, card.clv.p90] == row[
                ["clv_p10", "clv_p50", "clv_p90"]
            ].tolist(), who
            means = [card.orders_mean, card.spend.mean, card.clv.mean]
            assert means == [
                None if np.isnan(v) else v for v in row[["orders_mean", "spend_mean", "clv_mean"]]
            ], f"{who}: expected values (null where the spend model has none)"
        chance = row["next_tier_probability"]
        tier = card.next_tier
        assert tier is not None and tier.probability_within_period == (
            None if np.isnan(chance) else chance
        ), f"{who}: upgrade timing"
        codes = [c for c in row[["reason_1", "reason_2", "reason_3"]] if c is not None]
        assert [r.code for r in card.reasons] == codes, who
        assert {r.model for r in card.reasons} <= {row["reason_model"]}, who


def test_score_frame_reason_codes_are_the_top_positive_contributions(
    snapshot: pd.DataFrame, settings: Settings
) -> None:
    bundle = FakeSource().load()
    features = snapshot.set_index("member_id")
    table = score_frame(features, bundle, settings, reasons=2)
    churn = bundle.models["churn"]
    matrix = encode_frame(features.loc[["m3"]], churn)
    values = churn.predictor.contributions(matrix)[0, :-1]
    expected = [churn.feature_names[j] for j in np.argsort(-values) if values[j] > 0][:2]
    got = [c for c in table.loc["m3", ["reason_1", "reason_2"]] if c is not None]
    assert got == expected
    assert table.loc["n1", "reason_model"] == "activation"
    assert "reason_3" not in table.columns


def test_top_codes_leave_none_where_nothing_pushes_up() -> None:
    values = np.array([[0.5, -1.0, 2.0], [-0.1, -0.2, 0.0]])
    codes = top_codes(values, ["a", "b", "c"], 4)
    assert codes.tolist() == [["c", "a", None, None], [None, None, None, None]]


def test_batch_codes_and_api_reasons_pick_the_same_features_ties_in_feature_order() -> None:
    """Given tied contributions, batch scoring's codes and the API's reasons name the same
    features in the same order: the larger first, the earlier feature of a tie first."""
    values = np.array([[1.0, 2.0, 1.0, 2.0, 0.0], [0.3, 0.3, 0.3, -1.0, 0.3], [0.0, -1, 0, 0, 0]])
    names = ["a", "b", "c", "d", "e"]

    codes = top_codes(values, names, 3).tolist()

    assert codes == [["b", "d", "a"], ["a", "b", "c"], [None, None, None]], "ties: feature order"
    for row, batch in zip(values, codes, strict=True):
        api = [reason.code for reason in top_reasons(row, names, {}, k=3)]
        assert api == [code for code in batch if code is not None], "one top-k for both paths"


def test_encode_frame_reads_typed_snapshot_columns_like_api_rows(
    member_rows: dict[str, dict[str, Any]], snapshot: pd.DataFrame
) -> None:
    """A typed snapshot (nullable floats, strings) encodes exactly like the API's dict rows;
    text in a numeric feature and unseen categories become NaN."""
    churn = FakeSource().load().models["churn"]
    ids = list(member_rows)
    typed = encode_frame(snapshot.set_index("member_id").loc[ids], churn)
    np.testing.assert_array_equal(typed, encode([member_rows[m] for m in ids], churn))
    odd = encode([{"recency_days": "soon", "tier": "diamond", "frequency": True}], churn)
    assert np.isnan(odd[0, 0]) and np.isnan(odd[0, 4]) and odd[0, 1] == 1.0


def test_small_frames_encode_value_by_value_to_the_same_matrix(snapshot: pd.DataFrame) -> None:
    """Frames of up to SMALL_FRAME_ROWS rows take the row-wise path; it must give exactly the
    column-wise path's matrix, for typed snapshots and for object columns alike."""
    churn = FakeSource().load().models["churn"]
    features = snapshot.set_index("member_id")
    big = pd.concat([features, features.rename(index=lambda m: f"{m}b")])
    assert len(big) > SMALL_FRAME_ROWS >= len(features), "the fixture must straddle the switch"
    odd = pd.DataFrame(
        {"recency_days": ["soon", None, 3], "tier": [None, "gold", float("nan")]}, dtype=object
    )
    for frame in (features, odd):
        whole = encode_frame(pd.concat([frame] * (SMALL_FRAME_ROWS // len(frame) + 1)), churn)
        np.testing.assert_array_equal(encode_frame(frame, churn), whole[: len(frame)])
    np.testing.assert_array_equal(
        encode_frame(big, churn)[: len(features)], encode_frame(features, churn)
    )


def spend_bundle(outputs: tuple[str, ...] = SPEND_OUTPUTS) -> ModelBundle:
    """The fake registry's bundle with a FakeSpendModel predicting `outputs` as clv."""
    return FakeSource(clv=FakeSpendModel(outputs)).load()


@pytest.mark.parametrize(
    "outputs",
    [SPEND_OUTPUTS, ("p90", "spend_mean", "p10", "orders_mean", "p50")],
    ids=["documented-order", "any-order"],
)
def test_spend_columns_are_read_by_output_name(
    snapshot: pd.DataFrame, settings: Settings, outputs: tuple[str, ...]
) -> None:
    """Given a spend model of the five outputs, in its documented order or any other, when
    members are scored, then expected orders, expected spend and the interval are the model's
    columns of those names (interval sorted) and the CLV is the spend discounted with the
    horizon's one factor, mean and quantiles alike."""
    features = snapshot.set_index("member_id")
    table = score_frame(features, spend_bundle(outputs), settings, reasons=0)
    factor = discount_factor(365, settings.monthly_discount_rate)
    for member in ("m3", "m8"):
        row = features.loc[member]
        want = FakeSpendModel.expected(row["frequency"], row["monetary"])
        got = table.loc[member]
        assert got["orders_mean"] == pytest.approx(want["orders_mean"]), member
        assert got["spend_mean"] == pytest.approx(want["spend_mean"]), member
        assert [got[f"spend_{q}"] for q in QUANTILES] == pytest.approx(
            [want[q] for q in QUANTILES]
        ), f"{member}: interval read by name and sorted"
        for stat in ("mean", *QUANTILES):
            assert got[f"clv_{stat}"] == pytest.approx(got[f"spend_{stat}"] * factor), stat
    never = table.loc["n1", ["orders_mean", "spend_mean", "clv_mean"]]
    assert never.isna().all(), "no expected values for members who never ordered"


def test_a_spend_model_without_means_serves_its_interval_and_no_means(
    snapshot: pd.DataFrame, settings: Settings
) -> None:
    """A spend model of the older three outputs (p10, p50, p90) still serves its interval; its
    expected values are missing (NaN, null in the API), not taken from other columns."""
    features = snapshot.set_index("member_id")
    table = score_frame(features, spend_bundle(QUANTILES), settings, reasons=0)
    m3 = FakeSpendModel.expected(features.loc["m3", "frequency"], features.loc["m3", "monetary"])
    assert table.loc["m3", "spend_p50"] == pytest.approx(m3["p50"])
    assert table[["orders_mean", "spend_mean", "clv_mean"]].isna().all().all()


def test_a_clv_model_without_an_interval_is_not_ready(
    snapshot: pd.DataFrame, settings: Settings
) -> None:
    with pytest.raises(ModelNotReady, match="p10, p90"):
        score_frame(snapshot.set_index("member_id"), spend_bundle(("spend_mean", "p50")), settings)


def test_score_frame_p_alive_is_the_served_outlook_of_each_buyer(settings: Settings) -> None:
    """Given a served BTYD outlook, batch scoring's p_alive is the API's (`member_outlook`) for
    every member with orders, NaN for members without; without an outlook it is all NaN."""
    outlook = outlook_from_params("bgnbd", {"tx_r": 0.8, "tx_alpha": 6.0, "tx_a": 0.6, "tx_b": 2.5})
    rows = {f"m{i}": member_row(i) | rfm_inputs(i) for i in range(6)}
    rows |= {"n1": member_row(1, ordered=False) | {"frequency": 0.0}}
    features = pd.DataFrame.from_dict(rows, orient="index")

    served = score_frame(features, FakeSource(outlook=outlook).load(), settings, reasons=0)
    unserved = score_frame(features, FakeSource().load(), settings, reasons=0)

    for member, row in rows.items():
        p_alive, _ = member_outlook(outlook, row, AS_OF)
        if p_alive is None:
            assert np.isnan(served.loc[member, "p_alive"]), member
        else:
            assert served.loc[member, "p_alive"] == pytest.approx(p_alive), member
    assert served.loc[[m for m in rows if m.startswith("m")], "p_alive"].notna().all()
    assert unserved["p_alive"].isna().all(), "no outlook served: no P(alive)"


def rfm_inputs(i: int) -> dict[str, float]:
    """The rfm columns BTYD needs beside `member_row(i)` (amounts in currency, days)."""
    return {"avg_order_value": 30.0 + i, "first_order_amount": 25.0 + 2 * i}


def test_without_an_activation_model_the_activation_column_stays_all_nan(
    snapshot: pd.DataFrame, settings: Settings
) -> None:
    """Given no activation model (optional), score_frame has the same columns as with one
    (batch output keeps one schema): activation NaN for every member and no reason model for
    members without orders; the buyers' scores do not change."""
    features = snapshot.set_index("member_id")
    full = score_frame(features, FakeSource().load(), settings, reasons=2)

    table = score_frame(features, FakeSource(without=("activation",)).load(), settings, reasons=2)

    assert list(table.columns) == list(full.columns), "one schema with or without activation"
    assert table["activation"].isna().all()
    never = table["insufficient_history"]
    assert never.any() and table.loc[never, "reason_model"].isna().all()
    pd.testing.assert_frame_equal(table.loc[~never], full.loc[~never], check_dtype=False)


def test_upgrade_timing_reads_the_same_tier_inputs_from_frames_and_rows(
    settings: Settings,
) -> None:
    """The tier inputs (distance, net spend of the trailing windows) read alike from a frame
    and from API rows; with a spend model, buyers get upgrade timing, top-tier members and
    members who never ordered none, and without one the columns stay, all NaN."""
    rows = [
        {"distance_to_next_tier": 80.0, "monetary_30d": 5, "monetary_90d": 40.0},
        {"distance_to_next_tier": None, "monetary_365d": "text", "monetary_90d": pd.NA},
    ]
    frame, by_rows = tier_state(pd.DataFrame(rows)), tier_state_rows(rows)
    for name in ("distance", "spend_30d", "spend_90d", "spend_365d"):
        np.testing.assert_array_equal(getattr(frame, name), getattr(by_rows, name), name)
    assert by_rows.spend_30d[0] == 5.0 and np.isnan(by_rows.spend_365d).all()

    features = pd.DataFrame(
        [member_row(i) for i in (8, 9)] + [member_row(3, ordered=False)], index=["a", "b", "c"]
    )
    features.loc["b", "distance_to_next_tier"] = None  # the top tier
    table = score_frame(features, FakeSource(clv=FakeSpendModel()).load(), settings, reasons=0)
    chance = table["next_tier_probability"]
    assert 0 < chance["a"] < 1 and np.isnan(chance["b"]) and np.isnan(chance["c"]), chance
    assert 0 < table.loc["a", "next_tier_days"] <= settings.tier_period_days
    unserved = score_frame(features, FakeSource(without=("clv",)).load(), settings, reasons=0)
    assert unserved[["next_tier_days", "next_tier_probability"]].isna().all().all()
