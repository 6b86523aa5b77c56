"""Scheduling (排班) contracts: weekly templates, the hospital calendar, doctor leave, the
generation preview, and the statistics projection."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.contracts.base import Contract, PlausibleDate, Reply
from shared.contracts.catalog import ClockTime, Fee, Id, Session

ClinicType = Literal["general", "expert", "special"]  # 普通 / 专家 / 特需
WeekParity = Literal["every", "odd", "even"]  # ISO week number parity
Weekday = Annotated[int, Field(ge=1, le=7)]  # ISO: 1 = Monday … 7 = Sunday
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
StatsGroup = Literal["day", "department", "doctor"]

MAX_CALENDAR_RANGE_DAYS = 366
MAX_PREVIEW_DAYS = 92
MAX_STATS_RANGE_DAYS = 366


def _minutes(clock: str) -> int:
    hour, minute = (int(part) for part in clock.split(":"))
    return hour * 60 + minute


class TemplateFields(Contract):
    """The fields of a weekly template shared by create and patch."""

    weekdays: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    session: Session
    start: ClockTime
    end: ClockTime
    slice_minutes: Annotated[int, Field(ge=5, le=240)]
    capacity_per_slice: Annotated[int, Field(ge=1, le=1000)]
    fee_cents: Fee | None = None
    clinic_type: ClinicType = "general"
    weeks: WeekParity = "every"
    valid_from: PlausibleDate
    valid_to: PlausibleDate | None = None

    @field_validator("weekdays")
    @classmethod
    def _distinct_days(cls, weekdays: list[int]) -> list[int]:
        if len(set(weekdays)) != len(weekdays):
            raise ValueError("星期重复 / a weekday is given twice")
        return sorted(weekdays)


class TemplateCreate(TemplateFields):
    """`POST /admin/hospitals/{hid}/doctors/{did}/templates`."""


class TemplateCreateParams(TemplateCreate):
    hospital_id: Id
    doctor_id: Id


class TemplatePatch(Contract):
    """`PATCH .../templates/{tid}`: only the fields given change (then all are re-checked)."""

    weekdays: Annotated[list[Weekday], Field(min_length=1, max_length=7)] | None = None
    session: Session | None = None
    start: ClockTime | None = None
    end: ClockTime | None = None
    slice_minutes: Annotated[int, Field(ge=5, le=240)] | None = None
    capacity_per_slice: Annotated[int, Field(ge=1, le=1000)] | None = None
    fee_cents: Fee | None = None
    clinic_type: ClinicType | None = None
    weeks: WeekParity | None = None
    valid_from: PlausibleDate | None = None
    valid_to: PlausibleDate | None = None


class TemplatePatchParams(TemplatePatch):
    hospital_id: Id
    doctor_id: Id
    template_id: Id


class TemplateRef(Contract):
    hospital_id: Id
    doctor_id: Id
    template_id: Id


class DoctorTemplatesRef(Contract):
    hospital_id: Id
    doctor_id: Id


class KeptSession(Reply):
    """A generated session the last regeneration could not change: it has bookings."""

    schedule_id: str
    doctor_id: str
    date: dt.date
    session: Session
    booked: int
    why: Literal["booked", "manual", "stopped"] = "booked"


class Regeneration(Reply):
    """What one generation pass did to the sessions of the booking window."""

    created: int = 0
    replaced: int = 0
    removed: int = 0
    kept: list[KeptSession] = Field(default_factory=list)
    deferred: bool = False  # booking did not answer: the generation job will finish it


class WeeklyTemplate(Reply):
    id: str
    doctor_id: str
    weekdays: list[int]
    session: Session
    start: str
    end: str
    slice_minutes: int
    capacity_per_slice: int
    fee_cents: int | None = None
    clinic_type: ClinicType
    weeks: WeekParity
    valid_from: dt.date
    valid_to: dt.date | None = None
    regeneration: Regeneration | None = None


class WeeklyTemplateList(Reply):
    items: list[WeeklyTemplate]


def check_template(fields: TemplateFields) -> dict[str, str]:
    """Per-field messages for a template that cannot produce sessions (empty when sound)."""
    problems: dict[str, str] = {}
    start, end = _minutes(fields.start), _minutes(fields.end)
    if end <= start:
        problems["end"] = "结束时间须晚于开始时间 / end must be after start"
    elif (end - start) % fields.slice_minutes:
        problems["slice_minutes"] = (
            f"时段长度须整除出诊时长 {end - start} 分钟 / slices must divide the session"
        )
    elif (end - start) // fields.slice_minutes > 48:
        problems["slice_minutes"] = "每个出诊最多48个时段 / at most 48 slices"
    if fields.valid_to is not None and fields.valid_to < fields.valid_from:
        problems["valid_to"] = "不能早于 valid_from / before valid_from"
    return problems


class CalendarDay(Contract):
    """`PUT /admin/hospitals/{hid}/calendar/{date}`: a holiday, or a 调休 workday."""

    closed: bool
    reason: Reason | None = None
    workday_as: Weekday | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CalendarDay:
        if self.closed and self.reason is None:
            raise ValueError("休息日须说明原因 / a closed day needs a reason")
        if self.closed and self.workday_as is not None:
            raise ValueError("休息日不能同时按工作日排班 / closed days have no workday_as")
        return self


class CalendarDayParams(CalendarDay):
    hospital_id: Id
    date: PlausibleDate


class CalendarEntry(Reply):
    date: dt.date
    closed: bool
    reason: str | None = None
    workday_as: int | None = None
    source: str = "manual"


class CalendarSet(Reply):
    """A calendar day after `PUT`, with what regenerating its sessions did."""

    date: dt.date
    closed: bool
    reason: str | None = None
    workday_as: int | None = None
    source: str = "manual"
    regeneration: Regeneration | None = None


class CalendarRange(Contract):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: PlausibleDate = Field(alias="from")
    to: PlausibleDate

    @model_validator(mode="after")
    def _range(self) -> CalendarRange:
        if self.to < self.from_:
            raise ValueError("to 不能早于 from / to before from")
        if (self.to - self.from_).days > MAX_CALENDAR_RANGE_DAYS:
            raise ValueError(f"日期范围最多{MAX_CALENDAR_RANGE_DAYS}天 / range too long")
        return self


class CalendarQuery(CalendarRange):
    hospital_id: Id


class CalendarList(Reply):
    items: list[CalendarEntry]


class LeaveCreate(Contract):
    """`POST /admin/hospitals/{hid}/doctors/{did}/leave`: 停诊 for every session in range."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: PlausibleDate = Field(alias="from")
    to: PlausibleDate
    reason: Reason

    @model_validator(mode="after")
    def _range(self) -> LeaveCreate:
        if self.to < self.from_:
            raise ValueError("to 不能早于 from / to before from")
        if (self.to - self.from_).days > MAX_CALENDAR_RANGE_DAYS:
            raise ValueError(f"请假最长{MAX_CALENDAR_RANGE_DAYS}天 / leave too long")
        return self


