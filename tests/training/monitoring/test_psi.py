"""PSI and reference distributions: zero on the same sample, large on a shift, stable JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.monitoring import psi


def test_same_values_have_zero_psi_and_a_shift_a_large_one() -> None:
    rng = np.random.default_rng(0)
    values = pd.Series(rng.normal(size=5_000))
    ref = psi.reference(values, 10)
    same, _ = psi.compare(ref, values)
    shifted, _ = psi.compare(ref, values + 1.0)
    assert ref.bins == 10 and abs(sum(ref.shares) - 1) < 1e-9, "ten equal-mass bins"
    assert same == pytest.approx(0.0, abs=1e-12), "a sample against itself does not drift"
    assert shifted > 0.5, f"a one-sd shift is a large drift, got PSI {shifted:.3f}"


def test_psi_matches_the_formula() -> None:
    expected, actual = [0.5, 0.3, 0.2], [0.4, 0.4, 0.2]
    by_hand = (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.4 - 0.3) * np.log(0.4 / 0.3)
    assert psi.psi(expected, actual) == pytest.approx(by_hand)


def test_missing_values_are_a_share_apart_from_the_bins() -> None:
    values = pd.Series([1.0, 2.0, None, 4.0])
    ref = psi.reference(values, 4)
    _, missing = psi.compare(ref, pd.Series([None, None, 1.0, 2.0]))
    assert ref.missing == pytest.approx(0.25) and ref.rows == 4
    assert missing == pytest.approx(0.5)


def test_text_levels_unseen_in_the_reference_get_their_own_bin() -> None:
    ref = psi.reference(pd.Series(["a", "b", "a", None]), 10)
    counts, missing = ref.counts(pd.Series(["a", "c", "c"]))
    assert ref.levels == ("a", "b") and missing == 0
    assert counts.tolist() == [1, 0, 2], "a, b, then unseen levels"


def test_point_masses_give_fewer_bins() -> None:
    ref = psi.reference(pd.Series([0.0] * 90 + list(range(1, 11))), 10)
    assert ref.bins < 10, "repeated zeros collapse their cut points"
    assert psi.compare(ref, pd.Series([0.0] * 90 + list(range(1, 11))))[0] == pytest.approx(0)


def test_references_survive_json() -> None:
    refs = {
        "churn_90d": psi.reference(pd.Series(np.linspace(0, 1, 100)), 5),
        "tier": psi.reference(pd.Series(["gold", "basic"]), 5),
    }
    assert psi.from_json(psi.to_json(refs)) == refs
    with pytest.raises(ValueError, match="cannot be read"):
        psi.from_json('{"churn_90d": {"shares": 1}}')


def test_fewer_than_two_bins_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 bins"):
        psi.reference(pd.Series([1.0]), 1)
