"""Domain errors → HTTP: the only place they become status codes. Bodies are `{"detail": ...}`
with a plain message; validation errors name the field. Every message is redacted (no URI
password), and a 500 is logged with its route template, error type and a traceback of frames
only (`serving.api.logs`): never a body, an id or an exception message.

`error_responses(...)` documents the statuses of a route in OpenAPI; every status the API
answers is documented on the routes that answer it (tests/serving/api/test_openapi.py).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from memberscore.errors import (
    DataNotFound,
    MemberNotFound,
    MemberscoreError,
    ModelNotReady,
    StoreUnavailable,
)
from memberscore.redact import frames_only, redact
from serving.api.logs import LOGGED
from serving.online.contact_log import DuplicateContact, UnknownContact

LOG = logging.getLogger("memberscore.serving")
RETRY_AFTER_SECONDS = "5"

STATUS_OF: tuple[tuple[type[MemberscoreError], int], ...] = (
    (MemberNotFound, status.HTTP_404_NOT_FOUND),
    (UnknownContact, status.HTTP_404_NOT_FOUND),
    (DuplicateContact, status.HTTP_409_CONFLICT),
    # Anything else missing (no feature views applied, no snapshot) is a setup problem.
    (DataNotFound, status.HTTP_503_SERVICE_UNAVAILABLE),
    (ModelNotReady, status.HTTP_503_SERVICE_UNAVAILABLE),
    (StoreUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
)


class ErrorOut(BaseModel):
    """A plain-language error."""

    detail: str


class FieldError(BaseModel):
    """One invalid input: `field` is its dotted path inside `loc[0]` (body, path, query)."""

    field: str
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """Every invalid input of a request."""

    detail: list[FieldError]


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}
_ERRORS: dict[int, tuple[type[BaseModel], str]] = {
    400: (ErrorOut, "The request body is not valid UTF-8; send JSON encoded as UTF-8."),
    401: (ErrorOut, "Missing or invalid API key."),
    403: (ErrorOut, "The API key lacks the scope."),
    404: (ErrorOut, "Unknown member or contact."),
    409: (ErrorOut, "The contact id is already recorded."),
    413: (ErrorOut, "Request body larger than `serving.max_body_bytes`."),
    422: (ValidationErrorOut, "Invalid input; `field` names each offending field."),
    429: (
        ErrorOut,
        "The API key asked next-best actions for more members per second than "
        "`serving.decision_members_per_second`; retry after Retry-After seconds.",
    ),
    503: (ErrorOut, "Models not loaded, the service starting or a store down; retry."),
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses=` of the error statuses `codes` (of _ERRORS), with body models."""
    found: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        model, description = _ERRORS[code]
        found[code] = {"model": model, "description": description}
        if code in (status.HTTP_429_TOO_MANY_REQUESTS, status.HTTP_503_SERVICE_UNAVAILABLE):
            found[code]["headers"] = _RETRY_AFTER
    return found


# Any request: BodySizeLimit answers 413 before routing (app.py adds it to every router).
ANY_REQUEST = error_responses(413)
# A route behind an API key (503 while the service starts or a store is down) ...
KEYED_RESPONSES = error_responses(401, 403, 503)
# ... with an id in its path (unknown: 404; malformed: 422) ...
ERROR_RESPONSES = error_responses(401, 403, 404, 422, 503)
# ... or with a JSON body (not UTF-8: 400; invalid: 422). Combine them with `|`.
BODY_RESPONSES = error_responses(400, 401, 403, 422, 503)


async def domain_error(request: Request, error: Exception) -> JSONResponse:
    """Map a domain error to its status; 503s carry Retry-After."""
    code = next(
        (code for kind, code in STATUS_OF if isinstance(error, kind)),
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if code == 503 else None
    if code >= 500:
        LOG.warning("%s %s: %s", request.method, _route(request), type(error).__name__)
    return JSONResponse({"detail": redact(error)}, status_code=code, headers=headers)


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 naming each offending field (`field` is the dotted path inside its location)."""
    assert isinstance(error, RequestValidationError)
    detail = [
        {
            "field": ".".join(str(part) for part in item["loc"][1:]) or str(item["loc"][0]),
            "loc": list(item["loc"]),
            "msg": item["msg"],
            "type": item["type"],
        }
        for item in error.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def http_error(request: Request, error: Exception) -> Response:
    """FastAPI's answer to an HTTPException, except that a body which is not UTF-8 (FastAPI's
    400 "There was an error parsing the body") says so and what to send."""
    assert isinstance(error, StarletteHTTPException)
    cause = error.__cause__
    if error.status_code == status.HTTP_400_BAD_REQUEST and isinstance(cause, UnicodeDecodeError):
        detail = (
            f"the request body is not valid UTF-8 (byte {cause.start}): send JSON encoded as "
            "UTF-8 with Content-Type: application/json"
        )
        return JSONResponse({"detail": detail}, status_code=error.status_code)
    return await http_exception_handler(request, error)


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """500 without internals. The log gets the route template, the error type and the
    traceback's frames, without exception messages (they may hold SQL parameters or ids);
    uvicorn's repeat of it is then dropped (`serving.api.logs`)."""
    route, kind = _route(request), type(error).__name__
    LOG.error("%s %s failed: %s\n%s", request.method, route, kind, frames_only(error))
    with contextlib.suppress(AttributeError):  # a type without attributes: logged twice
        setattr(error, LOGGED, True)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def _route(request: Request) -> str:
    """The route template of a request (no member id), or 'unmatched'."""
    return getattr(request.scope.get("route"), "path", "unmatched")


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(MemberscoreError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
