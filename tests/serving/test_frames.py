"""The vectorised scoring core: same numbers as the score API, reason codes, encoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from memberscore.settings import Settings
from serving.frames import SMALL_FRAME_ROWS, encode_frame, score_frame, top_codes
from serving.scoring import encode, score
from serving.sources import MemberFeatures

from .conftest import AS_OF, FakeDomain, FakeSource


def test_score_frame_gives_the_numbers_the_api_serves(
    member_rows: dict[str, dict[str, Any]], snapshot: pd.DataFrame, settings: Settings
) -> None:
    """Given the conftest members as a snapshot frame and as API rows, when both are scored,
    then every probability and interval agrees."""
    bundle = FakeSource().load()
    table = score_frame(snapshot.set_index("member_id"), bundle, settings)
    cards = score(
        list(member_rows),
        MemberFeatures(member_rows, dict.fromkeys(member_rows, AS_OF)),
        bundle,
        FakeDomain(),
        settings,
    ).scores
    for card in cards:
        row = table.loc[card.member_id]
        assert bool(row["insufficient_history"]) == card.insufficient_history, card.member_id
        if card.insufficient_history:
            assert card.activation is not None
            assert row["activation"] == pytest.approx(card.activation.probability)
            assert np.isnan(row["churn"]), "no churn score without an order"
            continue
        assert row["churn"] == pytest.approx(card.churn[0].probability), card.member_id
        assert card.clv is not None and card.spend is not None
        assert row["clv_p50"] == pytest.approx(card.clv.p50)
        assert row["spend_p90"] == pytest.approx(card.spend.p90)
        assert np.isnan(row["activation"]), "activation only for members who never ordered"


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
