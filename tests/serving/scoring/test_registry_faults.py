"""Faults of the model registry (issue 14, findings 1 and 5): damaged artifacts are refused
with model, version and file named while the bundle in service stays; an unreachable or
missing registry fails fast with the reason, and never leaves an empty database behind."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from memberscore.errors import StoreUnavailable
from memberscore.settings import Settings
from serving.scoring.bundle import ModelHolder
from serving.scoring.registry import RegistrySource
from tests.serving.scoring.test_registry import champions_in, fit, register, training_frame
from training import tracking
from training.models import persistence

REPO = Path(__file__).resolve().parents[3]

# Run in a child process: a holder serving the champions, then alias champion moved to the
# damaged churn version and a refresh. On code that loads the booster in-process the child
# dies (SIGSEGV / SIGABRT) instead of answering.
CHILD = """
import json, sys
from memberscore.settings import Settings
from serving.scoring.bundle import ModelHolder
from serving.scoring.registry import RegistrySource
from training import tracking

settings = Settings.model_validate_json(sys.argv[1])
holder = ModelHolder(RegistrySource(settings))
holder.refresh()
before = holder.current.fingerprint
tracking.client(settings).set_registered_model_alias("churn", "champion", sys.argv[2])
try:
    holder.refresh()
    error = None
except Exception as failure:
    error = f"{type(failure).__name__}: {failure}"
print(json.dumps({"before": before, "after": holder.current.fingerprint, "error": error,
                  "last_error": holder.last_error}))
"""


@pytest.fixture
def fresh_registry(tmp_path: Path, member_rows: dict[str, dict[str, Any]]) -> Settings:
    """A temp MLflow store of its own with churn, activation and clv champions (version 1)."""
    return champions_in(tmp_path, member_rows, seed=1)


def new_version(settings: Settings, member_rows: dict, *, checksums: bool) -> tuple[str, str]:
    """A second churn version (alias champion left on version 1), with its checksums recorded
    as training records them or without (a version registered before they were); returns
    (version, run id)."""
    client = tracking.client(settings)
    champion = client.get_model_version_by_alias("churn", "champion").version
    version = register(settings, "churn", fit("churn", training_frame(member_rows, 2), 2))
    client.set_registered_model_alias("churn", "champion", champion)
    run_id = client.get_model_version("churn", version).run_id
    if checksums:
        uri = f"runs:/{run_id}/{tracking.NATIVE_DIR}"
        tracking.record_checksums(client, "churn", version, uri)
    return version, run_id


def stored_file(settings: Settings, run_id: str, name: str) -> Path:
    """The file `native/<name>` of run `run_id` in the (local) artifact store."""
    root = tracking.client(settings).get_run(run_id).info.artifact_uri
    return Path(unquote(urlparse(root).path)) / tracking.NATIVE_DIR / name


def truncate(path: Path, share: float = 0.9) -> None:
    """Cut `path` to `share` of its bytes (a copy interrupted mid-file)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])


@pytest.mark.parametrize("checksums", [True, False], ids=["checksummed", "before-checksums"])
def test_a_truncated_champion_booster_is_refused_and_the_old_bundle_keeps_serving(
    fresh_registry: Settings, member_rows: dict, checksums: bool
) -> None:
    """Issue 14 finding 1. Given a holder serving churn version 1, when alias champion moves
    to a version whose booster.txt was cut short in the artifact store, the refresh is refused
    naming model, version and file (by its checksum when one was recorded, else by the booster
    probe in a child process), the process lives, and version 1 keeps serving."""
    version, run_id = new_version(fresh_registry, member_rows, checksums=checksums)
    truncate(stored_file(fresh_registry, run_id, "booster.txt"))

    done = subprocess.run(
        [sys.executable, "-c", CHILD, fresh_registry.model_dump_json(), version],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )

    assert done.returncode == 0, f"the serving process died ({done.returncode}): {done.stderr}"
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["before"]["churn"] == answer["after"]["churn"] == "1", "version 1 stays"
    error = answer["error"] or ""
    assert error.startswith("DamagedModel: churn version 2 refused: native/booster.txt "), error
    why = "sha256 recorded at registration" if checksums else "cannot be loaded by LightGBM"
    assert why in error, f"the refusal says why: {error}"
    assert answer["last_error"] == error, "/readyz and /v1/models show it"


def test_a_replaced_file_is_refused_by_batch_scoring(
    fresh_registry: Settings,
    member_rows: dict,
    snapshot: Any,
    tmp_path: Path,
) -> None:
    """Issue 14 finding 1. Given a champion whose booster.txt was replaced in the artifact store
    by another valid booster (LightGBM would load it and score with the wrong model), batch
    scoring, which loads through the same registry code, stops with an error naming model,
    version and file, and writes no scores."""
    from pipelines.batch import job as batch
    from tests.pipelines.batch.world import write_snapshot
    from tests.serving.conftest import CUTOFF

    version, run_id = new_version(fresh_registry, member_rows, checksums=True)
    client = tracking.client(fresh_registry)
    client.set_registered_model_alias("churn", "champion", version)
    first = client.get_model_version("churn", "1").run_id
    target = stored_file(fresh_registry, run_id, "booster.txt")
    target.write_bytes(stored_file(fresh_registry, first, "booster.txt").read_bytes())
    settings = write_snapshot(fresh_registry, snapshot, data_dir=tmp_path / "data")

    with pytest.raises(persistence.DamagedModel) as refused:
        batch.run(settings, CUTOFF, tmp_path / "batch", progress=False)

    message = str(refused.value)
    assert message.startswith(f"churn version {version} refused: native/booster.txt "), message
    assert "memberscore promote churn" in message, "says what to do next"
    assert not list((tmp_path / "batch").rglob("*.parquet")), "no scores from a refused model"


