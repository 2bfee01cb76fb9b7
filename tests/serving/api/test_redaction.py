"""No secret and no request data leaves the score API: not in answers, not in logs.

Issue 14 finding 2 (a database password in /readyz, scoring 503s, /v1/models and the logs) and
finding 8 (a 500's traceback logged with the SQL parameters of the request; uvicorn's own
"Exception in ASGI application" record included).
"""

from __future__ import annotations

import io
import logging
import logging.config
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import sqlalchemy.exc
import uvicorn
from fastapi.testclient import TestClient

from memberscore.errors import StoreUnavailable
from memberscore.settings import Settings
from serving.api.app import create_app
from serving.api.deps import get_feature_reader
from serving.api.logs import log_config
from tests.serving.conftest import READ_KEY, FakeReader

PASSWORD = "PASSWORD"
UNREACHABLE = f"postgresql+psycopg://user:{PASSWORD}@127.0.0.1:1/db"
# Built, so that no source line a traceback shows holds them.
MEMBER = f"m{4700 + 11}"
ACTION = f"winback_{'e' + 'mail'}_{7 * 6}"
CONFIGURED = ("", "memberscore", "uvicorn", "uvicorn.error", "uvicorn.access", "mlflow")


@pytest.fixture
def api_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The API's logging config (`serving.api.logs.log_config`) applied, its handler writing
    to the returned buffer; MLflow's loggers propagate, as `memberscore serve` leaves them
    (MLFLOW_CONFIGURE_LOGGING=false). Every logger it touches is restored afterwards."""
    saved = {name: _state(logging.getLogger(name)) for name in CONFIGURED}
    monkeypatch.setenv("MLFLOW_CONFIGURE_LOGGING", "false")
    logging.getLogger("mlflow").handlers, logging.getLogger("mlflow").propagate = [], True
    buffer = io.StringIO()
    logging.config.dictConfig(log_config("INFO"))
    _write_to(buffer)
    yield buffer
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.level, logger.propagate = handlers, level, propagate
        logger.disabled = disabled


def _state(logger: logging.Logger) -> tuple[list[logging.Handler], int, bool, bool]:
    return list(logger.handlers), logger.level, logger.propagate, logger.disabled


def _write_to(buffer: io.StringIO) -> None:
    """Point the config's stderr handler (shared by every configured logger) at `buffer`."""
    handlers = [h for h in logging.getLogger("memberscore").handlers if h.name == "stderr"]
    assert handlers, "the log config names its handler 'stderr'"
    for handler in handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)


