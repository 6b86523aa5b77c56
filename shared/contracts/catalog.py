"""Catalog contracts: hospitals and their booking rules, departments, doctors, schedules."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.contracts.base import Contract, Cursor, PlausibleDate, Reply, VisibleText

Session = Literal["am", "pm", "evening"]
# first_come: the fastest tap wins; lottery: requests in the first seconds after release are
# drawn in random order (fair against bots), first come after that
ReleaseMode = Literal["first_come", "lottery"]
PaymentMode = Literal["none", "required"]  # 挂号费 collected with WeChat Pay when booking
ScheduleStatus = Literal["not_released", "open", "full", "closed", "stopped"]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60), VisibleText
]
Text = Annotated[str, StringConstraints(max_length=2000)]


class SameDayStop(Contract):
    """Same-day booking stops at these local times, per session."""

    am: ClockTime = "11:30"
    pm: ClockTime = "16:30"
    evening: ClockTime = "20:30"


class BookingRules(Contract):
    """A hospital's booking rules (domain.md); every field has the documented default."""

    window_days: Annotated[int, Field(ge=0, le=90)] = 7
    release_time: ClockTime = "08:00"
    same_day_stop_time: SameDayStop = Field(default_factory=SameDayStop)
    cancel_before_hours: Annotated[int, Field(ge=0, le=72)] = 2
    per_department_per_day: Annotated[int, Field(ge=1, le=10)] = 1
    max_active: Annotated[int, Field(ge=1, le=50)] = 5
    no_show_limit: Annotated[int, Field(ge=1, le=100)] = 3
    no_show_window_days: Annotated[int, Field(ge=1, le=365)] = 90
    ban_days: Annotated[int, Field(ge=0, le=365)] = 30
    release_mode: ReleaseMode = "first_come"
    lottery_window_seconds: Annotated[int, Field(ge=1, le=300)] = 10
    payment: PaymentMode = "none"
    payment_timeout_minutes: Annotated[int, Field(ge=1, le=120)] = 15
    # 候诊: a patient checking in after their number was called or skipped goes back in
    # after this many waiting patients
    late_requeue_after: Annotated[int, Field(ge=0, le=50)] = 3


class RulesPatch(Contract):
    """`PATCH /admin/hospitals/{hid}/rules`: only the fields given change."""

    window_days: Annotated[int, Field(ge=0, le=90)] | None = None
    release_time: ClockTime | None = None
    same_day_stop_time: SameDayStop | None = None
    cancel_before_hours: Annotated[int, Field(ge=0, le=72)] | None = None
    per_department_per_day: Annotated[int, Field(ge=1, le=10)] | None = None
    max_active: Annotated[int, Field(ge=1, le=50)] | None = None
    no_show_limit: Annotated[int, Field(ge=1, le=100)] | None = None
    no_show_window_days: Annotated[int, Field(ge=1, le=365)] | None = None
    ban_days: Annotated[int, Field(ge=0, le=365)] | None = None
    release_mode: ReleaseMode | None = None
    lottery_window_seconds: Annotated[int, Field(ge=1, le=300)] | None = None
    payment: PaymentMode | None = None
    payment_timeout_minutes: Annotated[int, Field(ge=1, le=120)] | None = None
    late_requeue_after: Annotated[int, Field(ge=0, le=50)] | None = None


class RulesPatchParams(RulesPatch):
    hospital_id: Id


class HospitalCreate(Contract):
    name: Name
    address: Annotated[str, StringConstraints(max_length=200)] | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    level: Annotated[str, StringConstraints(max_length=20)] | None = None
    rules: BookingRules | None = None
    # where the hospital is (GCJ-02, what wx.openLocation takes); optional
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None


class Hospital(Reply):
    id: str
    name: str
    address: str | None = None
    phone: str | None = None
    level: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class HospitalDetail(Hospital):
    rules: BookingRules


class HospitalList(Reply):
    items: list[Hospital]


class HospitalRef(Contract):
    hospital_id: Id


class DepartmentCreate(Contract):
    name: Name
    parent_id: Id | None = None


class DepartmentCreateParams(DepartmentCreate):
    hospital_id: Id


class Department(Reply):
    id: str
    name: str
    parent_id: str | None = None
    children: list[Department] = Field(default_factory=list)


class DepartmentTree(Reply):
    items: list[Department]


DoctorTitle = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30), VisibleText
]
Fee = Annotated[int, Field(ge=0, le=10_000_000)]


class DoctorCreate(Contract):
    name: Name
    title: DoctorTitle
    department_id: Id
    specialty: Annotated[str, StringConstraints(max_length=200)] | None = None
    intro: Text | None = None
    fee_cents: Fee
    published: bool = False


