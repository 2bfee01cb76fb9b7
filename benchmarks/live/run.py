"""Live scoring's CPU per call: `serving.scoring.score.score` for one member per call (the
score API's path when no published card is fresh), on the API benchmark's store
(`benchmarks/api/store.py`; built first when missing) and its latest feature snapshot.

The bundle is loaded the way the API loads it (`ModelHolder.refresh`, which builds the reason
models' SHAP tables); then: the wall time of the first call after the load; and, members in
turn after a warm-up (each member once), the process CPU time per call (less sensitive to a
busy machine than wall time), of which the BTYD prior's offsets (`training.models.prior`),
with the load average and whether the bundle serves a BTYD outlook (P(alive), next order).
Prints JSON and writes `--out` (`benchmarks/live/results.json`). Run heavy:

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.live.run \
        [--store data/benchmarks/api]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
WARM_UP = 40


def timed(owner: Any, name: str, spent: list[float]) -> None:
    """Wrap `owner.name` so that its process CPU time adds up in `spent[0]`."""
    real: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return real(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - started

    setattr(owner, name, wrapper)


def measure(store_root: Path, calls: int) -> dict[str, Any]:
    """First-call wall time and per-call CPU of `calls` one-member `score` calls."""
    import pandas as pd

    from benchmarks.api.store import Store
    from serving.scoring.adapters import open_domain
    from serving.scoring.bundle import ModelHolder
    from serving.scoring.registry import RegistrySource
    from serving.scoring.score import score
    from serving.scoring.sources import MemberFeatures
    from training.models import prior

    settings = Store(store_root).settings()
    holder = ModelHolder(RegistrySource(settings))
    started = time.perf_counter()
    holder.refresh()
    load_s = time.perf_counter() - started
    bundle, domain = holder.current, open_domain(settings)
    snapshot = sorted((store_root / "data" / "features").glob("snapshot-*.parquet"))[-1]
    frame = pd.read_parquet(snapshot)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    rows = {str(r["member_id"]): r for r in records}
    features = MemberFeatures(rows, {m: datetime(2025, 12, 8, tzinfo=UTC) for m in rows})
    ids = list(rows)
    if len(ids) < WARM_UP + calls:
        raise SystemExit(f"the store has {len(ids)} members: ask for at most {len(ids) - WARM_UP}")
    started = time.perf_counter()
    score([ids[0]], features, bundle, domain, settings)
    first_ms = (time.perf_counter() - started) * 1e3
    for member in ids[:WARM_UP]:
        score([member], features, bundle, domain, settings)
    measured = ids[WARM_UP : WARM_UP + calls]  # each once: none is in a cache of recent ones
    spent = [0.0]
    name = "offset_columns" if hasattr(prior.BtydPrior, "offset_columns") else "offsets_matrix"
    timed(prior.BtydPrior, name, spent)
    if name == "offset_columns":  # the spend model still reads a frame of them
        timed(prior.BtydPrior, "offsets_matrix", [0.0])
    cpu = time.process_time()
    for member in measured:
        score([member], features, bundle, domain, settings)
    cpu = time.process_time() - cpu
    return {
        "bundle_load_s": round(load_s, 2),
        "outlook_served": bundle.outlook is not None,
        "first_call_ms": round(first_ms, 1),
        "calls": calls,
        "cpu_ms_per_call": round(cpu / calls * 1e3, 2),
        "prior_offsets_cpu_ms_per_call": round(spent[0] / calls * 1e3, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=Path("data/benchmarks/api"))
    parser.add_argument("--calls", type=int, default=2000, help="Members scored, one a call.")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    from benchmarks.api.store import Store, build

    store = Store(args.store.resolve())
    if not store.built:
        build(store, 3000, 42)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "store": str(args.store),
        **measure(args.store.resolve(), args.calls),
    }
    print(json.dumps(results, indent=1))
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
