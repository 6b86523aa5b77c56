"""Subscribe-message templates: which WeChat template each notification kind uses, the page
it opens and how its keyword values are made from an appointment.

`WECHAT_TEMPLATES` (JSON text, or the path of a JSON file) maps a kind to
`{"template_id", "page", "keywords": {"thing1": "{department} {doctor}", ...}}`. A keyword
expression is a `str.format` string over the fields of `appointment_fields`; the page may
use them too (`pages/appointment-detail/index?id={id}`, a page of `miniprogram/app.json`:
WeChat refuses any other with 41030). Without the setting the dev set matching the local
WeChat fake is used.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.contracts.notify import NotificationKind
from shared.wechat.keywords import (
    KNOWN_KEYWORD_TYPES,
    fit_keyword,
    keyword_type,
    validate_keyword,
)

KINDS: tuple[str, ...] = get_args(NotificationKind)
SESSIONS = {"am": "上午", "pm": "下午", "evening": "晚上"}
DETAIL_PAGE = "pages/appointment-detail/index?id={id}"

_VISIT = {"thing1": "{department} {doctor}", "time2": "{visit_time}", "name3": "{patient}"}
DEV_KEYWORDS: dict[str, dict[str, str]] = {
    "booking_confirmed": {**_VISIT, "character_string4": "{seq_no}", "thing5": "{note}"},
    "appointment_cancelled": {**_VISIT, "thing4": "{reason}"},
    "appointment_moved": {**_VISIT, "thing4": "原定{previous_time}"},
    "visit_reminder": {**_VISIT, "thing4": "{note}"},
    "waitlist_promoted": {**_VISIT, "character_string4": "{seq_no}"},
    "queue_near": {**_VISIT, "character_string4": "{seq_no}", "thing5": "{note}"},
}
NOTES = {
    "booking_confirmed": "请提前15分钟到院取号",
    "appointment_cancelled": "预约已取消",
    "appointment_moved": "就诊时间已调整",
    "visit_reminder": "明天就诊，第{seq_no}号，请按时到院",
    "waitlist_promoted": "候补成功，请按时就诊",
    "queue_near": "前面还有{ahead}人，请到诊室附近候诊",
}


class TemplateConfigError(ValueError):
    """`WECHAT_TEMPLATES` is unusable: the service refuses to start."""


class KeywordFault(ValueError):
    """A value that still breaks its keyword rule after fitting (a configuration fault)."""


class _TemplateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str
    page: str | None = None
    keywords: dict[str, str]


@dataclass(frozen=True)
class Template:
    kind: NotificationKind
    template_id: str
    page: str | None
    keywords: dict[str, str]

    def render(self, fields: dict[str, str]) -> tuple[dict[str, str], str | None]:
        """Keyword values (fitted to their type rules) and the page for one appointment."""
        data: dict[str, str] = {}
        for key, expression in self.keywords.items():
            value = fit_keyword(key, expression.format_map(fields))
            if (problem := validate_keyword(key, value)) is not None:
                raise KeywordFault(f"{self.kind}.{key}: {problem}")
            data[key] = value
        return data, (self.page.format_map(fields) if self.page else None)


class TemplateSet:
    """The configured templates, by kind and by template id."""

    def __init__(self, templates: list[Template]) -> None:
        self.by_kind: dict[str, Template] = {t.kind: t for t in templates}
        self.by_id = {t.template_id: t for t in templates}

    def get(self, kind: str) -> Template | None:
        return self.by_kind.get(kind)

    def __iter__(self) -> Iterator[Template]:
        return iter(self.by_kind.values())


def dev_templates() -> dict[str, Any]:
    """The dev configuration: the template ids and keys of the local WeChat fake."""
    from shared.wechat.fake import DEFAULT_TEMPLATES

    config: dict[str, Any] = {}
    for kind, fake in DEFAULT_TEMPLATES.items():
        keywords = DEV_KEYWORDS[kind]
        assert set(keywords) == set(fake.keys), f"dev keywords of {kind} drifted from the fake"
        config[kind] = {"template_id": fake.template_id, "page": DETAIL_PAGE, "keywords": keywords}
    return config


def load_templates(setting: str | None) -> TemplateSet:
    """Parse and check `WECHAT_TEMPLATES` (JSON or a path); raise TemplateConfigError with
    every problem found, so a bad deployment stops at start instead of failing sends."""
    if setting is None or not setting.strip():
        raw: Any = dev_templates()
    else:
        text = setting if setting.lstrip().startswith("{") else _read(setting)
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise TemplateConfigError(f"WECHAT_TEMPLATES is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise TemplateConfigError("WECHAT_TEMPLATES must be a JSON object of kinds")
    problems: list[str] = []
    templates: list[Template] = []
    for kind, spec_raw in raw.items():
        if kind not in KINDS:
            problems.append(f"{kind}: unknown kind (known: {', '.join(KINDS)})")
            continue
        try:
            spec = _TemplateSpec.model_validate(spec_raw)
        except ValidationError as exc:
            problems.append(f"{kind}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
            continue
        for key, expression in spec.keywords.items():
            if keyword_type(key) not in KNOWN_KEYWORD_TYPES:
                problems.append(
                    f"{kind}.keywords.{key}: unknown keyword type {keyword_type(key)!r}"
                )
            problems += [f"{kind}.keywords.{key}: {p}" for p in _placeholder_problems(expression)]
        problems += [f"{kind}.page: {p}" for p in _placeholder_problems(spec.page or "")]
        templates.append(
            Template(cast(NotificationKind, kind), spec.template_id, spec.page, dict(spec.keywords))
        )
    ids = [t.template_id for t in templates]
    problems += [f"template id {i!r} is used by two kinds" for i in set(ids) if ids.count(i) > 1]
    if problems:
        raise TemplateConfigError("WECHAT_TEMPLATES: " + "; ".join(problems))
    return TemplateSet(templates)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateConfigError(f"WECHAT_TEMPLATES: cannot read {path}: {exc}") from None


FIELD_NAMES = frozenset(
    {
        "id",
        "doctor",
        "doctor_title",
        "department",
        "patient",
        "visit_time",
        "visit_date",
        "start",
        "end",
        "session",
        "seq_no",
        "reason",
        "note",
        "previous_time",
        "ahead",
        "eta_minutes",
    }
)


def _placeholder_problems(expression: str) -> list[str]:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(expression) if name is not None]
    except ValueError as exc:
        return [f"bad format string ({exc})"]
    return [
        f"unknown field {{{n}}} (known: {', '.join(sorted(FIELD_NAMES))})"
        for n in names
        if n not in FIELD_NAMES
    ]


def visit_time(date: str, clock: str) -> str:
    """`2026-12-01`, `08:30` → `2026年12月1日 08:30` (the `time` keyword form)."""
    day = dt.date.fromisoformat(date)
    return f"{day.year}年{day.month}月{day.day}日 {clock}"


def appointment_fields(
    kind: str,
    appointment: dict[str, Any],
    previous: dict[str, Any] | None = None,
    queue: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The values keyword expressions may use, from an appointment of a booking event (and
    its place in the queue, for `queue.*` events)."""
    day = dt.date.fromisoformat(appointment["date"])
    seq_no = appointment.get("seq_no")
    fields = {
        "id": str(appointment["id"]),
        "doctor": str(appointment.get("doctor", {}).get("name", "")),
        "doctor_title": str(appointment.get("doctor", {}).get("title") or ""),
        "department": str(appointment.get("department", {}).get("name", "")),
        "patient": str(appointment.get("patient", {}).get("name", "")),
        "visit_time": visit_time(appointment["date"], appointment["start"]),
        "visit_date": f"{day.year}年{day.month}月{day.day}日",
        "start": str(appointment["start"]),
        "end": str(appointment["end"]),
        "session": SESSIONS.get(str(appointment.get("session")), ""),
        "seq_no": "" if seq_no is None else str(seq_no),
        "previous_time": (
            visit_time(previous["date"], previous["start"])
            if previous
            else visit_time(appointment["date"], appointment["start"])
        ),
        "ahead": str((queue or {}).get("ahead", "")),
        "eta_minutes": str((queue or {}).get("eta_minutes", "")),
    }
    fields["note"] = NOTES.get(kind, "").format_map(fields)
    fields["reason"] = str(appointment.get("reason") or NOTES.get(kind, ""))
    return fields
