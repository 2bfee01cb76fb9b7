"""Answers of the next-best-action routes: an output model serialised to JSON by pydantic, in one
step (the score routes answer JSON they already hold: published cards or `model_dump_json`).

A route that returns its `response_model` lets FastAPI validate it again and turn it into
Python objects before `json.dumps` (for a sync route, on a second trip through the thread
pool). The output models are validated when they are built, so the routes return
`ModelJSON(model)` and keep `response_model` for the OpenAPI schema only.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ModelJSON(JSONResponse):
    """`application/json` body of a pydantic model (`model_dump_json`)."""

    def render(self, content: BaseModel) -> bytes:  # type: ignore[override]
        """The model as UTF-8 JSON."""
        return content.model_dump_json().encode()
