"""The timed steps of the feature benchmark; each runs in its own child process.

Every step returns a dict of figures; `seconds` is the wall time of the step itself (Python and
Feast imports, `apply` and other preparation are not counted).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd

from memberscore.settings import Settings


def settings_for(
    work: Path, profile: str = "local", project: str = "memberscore", schema: str | None = None
) -> Settings:
    """Settings over `work` (data dir) with its own Feast repo folder and project."""
    base = Settings()
    url = (
        base.postgres_url
        if schema is None
        else (f"{base.postgres_url}?options=-csearch_path%3D{schema}")
    )
    return Settings(
        data_dir=work,
        feast_repo=work / "feature_repo",
        profile=profile,
        feast_project=project,
        postgres_url=url,
    )


def build(work: Path, as_of: date) -> dict[str, Any]:
    """`features build` of one cutoff over the lake in `work`."""
    from features import build as job

    started = perf_counter()
    [path] = job.run(settings_for(work), [as_of], echo=lambda _: None)
    seconds = perf_counter() - started
    return {"seconds": seconds, "members": pd.read_parquet(path, columns=["member_id"]).shape[0]}


def materialize(
    work: Path, profile: str, method: str, project: str, schema: str | None, batch_rows: int
) -> dict[str, Any]:
    """`apply` (untimed), then `features materialize` with `method` ("bulk" or "feast")."""
    from features import store

    settings = settings_for(work, profile, project, schema)
    store.apply(settings)
    started = perf_counter()
    report = store.materialize(settings, method=method, batch_rows=batch_rows)  # type: ignore[arg-type]
    return {"seconds": perf_counter() - started, "members": report.members, "values": report.values}


def stock_materialize(
    work: Path, profile: str, project: str, schema: str | None, as_of: date
) -> dict[str, Any]:
    """`apply` (untimed), then Feast's own `FeatureStore.materialize` over the cutoff's day."""
    from features import store

    settings = settings_for(work, profile, project, schema)
    store.apply(settings)
    feast = store.feature_store(settings)
    start = pd.Timestamp(as_of, tz="UTC").to_pydatetime()
    started = perf_counter()
    feast.materialize(start_date=start - timedelta(days=1), end_date=start + timedelta(days=1))
    members = pd.read_parquet(store.snapshot_files(settings)[-1], columns=["member_id"]).shape[0]
    return {"seconds": perf_counter() - started, "members": members}


def check_online(
    work: Path, profile: str, project: str, schema: str | None, sample: int = 1000
) -> dict[str, Any]:
    """Read `sample` members back with get_online_features and compare with the snapshot."""
    from features import store

    settings = settings_for(work, profile, project, schema)
    snapshot = store.latest_snapshot(settings).sample(sample, random_state=0)
    online = store.online_features(settings, snapshot["member_id"].astype(str).tolist())
    expected = snapshot.set_index("member_id")
    got = online.set_index("member_id").loc[expected.index]
    names = [c for c in expected.columns if c != "as_of"]
    equal = all(
        ((e.isna() & g.isna()) | (e == g).fillna(False)).all()
        for e, g in ((expected[c], got[c].astype(expected[c].dtype)) for c in names)
    )
    return {"members_checked": sample, "all_equal": bool(equal)}


def retrieval(work: Path, service: str, offset_hours: float) -> dict[str, Any]:
    """`training_frame` (get_historical_features) for one row per member of the snapshot."""
    from features import store

    settings = settings_for(work)
    snapshot = pd.read_parquet(store.snapshot_files(settings)[-1], columns=["member_id", "as_of"])
    entity_df = pd.DataFrame(
        {
            "member_id": snapshot["member_id"].astype(str),
            "event_timestamp": snapshot["as_of"] + pd.Timedelta(hours=offset_hours),
        }
    )
    store.apply(settings)
    started = perf_counter()
    frame = store.training_frame(settings, entity_df, service)
    seconds = perf_counter() - started
    features = [c for c in frame.columns if c not in ("member_id", "event_timestamp")]
    return {
        "seconds": seconds,
        "rows": len(frame),
        "features": len(features),
        "rows_with_features": int(frame[features].notna().any(axis=1).sum()),
    }
