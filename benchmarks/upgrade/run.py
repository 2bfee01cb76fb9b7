"""Upgrade timing (`decisions.upgrade`) against simulated members, and its cost.

Accuracy: for each member profile, 20,000 simulated futures: orders Poisson over the period with
a gamma-distributed rate per member (the heterogeneity BTYD models assume), gamma order values,
and the old spend of the 365-day window leaving it spread evenly inside the 30 / 90 / 365-day
bands (as the model assumes). The forecast handed to the model is the simulated spend's own
mean and p10 / p50 / p90 over the horizon (a perfect spend model), so the gap measured is the
upgrade model's alone. The simulated chance is the share of futures whose growth value reaches
the threshold at some order within the period.

Speed: `upgrade_timing` on 1,000,000 members (one core, numpy).

    .venv/bin/python -m benchmarks.upgrade.run       # writes benchmarks/upgrade/results.json
"""

from __future__ import annotations

import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from decisions.upgrade import SpendForecast, TierState, upgrade_probability, upgrade_timing

H = T = 365.0
SIMS = 20_000
MAX_ORDERS = 80
# (orders a year, rate shape, mean order value, order value shape, distance, old, mid, recent):
# net spend of the window older than 90 days, 30-90 days old and of the last 30 days.
PROFILES = (
    (4, 2.0, 60, 2.0, 200, 0, 0, 0),
    (4, 2.0, 60, 2.0, 400, 0, 0, 0),
    (2, 1.0, 80, 1.5, 150, 0, 0, 0),
    (12, 5.0, 30, 3.0, 300, 0, 0, 0),
    (6, 3.0, 50, 2.0, 100, 300, 60, 40),
    (6, 3.0, 50, 2.0, 300, 300, 60, 40),
    (10, 4.0, 40, 2.0, 150, 600, 100, 60),
    (1, 0.7, 100, 1.5, 80, 150, 0, 0),
    (3, 1.5, 70, 2.0, 50, 250, 80, 30),
    (12, 5.0, 30, 3.0, 60, 200, 50, 20),
)


def simulate(profile: tuple[float, ...], rng: np.random.Generator) -> tuple[float, SpendForecast]:
    """(simulated chance of reaching the tier within T, the perfect forecast over H)."""
    per_year, shape, value, value_shape, distance, old, mid, recent = profile
    rate = rng.gamma(shape, per_year / shape, SIMS) / 365.0
    count = np.minimum(rng.poisson(rate * T), MAX_ORDERS)
    real = np.arange(MAX_ORDERS)[None, :] < count[:, None]
    times = np.sort(np.where(real, rng.uniform(0, T, (SIMS, MAX_ORDERS)), np.inf), axis=1)
    values = np.where(real, rng.gamma(value_shape, value / value_shape, (SIMS, MAX_ORDERS)), 0.0)
    spent = np.cumsum(values, axis=1)
    dropped = np.interp(
        np.where(np.isfinite(times), times, T),
        [0, 275, 335, 365],
        [0, old, old + mid, old + mid + recent],
    )
    reached = ((spent - dropped >= distance) & np.isfinite(times)).any(axis=1)
    total = spent[:, -1]
    q = np.quantile(total, [0.1, 0.5, 0.9])
    forecast = SpendForecast(*(np.array([v]) for v in (total.mean(), *q)), horizon_days=H)
    return float(reached.mean()), forecast


def accuracy() -> list[dict[str, float | bool]]:
    rng = np.random.default_rng(2026)
    rows = []
    for profile in PROFILES:
        simulated, forecast = simulate(profile, rng)
        _, _, _, _, distance, old, mid, recent = profile
        state = TierState(
            *(
                np.array([v], dtype=float)
                for v in (distance, recent, recent + mid, old + mid + recent)
            )
        )
        modelled = float(upgrade_probability(state, forecast, T)[0])
        rows.append(
            {
                "profile": list(profile),
                "spend_leaves_window": bool(old + mid + recent > 0),
                "simulated": round(simulated, 3),
                "modelled": round(modelled, 3),
            }
        )
        print(f"{profile}: simulated {simulated:.3f} modelled {modelled:.3f}")
    return rows


def speed(n: int = 1_000_000) -> float:
    rng = np.random.default_rng(0)
    mean = rng.gamma(1.0, 300.0, n)
    state = TierState(
        rng.uniform(1, 500, n), rng.gamma(0.5, 30, n), rng.gamma(1, 90, n), rng.gamma(2, 200, n)
    )
    forecast = SpendForecast(mean, 0.2 * mean, 0.8 * mean, 2.2 * mean, horizon_days=H)
    start = time.perf_counter()
    upgrade_timing(state, forecast, 365)
    seconds = time.perf_counter() - start
    print(f"upgrade_timing on {n:,} members: {seconds:.2f} s")
    return seconds


def main() -> None:
    rows = accuracy()
    seconds = speed()
    out = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "accuracy": rows,
        "seconds_per_million": round(seconds, 3),
    }
    path = Path(__file__).with_name("results.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
