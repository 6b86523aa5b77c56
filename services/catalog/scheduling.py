"""排班: weekly templates, the hospital calendar and doctor leave turned into clinic sessions.

What a hospital wants is a plan — for each date of the booking window, the sessions its
templates produce on the weekday that date is scheduled as (a holiday produces nothing, a
调休 workday behaves like the weekday it stands for, a doctor on leave has nothing). The
generator makes the stored sessions match that plan:

- a planned session that does not exist is created through the catalog's one
  schedule-creation path (its `schedule.published` rides in the document's outbox);
- its id is derived from (doctor, date, session, what the template asks for), and
  (doctor, date, session) is unique, so two runs racing — or a run repeating the work of
  one that crashed — can only ever create it once;
- a generated session the plan no longer wants as it is (template changed or removed, a
  new holiday) is replaced or removed only while it has no bookings: its slots are first
  closed in booking (capacity to 0, which booking refuses atomically once anything is
  booked), then it is stopped and deleted; a session with bookings is kept and reported;
- hand-made sessions and stopped ones are never touched.

Every step is idempotent and the plan is recomputed from the stored inputs on each run, so
a run that died half way is completed by the next one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from services.catalog.repository import CatalogRepository
from services.catalog.scheduling_repository import SchedulingRepository
from services.catalog.service import (
    NO_SUCH_DOCTOR,
    CatalogService,
    require_hospital_staff,
    rules_of,
)
from shared.context import Caller
from shared.contracts.booking import Availability, ScheduleAvailability
from shared.contracts.catalog import ScheduleCreate, SlotSpec
from shared.contracts.scheduling import (
    CalendarDayParams,
    CalendarEntry,
    CalendarList,
    CalendarQuery,
    CalendarSet,
    DoctorTemplatesRef,
    KeptSession,
    Leave,
    LeaveCreateParams,
    Preview,
    PreviewAction,
    PreviewDay,
    PreviewQuery,
    PreviewSession,
    PreviewSlot,
    Regeneration,
    TemplateCreateParams,
    TemplateFields,
    TemplatePatch,
    TemplatePatchParams,
    TemplateRef,
    WeeklyTemplate,
    WeeklyTemplateList,
    check_template,
)
from shared.errors import (
    Conflict,
    DomainError,
    InvalidState,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from shared.ids import new_id
from shared.storage.mongo import Document

log = logging.getLogger("guahao.catalog.scheduling")

NO_SUCH_TEMPLATE = "排班模板不存在 / no such template"
REGENERATED_REASON = "排班调整 / schedule regenerated"
SAVE_ATTEMPTS = 5
AVAILABILITY_BATCH = 500
FLUSH_INLINE = 50  # sessions published at once after a run; more are left to the relay
FULL_PASS_EVERY = dt.timedelta(minutes=10)
GENERATED_FIELDS = ("template_id", "fingerprint", "clinic_type")

Key = tuple[str, str, str]  # (doctor id, ISO date, session)
FaultPoint = Callable[[str], None]


class BookingControl(Protocol):
    """What scheduling asks of booking, through booking's existing RPC methods."""

    async def availability(self, schedule_ids: list[str]) -> Availability: ...

    async def change_capacity(self, hospital_id: str, slot_id: str, delta: int) -> None:
        """Raises InvalidState when it would go below what is booked."""

    async def stop_schedule(self, hospital_id: str, schedule_id: str, reason: str) -> int:
        """停诊; returns how many appointments it cancelled."""


def stable_id(prefix: str, *parts: str) -> str:
    return f"{prefix}_{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:24]}"


