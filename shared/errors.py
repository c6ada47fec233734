"""The error base of every service: a domain error carries the code and HTTP status of the error body.

`{"error": {"code": "...", "message": "...", "details": [...]}}` is built from it in `shared.web`.
Domain modules import only this module of ours.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OTVError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str = "", *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code.replace("_", " ")
        self.details = details or []


class ValidationError(OTVError):
    code = "validation_error"
    status = 422


class RepeatedParameterError(ValidationError):
    """A query parameter given more than once (`?to=2026-12-01&to=x`): which value the caller meant is not
    ours to guess, and taking one would answer a question it did not ask (a report of another period)."""


class NotFoundError(OTVError):
    code = "not_found"
    status = 404


class ConflictError(OTVError):
    code = "conflict"
    status = 409


class StaleError(ConflictError):
    """A change made against an older state of the object (its `revision` or `version` as the client read
    it): someone else changed it since, so the change would undo theirs unseen. Nothing was changed; read
    the object again and decide anew."""

    code = "stale"


class UnauthenticatedError(OTVError):
    code = "unauthenticated"
    status = 401


class ForbiddenError(OTVError):
    code = "forbidden"
    status = 403


class PayloadTooLargeError(OTVError):
    code = "payload_too_large"
    status = 413


class UnavailableError(OTVError):
    code = "unavailable"
    status = 503

    def __init__(
        self,
        message: str = "",
        *,
        details: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after  # seconds, sent as Retry-After when given


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}