class DoctorCreateParams(DoctorCreate):
    hospital_id: Id


class DoctorPatch(Contract):
    name: Name | None = None
    title: DoctorTitle | None = None
    department_id: Id | None = None
    specialty: Annotated[str, StringConstraints(max_length=200)] | None = None
    intro: Text | None = None
    fee_cents: Fee | None = None
    published: bool | None = None


class DoctorPatchParams(DoctorPatch):
    hospital_id: Id
    doctor_id: Id


class Doctor(Reply):
    id: str
    name: str
    title: str
    department_id: str
    hospital_id: str
    specialty: str | None = None
    intro: str | None = None
    fee_cents: int
    published: bool = True
    next_available_date: dt.date | None = None


class DoctorList(Reply):
    items: list[Doctor]
    next: str | None = None


class DoctorQuery(Contract):
    """`GET /doctors`: a page of `limit` doctors; `next` of a reply is the following
    page's `cursor`."""

    hospital_id: Id | None = None
    department_id: Id | None = None
    q: Annotated[str, StringConstraints(max_length=50)] | None = None
    cursor: Cursor | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class DoctorRef(Contract):
    doctor_id: Id


class ScheduleQuery(Contract):
    # `from` is a Python keyword: accept the wire name and the attribute name alike, so a
    # caller that dumps without aliases is not refused as sending an unknown field
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    doctor_id: Id
    from_: PlausibleDate | None = Field(default=None, alias="from")
    to: PlausibleDate | None = None

    @model_validator(mode="after")
    def _range(self) -> ScheduleQuery:
        if self.from_ and self.to and (self.to - self.from_).days > 62:
            raise ValueError("日期范围最多62天 / at most 62 days")
        return self


class SlotSpec(Contract):
    start: ClockTime
    end: ClockTime
    capacity: Annotated[int, Field(ge=0, le=1000)]

    @model_validator(mode="after")
    def _ordered(self) -> SlotSpec:
        if self.end <= self.start:
            raise ValueError("结束时间须晚于开始时间 / end must be after start")
        return self


class ScheduleCreate(Contract):
    date: PlausibleDate
    session: Session
    fee_cents: Fee | None = None
    slots: Annotated[list[SlotSpec], Field(min_length=1, max_length=48)]

    @field_validator("slots")
    @classmethod
    def _no_overlap(cls, slots: list[SlotSpec]) -> list[SlotSpec]:
        ordered = sorted(slots, key=lambda s: s.start)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.start < a.end:
                raise ValueError("时段重叠 / slots overlap")
        return ordered


class ScheduleCreateParams(ScheduleCreate):
    hospital_id: Id
    doctor_id: Id


class Slot(Reply):
    id: str
    start: str
    end: str
    capacity: int
    remaining: int
    status: ScheduleStatus = "open"  # this slice alone: a session can be open while its
    # first slices have already started


class Schedule(Reply):
    id: str
    doctor_id: str
    date: dt.date
    session: Session
    status: ScheduleStatus
    release_at: str | None = None
    fee_cents: int
    slots: list[Slot]


class ScheduleList(Reply):
    items: list[Schedule]


class PersonRef(Reply):
    id: str
    name: str
    title: str | None = None


class SlotDefinition(Reply):
    id: str
    start: str
    end: str
    capacity: int


class ScheduleDefinition(Reply):
    """What booking needs to hold inventory for a schedule (also `schedule.published` data)."""

    id: str
    hospital_id: str
    doctor: PersonRef
    department: PersonRef
    date: dt.date
    session: Session
    fee_cents: int
    slots: list[SlotDefinition]


class SlotRef(Contract):
    slot_id: Id


class ScheduleRef(Contract):
    schedule_id: Id


class HospitalExists(Reply):
    exists: bool


class HospitalOfQuery(Contract):
    """Which hospital a doctor or a department belongs to (internal: booking's waitlist)."""

    doctor_id: Id | None = None
    department_id: Id | None = None


class HospitalOf(Reply):
    hospital_id: str


class AdminScheduleFilter(Contract):
    """Query of `GET /admin/hospitals/{hid}/schedules`."""

    date: PlausibleDate | None = None
    doctor_id: Id | None = None


class AdminScheduleQuery(AdminScheduleFilter):
    hospital_id: Id


class AdminDoctorQuery(Contract):
    hospital_id: Id


class ScheduleRange(Contract):
    """Query of `GET /doctors/{id}/schedules`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: PlausibleDate | None = Field(default=None, alias="from")
    to: PlausibleDate | None = None
