"""The vectorised scoring core: same numbers as the score API, reason codes, encoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from memberscore.settings import Settings
from serving.scoring.adapters import LibraryDomain
from serving.scoring.frames import SMALL_FRAME_ROWS, encode_frame, score_frame, top_codes
from serving.scoring.score import encode, score
from serving.scoring.sources import MemberFeatures
from tests.serving.conftest import AS_OF, FakeSource
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