class LeaveCreateParams(LeaveCreate):
    hospital_id: Id
    doctor_id: Id


class Leave(Reply):
    # replies are dumped without aliases: say `from` on the wire all the same
    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)

    id: str
    doctor_id: str
    from_: dt.date = Field(alias="from")
    to: dt.date
    reason: str
    stopped: list[str] = Field(default_factory=list)  # schedule ids stopped (停诊)
    cancelled: int = 0  # appointments cancelled by those stops


class PreviewRange(Contract):
    """Query of `POST /admin/hospitals/{hid}/schedules:preview`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: PlausibleDate = Field(alias="from")
    to: PlausibleDate

    @model_validator(mode="after")
    def _range(self) -> PreviewRange:
        if self.to < self.from_:
            raise ValueError("to 不能早于 from / to before from")
        if (self.to - self.from_).days > MAX_PREVIEW_DAYS:
            raise ValueError(f"预览最多{MAX_PREVIEW_DAYS}天 / at most {MAX_PREVIEW_DAYS} days")
        return self


class PreviewQuery(PreviewRange):
    hospital_id: Id


class PreviewSlot(Reply):
    start: str
    end: str
    capacity: int


PreviewAction = Literal[
    "create", "keep", "replace", "remove", "kept_booked", "kept_manual", "kept_stopped"
]


class PreviewSession(Reply):
    doctor_id: str
    date: dt.date
    session: Session
    action: PreviewAction
    template_id: str | None = None
    schedule_id: str | None = None  # the existing session it concerns
    clinic_type: ClinicType | None = None
    fee_cents: int | None = None
    slots: list[PreviewSlot] = Field(default_factory=list)


class PreviewDay(Reply):
    date: dt.date
    weekday: int  # the weekday the day is scheduled as (调休 included)
    closed: bool = False
    reason: str | None = None


class Preview(Reply):
    days: list[PreviewDay]
    items: list[PreviewSession]


class StatsFilter(Contract):
    """Query of `GET /admin/hospitals/{hid}/stats` (visit dates)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: PlausibleDate = Field(alias="from")
    to: PlausibleDate
    group_by: StatsGroup = "day"

    @model_validator(mode="after")
    def _range(self) -> StatsFilter:
        if self.to < self.from_:
            raise ValueError("to 不能早于 from / to before from")
        if (self.to - self.from_).days > MAX_STATS_RANGE_DAYS:
            raise ValueError(f"日期范围最多{MAX_STATS_RANGE_DAYS}天 / range too long")
        return self


class StatsQuery(StatsFilter):
    hospital_id: Id


class StatsRow(Reply):
    key: str
    name: str | None = None  # the doctor's or department's name
    booked: int
    cancelled_by_patient: int
    cancelled_by_hospital: int
    cancelled_by_system: int = 0
    no_show: int
    completed: int
    capacity: int
    utilization: float
    no_show_rate: float


class Stats(Reply):
    items: list[StatsRow]
