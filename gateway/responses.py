"""JSON responses of the public contract, including the error shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from shared.errors import DomainError, RateLimited


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


def error_response(exc: DomainError, headers: Mapping[str, str] | None = None) -> web.Response:
    """`{"error": {code, message, details}}` with the status of the code; details always an
    object; `Retry-After` on 429."""
    details = exc.details if isinstance(exc.details, dict) else {}
    extra = dict(headers or {})
    if isinstance(exc, RateLimited):
        extra["Retry-After"] = str(exc.retry_after)
    body = {"error": {"code": exc.code, "message": exc.message, "details": details}}
    return json_response(body, status=exc.status, headers=extra)