def _minutes(clock: str) -> int:
    hour, minute = (int(part) for part in clock.split(":"))
    return hour * 60 + minute


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class PlannedSession:
    """One session the templates ask for on one date."""

    doctor_id: str
    date: dt.date
    session: str
    template_id: str
    start: str
    end: str
    slice_minutes: int
    capacity: int
    fee_cents: int
    clinic_type: str

    @property
    def key(self) -> Key:
        return self.doctor_id, self.date.isoformat(), self.session

    @property
    def slots(self) -> list[SlotSpec]:
        return slices(self.start, self.end, self.slice_minutes, self.capacity)

    @functools.cached_property
    def fingerprint(self) -> str:
        """What the session looks like: a change of it means a different session."""
        return hashlib.sha256(
            "|".join(
                (
                    self.template_id,
                    self.start,
                    self.end,
                    str(self.slice_minutes),
                    str(self.capacity),
                    str(self.fee_cents),
                    self.clinic_type,
                )
            ).encode()
        ).hexdigest()[:16]

    @functools.cached_property
    def schedule_id(self) -> str:
        return stable_id(
            "sch", self.doctor_id, self.date.isoformat(), self.session, self.fingerprint
        )

    def slot_ids(self) -> list[str]:
        schedule_id = self.schedule_id
        return [stable_id("slot", schedule_id, slot.start) for slot in self.slots]


@functools.lru_cache(maxsize=1024)
def slices(start: str, end: str, minutes: int, capacity: int) -> list[SlotSpec]:
    """`start`–`end` cut into slices of `minutes` (the same for every date of a template;
    callers must not modify the list)."""
    first, last = _minutes(start), _minutes(end)
    return [
        SlotSpec(start=_clock(t), end=_clock(t + minutes), capacity=capacity)
        for t in range(first, last, minutes)
    ]


def in_week(weeks: str, date: dt.date) -> bool:
    """every / odd / even ISO week numbers."""
    if weeks == "every":
        return True
    return (date.isocalendar().week % 2 == 1) == (weeks == "odd")


def scheduled_weekday(date: dt.date, entry: Document | None) -> int | None:
    """The weekday `date` is scheduled as: None on a closed day, the 调休 weekday if set."""
    if entry is not None:
        if entry.get("closed"):
            return None
        if entry.get("workday_as"):
            return int(entry["workday_as"])
    return date.isoweekday()


def template_view(doc: Document, doctor_id: str) -> WeeklyTemplate:
    return WeeklyTemplate.model_validate({**doc, "doctor_id": doctor_id})


def templates_overlap(
    a: TemplateFields | WeeklyTemplate, b: TemplateFields | WeeklyTemplate
) -> bool:
    """Both could produce the same doctor's session on one date."""
    if a.session != b.session or not set(a.weekdays) & set(b.weekdays):
        return False
    if {a.weeks, b.weeks} == {"odd", "even"}:
        return False
    a_to, b_to = a.valid_to or dt.date.max, b.valid_to or dt.date.max
    return a.valid_from <= b_to and b.valid_from <= a_to


def plan_sessions(
    templates: dict[str, list[WeeklyTemplate]],
    doctors: dict[str, Document],
    calendar: dict[str, Document],
    on_leave: set[tuple[str, str]],
    date_from: dt.date,
    date_to: dt.date,
) -> dict[Key, PlannedSession]:
    """Every session the templates ask for in [date_from, date_to], per (doctor, date, session)."""
    planned: dict[Key, PlannedSession] = {}
    date = date_from
    while date <= date_to:
        iso = date.isoformat()
        weekday = scheduled_weekday(date, calendar.get(iso))
        if weekday is not None:
            for doctor_id, doctor_templates in templates.items():
                doctor = doctors.get(doctor_id)
                if doctor is None or (doctor_id, iso) in on_leave:
                    continue
                for t in doctor_templates:
                    if (
                        weekday not in t.weekdays
                        or not in_week(t.weeks, date)
                        or date < t.valid_from
                        or (t.valid_to and date > t.valid_to)
                    ):
                        continue
                    session = PlannedSession(
                        doctor_id=doctor_id,
                        date=date,
                        session=t.session,
                        template_id=t.id,
                        start=t.start,
                        end=t.end,
                        slice_minutes=t.slice_minutes,
                        capacity=t.capacity_per_slice,
                        fee_cents=t.fee_cents
                        if t.fee_cents is not None
                        else int(doctor["fee_cents"]),
                        clinic_type=t.clinic_type,
                    )
                    planned.setdefault(session.key, session)
        date += dt.timedelta(days=1)
    return planned


