"""Passwords never leave the process: URIs, DSNs and log records."""

from __future__ import annotations

import logging

import pytest

from memberscore.redact import RedactingFilter, frames_only, redact

SECRET = "s3cr3t-PASSWORD"
# Built, so that no source line a traceback shows holds it.
MEMBER = f"member-{4700 + 11}"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"postgresql+psycopg://user:{SECRET}@db.internal:5432/mlflow", "user:***@db.internal"),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1"),
        (f"host=db user=app password={SECRET} dbname=x", "password=*** dbname=x"),
        (f"127.0.0.1:6379,password={SECRET},ssl=true", "password=***,ssl=true"),
        (f"https://h/p?user=a&password={SECRET}&x=1", "password=***&x=1"),
        (f"could not connect to 'postgresql://u:{SECRET}@h/d' (OperationalError)", "u:***@h/d"),
        (f"PASSWORD='{SECRET}'", "PASSWORD=***"),
    ],
)
def test_redact_masks_the_password_and_keeps_the_rest(text: str, kept: str) -> None:
    masked = redact(text)
    assert SECRET not in masked, f"the password survived: {masked}"
    assert kept in masked, f"redaction removed more than the password: {masked}"


def test_redact_leaves_texts_without_secrets_alone() -> None:
    for text in ("sqlite:///mlruns/mlflow.db", "http://127.0.0.1:5000", "a: b @ c", "plain"):
        assert redact(text) == text


def test_filter_redacts_message_arguments_and_tracebacks() -> None:
    # Given a log record whose argument and exception carry a password URI
    uri = f"postgresql://user:{SECRET}@host/db"
    try:
        raise ConnectionError(f"cannot reach {uri}")
    except ConnectionError:
        import sys

        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "registry %s", (uri,), sys.exc_info()
        )
    # When the filter sees it, then neither the message nor the traceback holds the password
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert SECRET not in text, text
    assert "user:***@host" in text


def _failing_lookup(member_id: str) -> None:
    """Raise as a database driver does: the statement's parameters in the exception text."""
    try:
        raise KeyError(member_id)
    except KeyError as error:
        raise RuntimeError(f"SELECT * FROM contacts WHERE member_id = '{member_id}'") from error


def test_frames_only_keeps_frames_and_types_but_no_message() -> None:
    """Issue 14 finding 8: a traceback logged by the API holds no request data."""
    # Given an exception whose message (and whose cause's) carries a member id
    try:
        _failing_lookup(MEMBER)
    except RuntimeError as error:
        text = frames_only(error)
    # Then the frames and both exception types are there, the member id is not
    assert MEMBER not in text, f"a member id reached the traceback:\n{text}"
    assert "_failing_lookup" in text and "builtins.KeyError" in text, text
    assert "builtins.RuntimeError" in text and "direct cause" in text, text


def test_filter_without_messages_logs_frames_only() -> None:
    """Issue 14 finding 8: `RedactingFilter(messages=False)` withholds exception messages."""
    try:
        _failing_lookup(MEMBER)
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "POST %s failed", ("/v1/scores",), sys.exc_info()
        )
    assert RedactingFilter(messages=False).filter(record)
    text = logging.Formatter().format(record)
    assert MEMBER not in text, text
    assert "POST /v1/scores failed" in text and "_failing_lookup" in text, text
