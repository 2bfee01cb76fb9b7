"""RFM segments: tie-aware quintiles and the named R × F grid."""

from __future__ import annotations

import pandas as pd

from features.families.segments import SEGMENT_CELLS, quintile_score, segment_features


def test_quintiles_give_ties_one_score_and_ignore_non_buyers() -> None:
    # Given ten values with a tie and a missing one
    values = pd.Series([1, 2, 3, 4, 5, 6, 7, 8, 9, 9, None], dtype="float64")
    # When scoring
    scores = quintile_score(values)
    # Then two values per quintile, the tied pair together, and missing stays missing
    assert scores.tolist()[:10] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert pd.isna(scores.iloc[10]), "no value, no score"


def test_grid_covers_every_cell_once() -> None:
    cells = [c for cs in SEGMENT_CELLS.values() for c in cs]
    expected = sorted(f"{r}{f}" for r in range(1, 6) for f in range(1, 6))
    assert sorted(cells) == expected, "each of the 25 R x F cells belongs to one segment"


def test_segments_of_a_few_members() -> None:
    # Given five buyers spread over recency and frequency, and one member without orders
    rfm = pd.DataFrame(
        {
            "member_id": ["champ", "lost", "cant", "recent", "mid", "none"],
            "recency_days": [1.0, 300.0, 250.0, 2.0, 100.0, None],
            "frequency": [20, 1, 30, 1, 5, 0],
            "monetary": [900.0, 10.0, 1500.0, 20.0, 100.0, 0.0],
        }
    )
    # When segmenting (5 buyers: one per quintile of each score)
    out = segment_features(rfm).set_index("member_id")
    # Then
    assert out.loc["champ", "rfm_cell"] == "544" and out.loc["champ", "segment"] == "champions"
    assert out.loc["lost", "segment"] == "lost", "R1 F1"
    assert out.loc["cant", "segment"] == "cant_lose", "R2 F5: the best buyer gone quiet"
    assert (out.loc["recent", "r_score"], out.loc["recent", "f_score"]) == (4, 1), (
        "second most recent of five is R4; tied at one order with 'lost', both F1"
    )
    assert out.loc["recent", "segment"] == "promising", "R4 F1"
    assert out.loc["mid", "rfm_cell"] == "333" and out.loc["mid", "segment"] == "need_attention"
    assert out.loc["none", "segment"] == "no_purchase" and pd.isna(out.loc["none", "r_score"])
