"""The array path of the BTYD prior (live scoring): the same offsets as the frame path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.btyd.outlook import outlook_frame, outlook_from_params
from features.families.btyd import INPUT_COLUMNS, btyd_inputs
from training.models import prior as prior_module
from training.models.prior import FALLBACK, BtydPrior, offsets_of

PARETO = {"tx_r": 0.553, "tx_alpha": 10.578, "tx_s": 0.606, "tx_beta": 11.669}
BGNBD = {"tx_r": 0.243, "tx_alpha": 4.414, "tx_a": 0.793, "tx_b": 2.426}
GAMMA_GAMMA = {"gg_p": 6.25, "gg_q": 3.74, "gg_v": 15.44}
PRIORS = {
    "paretonbd+gg": ("paretonbd", PARETO | GAMMA_GAMMA),
    "paretonbd": ("paretonbd", PARETO),
    "bgnbd+gg": ("bgnbd", BGNBD | GAMMA_GAMMA),
}


MISSING = [1, 2, 4, 5]  # buyers with more than one order (seed 7), each missing one value


def members(n: int = 300, seed: int = 7) -> pd.DataFrame:
    """`n` members' rfm columns: repeat buyers, one-off buyers, never-ordered members (0 or
    missing orders) and buyers with missing values, in random order."""
    rng = np.random.default_rng(seed)
    orders = rng.choice([0.0, 1.0, 1.0, 2.0, 3.0, 5.0, 12.0, 40.0, np.nan], size=n)
    first = rng.uniform(1.0, 700.0, n).round()
    last = np.where(orders > 1, rng.uniform(0.0, 1.0, n) * first, first).round()
    frame = pd.DataFrame(
        {
            "frequency": orders,
            "recency_days": last,
            "days_since_first_order": first,
            "avg_order_value": rng.gamma(2.0, 30.0, n),
            "first_order_amount": rng.gamma(2.0, 30.0, n),
        }
    )
    never = ~(orders >= 1)
    frame.loc[never, list(INPUT_COLUMNS[1:])] = np.nan
    for k, column in enumerate(INPUT_COLUMNS[1:]):  # a buyer missing each value in turn
        frame.loc[MISSING[k], column] = np.nan
    return frame


def frame_offsets(prior: BtydPrior, rows: pd.DataFrame) -> pd.DataFrame:
    """The offsets through `btyd_inputs` and `outlook_frame` (frames all the way)."""
    summary = btyd_inputs(rows.reset_index(drop=True))
    found = outlook_frame(prior.outlook, summary, prior.horizon_days / 7.0)
    forecast = pd.DataFrame({k: np.full(len(rows), v) for k, v in FALLBACK.items()})
    columns = ["p_no_purchase", "expected_purchases", "expected_spend"]
    forecast.loc[summary.index.to_numpy(int), columns] = found[columns].to_numpy()
    return offsets_of(forecast)


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_one_member_per_call_equals_the_frame_path(name: str) -> None:
    """Given a range of members (incl. one-off buyers, missing values, never ordered), when
    each is scored alone through `offsets_matrix` (a live request), then its offsets equal
    those of all members at once, and the frame path's where that has all values, to 1e-12
    (where a value is missing the frame path gives NaN, the prior a finite fallback)."""
    kind, params = PRIORS[name]
    prior = BtydPrior(outlook_from_params(kind, params), 91.0)
    rows = members()
    names = ["other", *reversed(INPUT_COLUMNS)]  # serving's matrices: any column order
    matrix = np.column_stack([np.zeros(len(rows)), *(rows[c].to_numpy() for c in names[1:])])

    alone = pd.concat(
        [prior.offsets_matrix(matrix[i : i + 1], names) for i in range(len(rows))],
        ignore_index=True,
    )

    expected = frame_offsets(prior, rows)
    unknown = expected.isna().any(axis=1).to_numpy()
    assert unknown.any() and set(np.flatnonzero(unknown)) <= set(MISSING), "NaN only there"
    assert np.isfinite(alone.to_numpy()).all(), "a missing rfm value gives finite offsets"
    pd.testing.assert_frame_equal(
        alone[~unknown], expected[~unknown], check_exact=False, rtol=1e-12, atol=1e-12
    )
    pd.testing.assert_frame_equal(
        prior.offsets_matrix(matrix, names), alone, check_exact=False, rtol=1e-12
    )


def test_equal_priors_loaded_apart_share_one_forecast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given two equal priors (two models of a bundle), when both score the same member, then
    the forecast is computed once; a prior with another window computes its own."""
    kind, params = PRIORS["paretonbd+gg"]
    first, second = (BtydPrior(outlook_from_params(kind, params), 180.0) for _ in range(2))
    other = BtydPrior(outlook_from_params(kind, params), 30.0)
    matrix, names = members(seed=11).to_numpy()[:1], list(INPUT_COLUMNS)
    computed = []
    real = BtydPrior.forecast_arrays

    def counted(self: BtydPrior, rfm: list[np.ndarray]) -> dict[str, np.ndarray]:
        computed.append(self.horizon_days)
        return real(self, rfm)

    monkeypatch.setattr(BtydPrior, "forecast_arrays", counted)
    prior_module._shared_offsets.cache_clear()  # whatever other tests left there

    got = first.offsets_matrix(matrix, names)
    again = second.offsets_matrix(matrix, names)
    shorter = other.offsets_matrix(matrix, names)

    pd.testing.assert_frame_equal(again, got)
    assert computed == [180.0, 30.0], "an equal prior should reuse the forecast"
    assert not shorter.equals(got), "another window forecasts other numbers"
