"""Base classes and validation helpers shared by every contract."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
)

from shared.errors import BadRequest, ValidationFailed

M = TypeVar("M", bound=BaseModel)


# Cc controls, Cf format characters (bidi overrides and isolates, zero-width space and
# joiners, BOM), Co private use, Cs surrogates, Zl/Zp line and paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def refuse_invisible(value: str) -> str:
    """Refuse text that shows differently from what it is: a name with a right-to-left
    override or a zero-width space looks like another name to staff and compares unequal."""
    if any(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in value):
        raise ValueError("含有不可见或控制字符 / contains invisible or control characters")
    return value


VisibleText = AfterValidator(refuse_invisible)


EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


def plausible_date(value: dt.date) -> dt.date:
    """A date a booking system can mean: `9999-12-31` passes ISO parsing and then
    overflows every `date + timedelta` behind it."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(
            "日期应在 2000-01-01 至 2099-12-31 之间 / date must be within 2000-01-01 … 2099-12-31"
        )
    return value


ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def iso_date_text(value: object) -> object:
    """A date in text is `YYYY-MM-DD` only: pydantic would also read `0` or `1e9` in a path
    or query string as a Unix time."""
    if not isinstance(value, str):
        return value
    try:
        if ISO_DATE.fullmatch(value) is None:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("日期格式应为 YYYY-MM-DD / date must be YYYY-MM-DD") from None


# Every date a request carries (replies keep plain `dt.date`).
PlausibleDate = Annotated[dt.date, BeforeValidator(iso_date_text), AfterValidator(plausible_date)]


# An opaque page cursor: printable ASCII only, so a service decoding it never meets "²"
# (which `str.isdigit` accepts and `int` refuses) or other look-alike digits.
Cursor = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:|=-]+$")
]


class Contract(BaseModel):
    """A request or reply body: unknown fields are refused, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    """A reply body: tolerant of fields a newer service version may add."""

    model_config = ConfigDict(extra="ignore")


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Per-field messages for `details.fields` (dotted paths, first message per field)."""
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            msg = "未知字段 / unknown field"
        elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
            msg = str(err["ctx"]["error"])
        else:
            msg = str(err["msg"])
        fields.setdefault(path, msg)
    return fields


def parse_body(model: type[M], raw: bytes | str, *, strict: bool = True) -> M:
    """Validate a JSON body against a contract; JSON faults → 400, contract faults → 422."""
    try:
        return model.model_validate_json(raw or b"{}", strict=strict)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise BadRequest("请求体不是合法的 JSON / malformed JSON") from None
        raise ValidationFailed(fields=field_errors(exc)) from None


def parse_object(model: type[M], data: dict[str, Any]) -> M:
    """Validate already-decoded data (query strings, path parameters) against a contract."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(fields=field_errors(exc)) from None