def test_registration_records_checksums_that_the_loader_accepts(fresh_registry: Settings) -> None:
    """Issue 14 finding 1. Checksums recorded for a version match its stored native folder, so
    an undamaged version loads with them."""
    client = tracking.client(fresh_registry)
    run_id = client.get_model_version("clv", "1").run_id
    sums = tracking.record_checksums(client, "clv", "1", f"runs:/{run_id}/native")

    bundle = RegistrySource(fresh_registry).load()

    assert set(sums) == {
        "model.json",
        *(f"{s}.txt" for s in ("count", "spend", "q10", "q50", "q90")),
    }
    tag = json.loads(client.get_model_version("clv", "1").tags[tracking.CHECKSUM_TAG])
    assert tag == sums and bundle.fingerprint["clv"] == "1"


def test_a_sqlite_uri_to_a_missing_file_is_an_error_naming_it_and_creates_nothing(
    tmp_path: Path,
) -> None:
    """Issue 14 finding 5. Serving (and batch scoring) given a SQLite tracking URI whose file does
    not exist says so, naming the path, instead of creating an empty database and asking for
    `memberscore train`; neither the file nor its folder appears."""
    path = tmp_path / "typo" / "mlflow.db"
    settings = Settings(mlflow_tracking_uri=f"sqlite:///{path}")
    holder = ModelHolder(RegistrySource(settings))

    with pytest.raises(tracking.RegistryNotFound, match="does not exist") as missing:
        holder.refresh()

    assert str(path) in str(missing.value), f"the path is named: {missing.value}"
    assert str(path) in (holder.last_error or ""), "/readyz shows the same reason"
    assert not path.exists() and not path.parent.exists(), "no empty database is created"


@pytest.fixture
def silent_database() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung database host)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_hung_registry_database_fails_within_the_timeout(silent_database: int) -> None:
    """Issue 14 finding 5. Given a PostgreSQL registry whose host accepts connections but never
    answers, a registry look-up fails with StoreUnavailable within `mlflow_timeout_seconds`
    (plus slack), not after MLflow's retries (about 100 s) or never; the password is masked."""
    uri = f"postgresql+psycopg://ms:hunter2secret@127.0.0.1:{silent_database}/mlflow"
    settings = Settings(mlflow_tracking_uri=uri, mlflow_timeout_seconds=2)
    outcome: list[BaseException | None] = []

    def look() -> None:
        try:
            RegistrySource(settings).fingerprint()
            outcome.append(None)
        except BaseException as error:  # collected for the assertion below
            outcome.append(error)

    started = time.monotonic()
    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    thread.join(timeout=20)
    elapsed = time.monotonic() - started

    assert outcome, f"the look-up still hangs after {elapsed:.0f} s"
    assert isinstance(outcome[0], StoreUnavailable), repr(outcome[0])
    assert elapsed < 10, f"took {elapsed:.1f} s with a 2 s timeout"
    assert "cannot be reached" in str(outcome[0]) and "hunter2secret" not in str(outcome[0])


def test_a_changed_outlook_artifact_is_refused(fresh_registry: Settings) -> None:
    """Issue 14 finding 1. The BTYD outlook is checked like the boosters: its registration
    records the checksum of `btyd/outlook.json`, and a file edited in the artifact store
    afterwards is refused naming model, version and file."""
    import pandas as pd

    from features.families.btyd import fit_family
    from tests.serving.api.test_outlook import history
    from training.jobs import outlook as outlook_job

    record = outlook_job.log_outlook(
        fresh_registry, fit_family(history()), pd.Timestamp("2024-05-06"), {"roc_auc": 0.7}, {}
    )
    client = tracking.client(fresh_registry)
    client.set_registered_model_alias("btyd", "champion", record.version)
    assert RegistrySource(fresh_registry).load().fingerprint["btyd"] == record.version
    root = client.get_run(record.run_id).info.artifact_uri
    stored = Path(unquote(urlparse(root).path)) / outlook_job.ARTIFACT_DIR / "outlook.json"
    stored.write_text(stored.read_text().replace('"params"', '"params" ', 1))

    with pytest.raises(persistence.DamagedModel) as refused:
        RegistrySource(fresh_registry).load()

    message = str(refused.value)
    assert message.startswith(f"btyd version {record.version} refused: btyd/outlook.json "), message
    assert "sha256 recorded at registration" in message
