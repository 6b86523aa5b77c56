"""Value rules of subscribe-message keywords (`thing1`, `time2`, …).

The part of a key before its trailing digits names its type, and WeChat refuses a send
(47003) when a value breaks the rule of its type. The fake validates with these rules and
the notify service fits its values to them before sending.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_AMOUNT = re.compile(r"[¥￥$][0-9]+(?:\.[0-9]+)?元?|[0-9]+(?:\.[0-9]+)?元")
_CN_DATE = re.compile(r"(?:([0-9]{4})年)?([0-9]{1,2})月([0-9]{1,2})日")
_ISO_DATE = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})")
_CLOCK = re.compile(r"(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?")
_POINT = re.compile(r"(.*?)\s*([0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?")
_CAR_NUMBER = re.compile(rf"[{_CJK}A-Za-z0-9][A-Za-z0-9]*[{_CJK}]?")
_NAME_CHARS = re.compile(rf"[{_CJK}A-Za-z ·.]+")


def keyword_type(key: str) -> str:
    """The type named by a keyword key: `thing1` → `thing`, `character_string3` → its prefix."""
    return key.rstrip("0123456789")


def _is_cjk(char: str) -> bool:
    return re.fullmatch(f"[{_CJK}]", char) is not None


def _is_symbol(char: str) -> bool:
    return not char.isalnum() and not char.isspace() and char.isprintable()


def _digits(value: str) -> int:
    return sum(char in "0123456789" for char in value)


def _valid_date(text: str) -> bool:
    if match := _CN_DATE.fullmatch(text):
        year, month, day = int(match[1] or 2000), int(match[2]), int(match[3])
    elif match := _ISO_DATE.fullmatch(text):
        year, month, day = int(match[1]), int(match[3]), int(match[4])
    else:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _moment_rule(*, needs_time: bool) -> Callable[[str], str | None]:
    """`time` needs a clock time (date optional), `date` needs a date (time optional);
    a range joins two moments with `~` and its second moment may omit the required part."""

    def rule(value: str) -> str | None:
        parts = value.split("~")
        if len(parts) > 2:
            return "more than one '~'"
        for index, part in enumerate(parts):
            match = _POINT.fullmatch(part.strip())
            day, clock = (match[1], match[2] or "") if match else ("", "")
            if clock and not _CLOCK.fullmatch(clock):
                return "not a 24-hour time"
            if day and not _valid_date(day):
                return "not a date"
            required = clock if needs_time else day
            if not required and (index == 0 or not (day or clock)):
                return "missing time" if needs_time else "missing date"
        return None

    return rule


def _name(value: str) -> str | None:
    if not _NAME_CHARS.fullmatch(value) or not any(map(str.isalpha, value)):
        return "only Chinese characters or letters"
    if any(_is_cjk(char) for char in value):
        return None if len(value) <= 10 else "longer than 10 Chinese characters"
    return None if len(value) <= 20 else "longer than 20 letters"


def _check(ok: Callable[[str], bool], reason: str) -> Callable[[str], str | None]:
    return lambda value: None if ok(value) else reason


_RULES: dict[str, Callable[[str], str | None]] = {
    "thing": _check(lambda v: len(v) <= 20, "longer than 20 characters"),
    "number": _check(
        lambda v: bool(_NUMBER.fullmatch(v)) and _digits(v) <= 32, "not a number of ≤32 digits"
    ),
    "letter": _check(lambda v: re.fullmatch(r"[A-Za-z]{1,32}", v) is not None, "not ≤32 letters"),
    "symbol": _check(lambda v: len(v) <= 5 and all(map(_is_symbol, v)), "not ≤5 symbols"),
    "character_string": _check(
        lambda v: re.fullmatch(r"[\x21-\x7e]{1,32}", v) is not None,
        "not ≤32 digits, letters or symbols",
    ),
    "time": _moment_rule(needs_time=True),
    "date": _moment_rule(needs_time=False),
    "amount": _check(
        lambda v: bool(_AMOUNT.fullmatch(v)) and _digits(v) <= 10,
        "not a currency symbol and ≤10 digits",
    ),
    "phone_number": _check(
        lambda v: re.fullmatch(r"[0-9+\- ]{1,17}", v) is not None and _digits(v) > 0,
        "not ≤17 digits or symbols",
    ),
    "car_number": _check(
        lambda v: len(v) <= 8 and _CAR_NUMBER.fullmatch(v) is not None, "not a car number"
    ),
    "name": _name,
    "phrase": _check(lambda v: len(v) <= 5 and all(map(_is_cjk, v)), "not ≤5 Chinese characters"),
}

KNOWN_KEYWORD_TYPES: frozenset[str] = frozenset(_RULES)


def validate_keyword(key: str, value: str) -> str | None:
    """None when `value` is acceptable for keyword `key`, else a short reason."""
    kind = keyword_type(key)
    rule = _RULES.get(kind)
    if rule is None:
        return f"unknown keyword type {kind!r}"
    if not value.strip():
        return "empty"
    return rule(value)


def _keep(pattern: str, limit: int) -> Callable[[str], str]:
    return lambda value: "".join(re.findall(pattern, value))[:limit].strip()


def _fit_number(value: str) -> str:
    whole, _, fraction = re.sub(r"[^0-9.]", "", value).partition(".")
    whole = whole or ("0" if fraction else "")
    fraction = fraction.replace(".", "")[: max(0, 32 - len(whole))]
    return whole[:32] + (f".{fraction}" if fraction else "")


def _fit_moment(value: str) -> str:
    return re.sub(r"\s*(?:~|～|至)\s*", "~", value)


def _fit_amount(value: str) -> str:
    value = re.sub(r"[\s,]", "", value)
    return f"¥{value}" if _NUMBER.fullmatch(value) else value


def _fit_name(value: str) -> str:
    value = "".join(re.findall(rf"[{_CJK}A-Za-z ·.]", value)).strip()
    return value[: 10 if any(map(_is_cjk, value)) else 20].strip()


_FITTERS: dict[str, Callable[[str], str]] = {
    "thing": lambda value: value[:20],
    "number": _fit_number,
    "letter": _keep(r"[A-Za-z]", 32),
    "symbol": lambda value: "".join(filter(_is_symbol, value))[:5],
    "character_string": _keep(r"[\x21-\x7e]", 32),
    "time": _fit_moment,
    "date": _fit_moment,
    "amount": _fit_amount,
    "phone_number": _keep(r"[0-9+\- ]", 17),
    "car_number": _keep(rf"[{_CJK}A-Za-z0-9]", 8),
    "name": _fit_name,
    "phrase": _keep(rf"[{_CJK}]", 5),
}


def fit_keyword(key: str, value: str) -> str:
    """`value` trimmed, filtered and truncated to the rule of `key`'s type where possible.

    Some values cannot be fixed (a `time` that is no time, a `phrase` with no Chinese);
    the result may then still fail `validate_keyword`, which the caller should check.
    """
    text = " ".join(value.split())
    fitter = _FITTERS.get(keyword_type(key))
    return fitter(text) if fitter else text