def test_an_unreachable_registry_password_is_in_no_answer_and_no_log(
    settings: Settings, api_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 finding 2, end to end: the real app and lifespan, MLflow's own retries cut."""
    import mlflow.store.db.utils

    monkeypatch.setattr(mlflow.store.db.utils, "MAX_RETRY_COUNT", 0)
    # Given the app configured with an MLflow URI holding a password, its database unreachable
    from memberscore.settings import ServingSettings
    from serving.api.security import hash_key

    configured = settings.model_copy(
        update={
            "mlflow_tracking_uri": UNREACHABLE,
            "serving": ServingSettings(api_keys=((hash_key(READ_KEY), "read"),)),
        }
    )
    headers = {"Authorization": f"Bearer {READ_KEY}"}
    with TestClient(create_app(configured)) as client:
        # When the load has been tried and a caller asks
        ready = _readyz_after_a_load(client)
        scores = client.get("/v1/members/m1/scores", headers=headers)
        models = client.get("/v1/models", headers=headers)
    logged = api_logs.getvalue()

    # Then every answer says where, with the password masked, and the logs hold no password
    assert ready.status_code == 503 and "user:***@127.0.0.1:1" in ready.text, ready.text
    assert scores.status_code == 503, scores.text
    assert models.status_code == 200 and models.json()["last_error"], models.text
    for name, text in (("/readyz", ready.text), ("scores", scores.text), ("models", models.text)):
        assert PASSWORD not in text, f"{name} answered the password: {text}"
    assert logged, "the failed model load was not logged at all"
    assert PASSWORD not in logged, f"the logs hold the password:\n{logged}"


def _readyz_after_a_load(client: TestClient, timeout_seconds: float = 30.0) -> httpx.Response:
    """/readyz once a model load has failed (the first load may run after start-up)."""
    deadline = time.monotonic() + timeout_seconds
    ready = client.get("/readyz")
    while _not_tried(ready.text) and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = client.get("/readyz")
    return ready


def _not_tried(readiness: str) -> bool:
    """True while /readyz says no load has been tried or finished yet."""
    return any(text in readiness for text in ("no load attempted yet", "load from the registry"))


class DownWithItsPassword(FakeReader):
    """An online store that is down, its error naming the connection string Feast was given
    (Redis host, port and password)."""

    def ping(self) -> None:
        raise StoreUnavailable(
            f"the Redis online store at 127.0.0.1:6379,password={PASSWORD} is down"
        )


def test_a_store_error_naming_a_password_is_answered_masked(
    client: TestClient, member_rows: dict[str, dict[str, Any]], read_headers: dict[str, str]
) -> None:
    """Issue 14 finding 2: a domain error's text (a Feast Redis connection string with its
    password) is masked in the 503 of a scoring call and in /readyz."""
    # Given the online store down, its error naming the connection string
    down = DownWithItsPassword(member_rows)
    client.app.dependency_overrides[get_feature_reader] = lambda: down

    # When a caller scores and asks for readiness
    scores = client.get("/v1/members/m1/scores", headers=read_headers)
    ready = client.get("/readyz")

    # Then both say what is down, without the password
    for name, answer in (("scores", scores), ("/readyz", ready)):
        assert answer.status_code == 503, f"{name}: {answer.text}"
        assert "127.0.0.1:6379,password=***" in answer.text, f"{name}: {answer.text}"
        assert PASSWORD not in answer.text, f"{name} answered the password: {answer.text}"


@pytest.mark.parametrize(
    "logger", ["memberscore.serving", "uvicorn.error", "mlflow.store", "redis"]
)
def test_the_api_log_config_masks_passwords_of_every_logger(
    api_logs: io.StringIO, logger: str
) -> None:
    """Issue 14 finding 2: our loggers, uvicorn's and the libraries' (through the root logger)
    all write through the redacting handler, messages and tracebacks alike."""
    try:
        raise ConnectionError(f"cannot reach {UNREACHABLE}")
    except ConnectionError:
        logging.getLogger(logger).warning("registry %s unreachable", UNREACHABLE, exc_info=True)

    logged = api_logs.getvalue()
    assert "user:***@127.0.0.1:1" in logged, f"the record of {logger} was not written:\n{logged}"
    assert PASSWORD not in logged, f"{logger} logged the password:\n{logged}"


class FailingReader:
    """An online store whose reads fail as a database driver fails: the statement's
    parameters (member and action id) in the exception text, chained to a KeyError."""

    def read(self, member_ids: Sequence[str], services: Sequence[str]) -> Any:
        self._fail(member_ids)

    def published(self, member_ids: Sequence[str]) -> Any:
        self._fail(member_ids)

    def ping(self) -> None:
        return None

    @staticmethod
    def _fail(member_ids: Sequence[str]) -> None:
        params = {"member_id": member_ids[0], "action_id": ACTION}
        try:
            raise KeyError(member_ids[0])
        except KeyError as error:
            raise sqlalchemy.exc.DataError(
                "SELECT * FROM t WHERE member_id = %(member_id)s", params, error
            ) from error


def test_a_500_logs_route_type_and_frames_but_no_request_data(
    client: TestClient, read_headers: dict[str, str], api_logs: io.StringIO
) -> None:
    """Issue 14 finding 8: the traceback of a 500 is logged without the member or action id
    that SQLAlchemy put into the exception's text."""
    # Given a store whose failure carries the request's ids
    client.app.dependency_overrides[get_feature_reader] = FailingReader
    quiet = TestClient(client.app, raise_server_exceptions=False)

    # When a request fails with it
    answer = quiet.post("/v1/scores", json={"member_ids": [MEMBER]}, headers=read_headers)
    logged = api_logs.getvalue()

    # Then the caller gets a plain 500, the log the route, the type and the frames, no ids
    assert answer.status_code == 500 and answer.json() == {"detail": "internal error"}
    assert "POST /v1/scores failed: DataError" in logged, logged
    assert "Traceback" in logged and "in _fail" in logged, f"no frames logged:\n{logged}"
    assert MEMBER not in logged and ACTION not in logged, f"request data logged:\n{logged}"


@pytest.fixture
def served(client: TestClient) -> Iterator[str]:
    """The conftest app (its fakes, no lifespan) on a real uvicorn, with the API's log config
    applied by uvicorn itself; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(client.app, log_config=log_config("INFO"), lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_uvicorns_own_record_of_a_500_holds_no_request_data(
    client: TestClient, read_headers: dict[str, str], api_logs: io.StringIO, served: str
) -> None:
    """Issue 14 finding 8: Starlette re-raises a handled 500 and uvicorn logs it ("Exception in
    ASGI application" with the full traceback); under the API's log config that record holds
    no request data, and the 500 is logged once."""
    _write_to(api_logs)  # uvicorn applied the config again: capture its handler too
    client.app.dependency_overrides[get_feature_reader] = FailingReader

    answer = httpx.post(f"{served}/v1/scores", json={"member_ids": [MEMBER]}, headers=read_headers)
    time.sleep(0.2)  # uvicorn logs after the answer is sent
    logged = api_logs.getvalue()

    assert answer.status_code == 500
    assert "POST /v1/scores failed: DataError" in logged, logged
    assert MEMBER not in logged and ACTION not in logged, f"request data logged:\n{logged}"
    assert "Exception in ASGI application" not in logged, f"the 500 was logged twice:\n{logged}"
