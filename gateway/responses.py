"""JSON responses of the public contract, including the error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from shared.errors import DomainError, RateLimited

# values JSON has no type for are written as their str(), as json.dumps(default=str) did
_AS_BEFORE = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=_AS_BEFORE).decode()


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(data, default=str, option=_AS_BEFORE),
                        status=status, headers=headers, content_type="application/json")


def error_response(exc: DomainError, headers: Mapping[str, str] | None = None) -> web.Response:
    """`{"error": {code, message, details}}` with the status of the code; details always an
    object; `Retry-After` on 429."""
    details = exc.details if isinstance(exc.details, dict) else {}
    extra = dict(headers or {})
    if isinstance(exc, RateLimited):
        extra["Retry-After"] = str(exc.retry_after)
    body = {"error": {"code": exc.code, "message": exc.message, "details": details}}
    return json_response(body, status=exc.status, headers=extra)
