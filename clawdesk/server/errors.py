"""OpenAI-style errors: every refusal is a 4xx whose body an OpenAI client can read.

The ``openai`` package maps the status to an exception class (401 → AuthenticationError, 404 →
NotFoundError, 400 → BadRequestError, ...) and shows ``error.message``; so each message says
what was wrong and what to do, like ClawDesk's other errors.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """A request the server refuses; ``code`` is OpenAI's machine-readable reason."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.kind = status, message, code, param, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> ApiError:
    return ApiError(400, message, code, param)
