"""Telnyx's error answers: ``{"errors": [{"code", "title", "detail", "source"?, "meta"}]}``.

Codes follow Telnyx's public error catalogue (10004 missing parameter, 10005 not found, 10009
authentication failed, 10010 authorization failed, 10011 too many requests, 10015 bad request,
90018 call has already ended).
Which code the real API uses for each invalid value is not documented; 10015 stands in for them.
"""

from dataclasses import dataclass
from typing import Any


@dataclass
class ApiError(Exception):
    """One Telnyx error answer; ``field`` names the parameter at fault, if any."""

    status: int
    code: str
    title: str
    detail: str
    field: str | None = None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "meta": {"url": f"https://developers.telnyx.com/docs/overview/errors/{self.code}"},
        }
        if self.field is not None:
            error["source"] = {"pointer": f"/{self.field}"}
        return {"errors": [error]}


def authentication_failed() -> ApiError:
    return ApiError(
        401,
        "10009",
        "Authentication failed",
        "The required authentication headers were either invalid or not included in the request.",
    )


def not_permitted() -> ApiError:
    """403: the key authenticated, but may not act on this resource (a restricted key, another account's call)."""
    return ApiError(
        403,
        "10010",
        "Authorization failed",
        "You do not have permission to perform the requested action on the specified resource or resources.",
    )


def not_found(detail: str = "The requested resource or URL could not be found.") -> ApiError:
    return ApiError(404, "10005", "Resource not found", detail)


def call_ended() -> ApiError:
    return ApiError(
        422,
        "90018",
        "Call has already ended",
        "This call is no longer active and can't receive commands.",
    )


def missing(field: str) -> ApiError:
    return ApiError(
        422, "10004", "Missing required parameter", f"The '{field}' parameter is required.", field
    )


def invalid(field: str, detail: str) -> ApiError:
    return ApiError(
        422, "10015", "Invalid parameter", f"The '{field}' parameter is invalid: {detail}", field
    )


def bad_request(detail: str) -> ApiError:
    return ApiError(400, "10015", "Bad Request", detail)


def too_many_requests() -> ApiError:
    return ApiError(
        429,
        "10011",
        "Too many requests",
        "You have exceeded the maximum number of allowed requests.",
    )
