"""Domain errors → HTTP: the only place they become status codes. Bodies are `{"detail": ...}`
with a plain message; validation errors name the field."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from memberscore.errors import (
    DataNotFound,
    MemberNotFound,
    MemberscoreError,
    ModelNotReady,
    StoreUnavailable,
)
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


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid API key."},
    403: {"model": ErrorOut, "description": "The API key lacks the scope."},
    404: {"model": ErrorOut, "description": "Unknown member or contact."},
    413: {"model": ErrorOut, "description": "Request body too large."},
    503: {"model": ErrorOut, "description": "Models not loaded or a store is down; retry."},
}


async def domain_error(request: Request, error: Exception) -> JSONResponse:
    """Map a domain error to its status; 503s carry Retry-After."""
    code = next(
        (code for kind, code in STATUS_OF if isinstance(error, kind)),
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if code == 503 else None
    if code >= 500:
        LOG.warning("%s %s: %s", request.method, _route(request), type(error).__name__)
    return JSONResponse({"detail": str(error)}, status_code=code, headers=headers)


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


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """500 without internals; the log gets the route and the error type (never a body)."""
    LOG.error("%s %s failed: %s", request.method, _route(request), type(error).__name__)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def _route(request: Request) -> str:
    """The route template of a request (no member id), or 'unmatched'."""
    return getattr(request.scope.get("route"), "path", "unmatched")


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(MemberscoreError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
