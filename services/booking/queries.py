"""What patients and staff read of appointments, and the eligibility explanation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from services.booking.domain import HOLDING, PersonLimits, ban_until, iso_local
from services.booking.lifecycle import AppointmentLifecycle
from services.booking.projections import PatientDirectory, RulesBook, SessionBook
from services.booking.repository import Appointments, Persons, Sessions, no_show_dates
from services.booking.views import appointment_view
from shared.contracts.booking import (
    Appointment,
    AppointmentList,
    Eligibility,
    EligibilityReason,
    HospitalAppointmentFilter,
)
from shared.errors import (
    AlreadyBooked,
    BookingClosed,
    BookingNotOpen,
    DomainError,
    LimitReached,
    PatientBanned,
    ScheduleStopped,
    SlotFull,
    ValidationFailed,
)
from shared.rules import local_now


class AppointmentQueries:
    def __init__(
        self,
        *,
        appointments: Appointments,
        sessions: Sessions,
        persons: Persons,
        session_book: SessionBook,
        rules: RulesBook,
        patients: PatientDirectory,
        lifecycle: AppointmentLifecycle,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.appointments = appointments
        self.sessions = sessions
        self.persons = persons
        self.session_book = session_book
        self.rules = rules
        self.patients = patients
        self.lifecycle = lifecycle
        self.clock = clock

    async def get_for_user(self, user_id: str, appointment_id: str) -> Appointment:
        return appointment_view(await self.lifecycle.own(user_id, appointment_id))

    async def get_for_hospital(self, hospital_id: str, appointment_id: str) -> Appointment:
        return appointment_view(await self.lifecycle.of_hospital(hospital_id, appointment_id))

    async def list_for_user(
        self, user_id: str, status: str | None, cursor: str | None, limit: int
    ) -> AppointmentList:
        skip = _offset(cursor)
        docs = await self.appointments.of_user(user_id, status, skip, limit + 1)
        return AppointmentList(
            items=[appointment_view(d) for d in docs[:limit]],
            next=str(skip + limit) if len(docs) > limit else None,
        )

    async def list_for_hospital(
        self, hospital_id: str, query: HospitalAppointmentFilter
    ) -> AppointmentList:
        skip = _offset(query.cursor)
        docs = await self.appointments.of_hospital(
            hospital_id,
            date=query.date.isoformat() if query.date else None,
            doctor_id=query.doctor_id,
            schedule_id=query.schedule_id,
            status=query.status,
            skip=skip,
            limit=query.limit + 1,
        )
        return AppointmentList(
            items=[appointment_view(d) for d in docs[: query.limit]],
            next=str(skip + query.limit) if len(docs) > query.limit else None,
        )

    async def active_count_for_user(self, user_id: str) -> int:
        """The user's appointments still holding a number, for today or later."""
        today = local_now(self.clock()).date().isoformat()
        return await self.appointments.count_of_user(user_id, HOLDING, from_date=today)

    async def eligibility(self, user_id: str, slot_id: str, patient_id: str) -> Eligibility:
        """Every rule that blocks booking this slot for this person now (not on the booking
        path: it reads what it needs)."""
        slot = await self.session_book.slot(slot_id)
        patient = await self.patients.patient(user_id, patient_id)
        rules = await self.rules.rules(slot.hospital_id)
        session = await self.session_book.session(slot.schedule_id)
        now = self.clock()
        window = slot.window(rules)
        reasons: list[DomainError] = []
        if session.stopped:
            reasons.append(ScheduleStopped())
        if window.is_closed(now):
            reasons.append(BookingClosed(until=None))
        elif not window.is_released(now):
            reasons.append(BookingNotOpen(until=iso_local(window.release_at)))
        if session.stock[slot_id].remaining == 0:
            reasons.append(SlotFull())
        person = await self.persons.get(patient.id_hash) or {}
        until = ban_until(no_show_dates(person, slot.hospital_id), rules, now)
        if until is not None:
            reasons.append(PatientBanned(until=iso_local(until)))
        limits = PersonLimits.of(slot, rules)
        if (person.get("day") or {}).get(limits.day_key, 0) >= limits.per_department_per_day:
            reasons.append(AlreadyBooked(limit=rules.per_department_per_day))
        if (person.get("active") or {}).get(slot.hospital_id, 0) >= rules.max_active:
            reasons.append(LimitReached(limit=rules.max_active))
        return Eligibility(
            eligible=not reasons,
            reasons=[
                EligibilityReason(code=r.code, message=r.message, until=r.details.get("until"))
                for r in reasons
            ],
        )


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > 1_000_000:
        raise ValidationFailed.field("cursor", "无效的分页游标 / invalid cursor")
    return int(cursor)