def leave_days(leaves: Iterable[Document]) -> set[tuple[str, str]]:
    days: set[tuple[str, str]] = set()
    for leave in leaves:
        date = dt.date.fromisoformat(leave["from"])
        last = dt.date.fromisoformat(leave["to"])
        while date <= last:
            days.add((leave["doctor_id"], date.isoformat()))
            date += dt.timedelta(days=1)
    return days


def booked_units(seen: ScheduleAvailability | None) -> int:
    if seen is None:
        return 0
    return sum(max(0, slot.capacity - slot.remaining) for slot in seen.slots)


def schedule_key(doc: Document) -> Key:
    return doc["doctor_id"], doc["date"], doc["session"]


@dataclass
class Inputs:
    """What a hospital's plan is computed from, for one date range."""

    hospital: Document
    templates: dict[str, list[WeeklyTemplate]]
    doctors: dict[str, Document]
    departments: dict[str, Document]
    calendar: dict[str, Document]
    on_leave: set[tuple[str, str]]


@dataclass
class Change:
    """A generated session that differs from the plan: replace it, or remove it (None)."""

    current: Document
    planned: PlannedSession | None


@dataclass
class Comparison:
    planned: dict[Key, PlannedSession]
    create: list[PlannedSession] = field(default_factory=list)
    keep: list[tuple[PlannedSession, Document]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    manual: list[tuple[PlannedSession, Document]] = field(default_factory=list)


def compare(
    planned: dict[Key, PlannedSession], existing: list[Document], on_leave: set[tuple[str, str]]
) -> Comparison:
    result = Comparison(planned)
    by_key = {schedule_key(doc): doc for doc in existing}
    for key, session in sorted(planned.items()):
        doc = by_key.get(key)
        if doc is None:
            result.create.append(session)
        elif "template_id" not in doc:
            result.manual.append((session, doc))
        elif doc.get("fingerprint") == session.fingerprint:
            result.keep.append((session, doc))
        else:
            result.changes.append(Change(doc, session))
    for key, doc in sorted(by_key.items()):
        if key in planned or "template_id" not in doc or (key[0], key[1]) in on_leave:
            continue
        result.changes.append(Change(doc, None))
    return result


class Scheduler:
    """Templates, calendar, leave and the generator that turns them into sessions."""

    def __init__(
        self,
        repo: CatalogRepository,
        store: SchedulingRepository,
        catalog: CatalogService,
        booking: BookingControl,
        *,
        fault: FaultPoint | None = None,
        batch: int = 500,
    ) -> None:
        self.repo = repo
        self.store = store
        self.catalog = catalog
        self.booking = booking
        self.fault = fault  # tests inject a crash at a named point
        self.batch = batch

    def today(self) -> dt.date:
        return self.catalog.today()

    # templates

    async def list_templates(
        self, caller: Caller | None, ref: DoctorTemplatesRef
    ) -> WeeklyTemplateList:
        require_hospital_staff(caller, ref.hospital_id)
        await self._doctor(ref.hospital_id, ref.doctor_id)
        doc = await self.store.doctor_templates(ref.doctor_id) or {}
        return WeeklyTemplateList(
            items=[template_view(t, ref.doctor_id) for t in doc.get("templates", [])]
        )

    async def get_template(self, caller: Caller | None, ref: TemplateRef) -> WeeklyTemplate:
        require_hospital_staff(caller, ref.hospital_id)
        await self._doctor(ref.hospital_id, ref.doctor_id)
        doc = await self.store.doctor_templates(ref.doctor_id) or {}
        for t in doc.get("templates", []):
            if t["id"] == ref.template_id:
                return template_view(t, ref.doctor_id)
        raise NotFound(NO_SUCH_TEMPLATE)

    async def create_template(
        self, caller: Caller | None, params: TemplateCreateParams
    ) -> WeeklyTemplate:
        require_hospital_staff(caller, params.hospital_id)
        await self._doctor(params.hospital_id, params.doctor_id)
        fields = TemplateFields.model_validate(
            params.model_dump(exclude={"hospital_id", "doctor_id"})
        )
        template_id = new_id("tpl")
        await self._save(
            params.hospital_id,
            params.doctor_id,
            template_id,
            lambda current: [*current, self._stored(template_id, fields)],
        )
        return await self._after_change(
            params.hospital_id, params.doctor_id, template_id, self._stored(template_id, fields)
        )

    async def update_template(
        self, caller: Caller | None, params: TemplatePatchParams
    ) -> WeeklyTemplate:
        require_hospital_staff(caller, params.hospital_id)
        await self._doctor(params.hospital_id, params.doctor_id)
        changes = params.model_dump(
            include=set(TemplatePatch.model_fields) & params.model_fields_set
        )
        refused = {
            name: "不能为空 / must not be null"
            for name, value in changes.items()
            if value is None and name not in ("fee_cents", "valid_to")
        }
        if refused:
            raise ValidationFailed(fields=refused)
        stored: Document = {}

        def patched(current: list[Document]) -> list[Document]:
            nonlocal stored
            found = next((t for t in current if t["id"] == params.template_id), None)
            if found is None:
                raise NotFound(NO_SUCH_TEMPLATE)
            merged = {
                **template_view(found, params.doctor_id).model_dump(
                    include=set(TemplateFields.model_fields)
                ),
                **changes,
            }
            fields = TemplateFields.model_validate(merged)
            stored = self._stored(params.template_id, fields)
            return [stored if t["id"] == params.template_id else t for t in current]

        await self._save(params.hospital_id, params.doctor_id, params.template_id, patched)
        return await self._after_change(
            params.hospital_id, params.doctor_id, params.template_id, stored
        )

    async def delete_template(self, caller: Caller | None, ref: TemplateRef) -> WeeklyTemplate:
        require_hospital_staff(caller, ref.hospital_id)
        await self._doctor(ref.hospital_id, ref.doctor_id)
        removed: Document = {}

        def without(current: list[Document]) -> list[Document]:
            nonlocal removed
            found = next((t for t in current if t["id"] == ref.template_id), None)
            if found is None:
                raise NotFound(NO_SUCH_TEMPLATE)
            removed = found
            return [t for t in current if t["id"] != ref.template_id]

        await self._save(ref.hospital_id, ref.doctor_id, ref.template_id, without)
        return await self._after_change(ref.hospital_id, ref.doctor_id, ref.template_id, removed)

    def _stored(self, template_id: str, fields: TemplateFields) -> Document:
        problems = check_template(fields)
        if problems:
            raise ValidationFailed(fields=problems)
        return {"id": template_id, **fields.model_dump(mode="json", exclude_none=True)}

    async def _save(
        self,
        hospital_id: str,
        doctor_id: str,
        changed_id: str,
        change: Callable[[list[Document]], list[Document]],
    ) -> None:
        """Apply `change` to the doctor's templates and store them if no two overlap; one
        guarded write, so concurrent edits cannot slip an overlap past the check."""
        for _ in range(SAVE_ATTEMPTS):
            doc = await self.store.doctor_templates(doctor_id) or {}
            templates = change(list(doc.get("templates", [])))
            views = [template_view(t, doctor_id) for t in templates]
            changed = next((v for v in views if v.id == changed_id), None)
            for other in views:
                if (
                    changed is not None
                    and other.id != changed_id
                    and templates_overlap(changed, other)
                ):
                    raise ValidationFailed(
                        fields={
                            "weekdays": (
                                f"与模板 {other.id} 的星期、时段和有效期重叠 / overlaps template "
                                f"{other.id} on a weekday and session within its validity"
                            )
                        }
                    )
            if await self.store.save_templates(
                doctor_id, hospital_id, int(doc.get("version", 0)), templates, self.catalog.clock()
            ):
                await self.store.bump_inputs(hospital_id)
                log.info(
                    "templates changed", extra={"hospital_id": hospital_id, "doctor_id": doctor_id}
                )
                return
        raise Conflict("排班模板正被同时修改，请重试 / concurrent edit, try again")

    async def _after_change(
        self, hospital_id: str, doctor_id: str, template_id: str, stored: Document
    ) -> WeeklyTemplate:
        """Regenerate this doctor's window at once (the job would within a minute) and
        answer with what that did."""
        report = await self.regenerate_window(hospital_id, doctor_ids=[doctor_id])
        return template_view({**stored, "id": template_id, "regeneration": report}, doctor_id)

    # calendar

    async def set_calendar_day(
        self, caller: Caller | None, params: CalendarDayParams
    ) -> CalendarSet:
        require_hospital_staff(caller, params.hospital_id)
        await self.catalog.get_hospital(params.hospital_id)
        fields = self._calendar_fields(params.closed, params.reason, params.workday_as, "manual")
        await self.store.put_calendar_day(params.hospital_id, params.date, fields)
        await self.store.bump_inputs(params.hospital_id)
        log.info(
            "calendar day set",
            extra={"hospital_id": params.hospital_id, "date": params.date.isoformat()},
        )
        report = await self.regenerate_window(params.hospital_id, only=params.date)
        return CalendarSet(date=params.date, **fields, regeneration=report)

    async def calendar(self, caller: Caller | None, query: CalendarQuery) -> CalendarList:
        require_hospital_staff(caller, query.hospital_id)
        await self.catalog.get_hospital(query.hospital_id)
        docs = await self.store.calendar_days(query.hospital_id, query.from_, query.to)
        return CalendarList(items=[CalendarEntry.model_validate(doc) for doc in docs])

    @staticmethod
    def _calendar_fields(
        closed: bool, reason: str | None, workday_as: int | None, source: str
    ) -> Document:
        fields: Document = {"closed": closed, "source": source}
        if reason is not None:
            fields["reason"] = reason
        if workday_as is not None:
            fields["workday_as"] = workday_as
        return fields

    # leave

    async def add_leave(self, caller: Caller | None, params: LeaveCreateParams) -> Leave:
        """Record the leave (generation skips its dates from now on), then stop every
        session of the doctor in range — booked patients are cancelled and notified by
        booking's 停诊."""
        require_hospital_staff(caller, params.hospital_id)
        await self._doctor(params.hospital_id, params.doctor_id)
        doc: Document = {
            "_id": new_id("lv"),
            "hospital_id": params.hospital_id,
            "doctor_id": params.doctor_id,
            "from": params.from_.isoformat(),
            "to": params.to.isoformat(),
            "reason": params.reason,
            "done": False,
            "created_at": self.catalog.clock(),
        }
        await self.store.insert_leave(doc)
        await self.store.bump_inputs(params.hospital_id)
        stopped, cancelled = await self.apply_leave(doc)
        log.info(
            "doctor leave recorded",
            extra={
                "hospital_id": params.hospital_id,
                "doctor_id": params.doctor_id,
                "stopped": len(stopped),
                "cancelled": cancelled,
            },
        )
        return Leave.model_validate(
            {
                "id": doc["_id"],
                "doctor_id": params.doctor_id,
                "from": params.from_,
                "to": params.to,
                "reason": params.reason,
                "stopped": stopped,
                "cancelled": cancelled,
            }
        )

    async def apply_leave(self, leave: Document) -> tuple[list[str], int]:
        """Stop the leave's sessions from today on; safe to repeat (stopping twice cancels
        nothing more)."""
        start = max(dt.date.fromisoformat(leave["from"]), self.today())
        end = dt.date.fromisoformat(leave["to"])
        stopped: list[str] = []
        cancelled = 0
        if start <= end:
            for doc in await self.store.doctor_schedules_between(leave["doctor_id"], start, end):
                cancelled += await self.booking.stop_schedule(
                    leave["hospital_id"], doc["_id"], leave["reason"]
                )
                stopped.append(doc["_id"])
        await self.store.finish_leave(leave["_id"], stopped, cancelled)
        return stopped, cancelled

    async def resume_leaves(self) -> None:
        """Finish leaves whose stopping was interrupted (a crash, booking unavailable)."""
        for leave in await self.store.unfinished_leaves():
            try:
                await self.apply_leave(leave)
            except DomainError as exc:
                log.warning(
                    "leave not finished yet", extra={"leave_id": leave["_id"], "error": repr(exc)}
                )

    # preview and generation

    async def preview(self, caller: Caller | None, query: PreviewQuery) -> Preview:
        """What generation would do over [from, to] (nothing is written)."""
        require_hospital_staff(caller, query.hospital_id)
        inputs = await self._inputs(query.hospital_id, query.from_, query.to)
        comparison = await self._compare(inputs, query.from_, query.to)
        seen: dict[str, ScheduleAvailability] = {}
        if comparison.changes:
            try:
                seen = await self._availability([c.current["_id"] for c in comparison.changes])
            except ServiceUnavailable:
                seen = {}
        items: list[PreviewSession] = []
        for session in comparison.create:
            items.append(self._preview_item(session, "create"))
        for session, doc in comparison.keep:
            items.append(self._preview_item(session, "keep", doc))
        for session, doc in comparison.manual:
            items.append(self._preview_item(session, "kept_manual", doc))
        for change in comparison.changes:
            state = seen.get(change.current["_id"])
            action: PreviewAction = "replace" if change.planned else "remove"
            if state is not None and state.stopped:
                action = "kept_stopped"
            elif booked_units(state) > 0:
                action = "kept_booked"
            if change.planned is not None:
                items.append(self._preview_item(change.planned, action, change.current))
            else:
                items.append(
                    PreviewSession(
                        doctor_id=change.current["doctor_id"],
                        date=dt.date.fromisoformat(change.current["date"]),
                        session=change.current["session"],
                        action=action,
                        template_id=change.current.get("template_id"),
                        schedule_id=change.current["_id"],
                    )
                )
        items.sort(key=lambda item: (item.date, item.doctor_id, item.session))
        days: list[PreviewDay] = []
        date = query.from_
        while date <= query.to:
            entry = inputs.calendar.get(date.isoformat())
            weekday = scheduled_weekday(date, entry)
            days.append(
                PreviewDay(
                    date=date,
                    weekday=weekday or date.isoweekday(),
                    closed=weekday is None,
                    reason=(entry or {}).get("reason"),
                )
            )
            date += dt.timedelta(days=1)
        return Preview(days=days, items=items)

    @staticmethod
    def _preview_item(
        session: PlannedSession, action: PreviewAction, current: Document | None = None
    ) -> PreviewSession:
        return PreviewSession(
            doctor_id=session.doctor_id,
            date=session.date,
            session=session.session,  # type: ignore[arg-type]
            action=action,
            template_id=session.template_id,
            schedule_id=current["_id"] if current else None,
            clinic_type=session.clinic_type,  # type: ignore[arg-type]
            fee_cents=session.fee_cents,
            slots=[
                PreviewSlot(start=s.start, end=s.end, capacity=s.capacity) for s in session.slots
            ],
        )

    def window(self, hospital: Document) -> tuple[dt.date, dt.date]:
        today = self.today()
        return today, today + dt.timedelta(days=rules_of(hospital).window_days)

    async def regenerate_window(
        self,
        hospital_id: str,
        *,
        doctor_ids: list[str] | None = None,
        only: dt.date | None = None,
    ) -> Regeneration:
        """Generate the booking window now (or one date of it); when booking does not
        answer, the report says `deferred` and the job finishes the work."""
        hospital = await self.repo.hospital(hospital_id)
        if hospital is None:
            raise NotFound("医院不存在 / no such hospital")
        first, last = self.window(hospital)
        if only is not None:
            if not first <= only <= last:
                return Regeneration()
            first = last = only
        try:
            return await self.generate(hospital_id, first, last, doctor_ids=doctor_ids)
        except ServiceUnavailable:
            log.warning("regeneration deferred to the job", extra={"hospital_id": hospital_id})
            return Regeneration(deferred=True)

    async def generate(
        self,
        hospital_id: str,
        date_from: dt.date,
        date_to: dt.date,
        *,
        doctor_ids: list[str] | None = None,
    ) -> Regeneration:
        """Make the hospital's generated sessions in [date_from, date_to] match the plan."""
        inputs = await self._inputs(hospital_id, date_from, date_to, doctor_ids)
        comparison = await self._compare(inputs, date_from, date_to, doctor_ids)
        report = Regeneration(
            kept=[
                KeptSession(
                    schedule_id=doc["_id"],
                    doctor_id=doc["doctor_id"],
                    date=dt.date.fromisoformat(doc["date"]),
                    session=doc["session"],
                    booked=0,
                    why="manual",
                )
                for _, doc in comparison.manual
            ]
        )
        report.created = len(await self._publish(inputs, comparison.create))
        if comparison.changes:
            seen = await self._availability([c.current["_id"] for c in comparison.changes])
            replacements: list[PlannedSession] = []
            for change in comparison.changes:
                doc = change.current
                state = seen.get(doc["_id"])
                booked = booked_units(state)
                if state is not None and state.stopped:
                    report.kept.append(self._kept(doc, booked, "stopped"))
                    continue
                if booked > 0 or not await self._close(doc, state):
                    report.kept.append(self._kept(doc, max(booked, 1), "booked"))
                    continue
                self._crash_point("closed")
                await self.store.delete_generated_schedule(doc["_id"], doc["fingerprint"])
                if change.planned is None:
                    report.removed += 1
                else:
                    replacements.append(change.planned)
            report.replaced = len(await self._publish(inputs, replacements))
        if report.created or report.replaced or report.removed or report.kept:
            log.info(
                "sessions generated",
                extra={
                    "hospital_id": hospital_id,
                    "from": date_from.isoformat(),
                    "to": date_to.isoformat(),
                    "sessions_created": report.created,
                    "sessions_replaced": report.replaced,
                    "sessions_removed": report.removed,
                    "sessions_kept": len(report.kept),
                },
            )
        return report

    @staticmethod
    def _kept(doc: Document, booked: int, why: str) -> KeptSession:
        return KeptSession(
            schedule_id=doc["_id"],
            doctor_id=doc["doctor_id"],
            date=dt.date.fromisoformat(doc["date"]),
            session=doc["session"],
            booked=booked,
            why=why,  # type: ignore[arg-type]
        )

    async def _close(self, doc: Document, state: ScheduleAvailability | None) -> bool:
        """Close every slot of an unbooked session in booking (capacity → 0, refused
        atomically by booking once anything is booked), then stop it. False, with the
        capacity given back, if a booking got in first."""
        capacities = (
            {slot.id: slot.capacity for slot in state.slots}
            if state is not None
            else {slot["id"]: slot["capacity"] for slot in doc["slots"]}
        )
        closed: list[tuple[str, int]] = []
        for slot_id, capacity in capacities.items():
            if capacity <= 0:
                continue
            try:
                await self.booking.change_capacity(doc["hospital_id"], slot_id, -capacity)
            except (InvalidState, NotFound):
                for done_id, done_capacity in closed:
                    await self.booking.change_capacity(doc["hospital_id"], done_id, done_capacity)
                return False
            closed.append((slot_id, capacity))
        await self.booking.stop_schedule(doc["hospital_id"], doc["_id"], REGENERATED_REASON)
        return True

    async def _publish(self, inputs: Inputs, sessions: list[PlannedSession]) -> list[str]:
        """Insert planned sessions through the catalog's schedule-creation path, in batches;
        their `schedule.published` events are flushed now when few, else by the relay."""
        inserted: list[str] = []
        writing: asyncio.Task[list[str]] | None = None
        try:
            for i in range(0, len(sessions), self.batch):
                # the next batch is built while the store writes the previous one
                docs = [self._document(inputs, session) for session in sessions[i : i + self.batch]]
                if writing is not None:
                    inserted.extend(await writing)
                    self._crash_point("published_batch")
                writing = asyncio.ensure_future(self.store.insert_schedules(docs))
            if writing is not None:
                inserted.extend(await writing)
                writing = None
                self._crash_point("published_batch")
        finally:
            if writing is not None:
                writing.cancel()
        if len(inserted) <= FLUSH_INLINE:
            for schedule_id in inserted:
                await self.catalog.outbox.flush_quietly(self.repo.schedules, schedule_id)
        return inserted

    def _document(self, inputs: Inputs, session: PlannedSession) -> Document:
        doctor = inputs.doctors[session.doctor_id]
        return self.catalog.schedule_document(
            session.schedule_id,
            doctor,
            inputs.departments.get(doctor["department_id"]),
            ScheduleCreate(
                date=session.date,
                session=session.session,  # type: ignore[arg-type]
                fee_cents=session.fee_cents,
                slots=session.slots,
            ),
            slot_ids=session.slot_ids(),
            extra={
                "template_id": session.template_id,
                "fingerprint": session.fingerprint,
                "clinic_type": session.clinic_type,
            },
        )

    def _crash_point(self, name: str) -> None:
        if self.fault is not None:
            self.fault(name)

    async def _inputs(
        self,
        hospital_id: str,
        date_from: dt.date,
        date_to: dt.date,
        doctor_ids: list[str] | None = None,
    ) -> Inputs:
        hospital = await self.repo.hospital(hospital_id)
        if hospital is None:
            raise NotFound("医院不存在 / no such hospital")
        wanted = set(doctor_ids) if doctor_ids is not None else None
        templates = {
            doc["_id"]: [template_view(t, doc["_id"]) for t in doc.get("templates", [])]
            for doc in await self.store.hospital_templates(hospital_id)
            if wanted is None or doc["_id"] in wanted
        }
        doctors = {doc["_id"]: doc for doc in await self.repo.find_doctors(hospital_id=hospital_id)}
        departments = {doc["_id"]: doc for doc in await self.repo.departments_of(hospital_id)}
        calendar = {
            doc["date"]: doc
            for doc in await self.store.calendar_days(hospital_id, date_from, date_to)
        }
        on_leave = leave_days(await self.store.leaves_overlapping(hospital_id, date_from, date_to))
        return Inputs(hospital, templates, doctors, departments, calendar, on_leave)

    async def _compare(
        self,
        inputs: Inputs,
        date_from: dt.date,
        date_to: dt.date,
        doctor_ids: list[str] | None = None,
    ) -> Comparison:
        planned = plan_sessions(
            inputs.templates, inputs.doctors, inputs.calendar, inputs.on_leave, date_from, date_to
        )
        existing = await self.store.schedules_between(
            inputs.hospital["_id"], date_from, date_to, doctor_ids
        )
        return compare(planned, existing, inputs.on_leave)

    async def _availability(self, schedule_ids: list[str]) -> dict[str, ScheduleAvailability]:
        found: dict[str, ScheduleAvailability] = {}
        for i in range(0, len(schedule_ids), AVAILABILITY_BATCH):
            reply = await self.booking.availability(schedule_ids[i : i + AVAILABILITY_BATCH])
            found.update((item.schedule_id, item) for item in reply.items)
        return found

    async def _doctor(self, hospital_id: str, doctor_id: str) -> Document:
        doctor = await self.repo.doctor(doctor_id)
        if doctor is None or doctor["hospital_id"] != hospital_id:
            raise NotFound(NO_SUCH_DOCTOR)
        return doctor

    # the job

    async def generation_pass(self, term: int = 0) -> int:
        """One run of the generation job: every hospital whose inputs changed, whose day
        rolled over, or that was last generated a while ago; then unfinished leaves.
        Returns how many hospitals were generated."""
        now = self.catalog.clock()
        generated = 0
        for hospital in await self.repo.list_hospitals():
            hospital_id = hospital["_id"]
            state = await self.store.generation_state(hospital_id)
            wanted = int(state.get("wanted", 0))
            done_at = state.get("done_at")
            first, last = self.window(hospital)
            # the window moves with the day and with the hospital's `window_days` rule
            if (
                state.get("done") == wanted
                and state.get("done_through") == last.isoformat()
                and done_at is not None
                and now - done_at < FULL_PASS_EVERY
            ):
                continue
            try:
                await self.generate(hospital_id, first, last)
            except ServiceUnavailable:
                log.warning(
                    "generation deferred: booking unavailable", extra={"hospital_id": hospital_id}
                )
                continue
            except DomainError as exc:  # one hospital's trouble must not stall the others
                log.error(
                    "generation failed", extra={"hospital_id": hospital_id, "error": repr(exc)}
                )
                continue
            await self.store.mark_generated(hospital_id, wanted, last, now)
            generated += 1
        await self.resume_leaves()
        return generated
