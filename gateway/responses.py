"""JSON responses of the public contract, including the error shape."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
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
    return web.Response(
        body=orjson.dumps(data, default=str, option=_AS_BEFORE),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def error_response(exc: DomainError, headers: Mapping[str, str] | None = None) -> web.Response:
    """`{"error": {code, message, details}}` with the status of the code; details always an
    object; `Retry-After` on 429."""
    details = exc.details if isinstance(exc.details, dict) else {}
    extra = dict(headers or {})
    if isinstance(exc, RateLimited):
        extra["Retry-After"] = str(exc.retry_after)
    body = {"error": {"code": exc.code, "message": exc.message, "details": details}}
    return json_response(body, status=exc.status, headers=extra)


def wants_csv(accept: str | None) -> bool:
    """The client asked for CSV (`Accept: text/csv`)."""
    return "text/csv" in (accept or "").lower()


def csv_response(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, filename: str
) -> web.Response:
    """Rows as UTF-8 CSV with a header line; a BOM first, so spreadsheet programs read
    the Chinese names right."""
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}.csv"',
        },
    )
