"""Deciding a booking: the path every patient at 放号 time takes.

A first-come booking is at most four store operations, with no call to another service:
  1. read the appointment the Idempotency-Key names (a replay ends here);
  2. reserve one unit of the slot and number the visit — one guarded write on the session;
  3. count it against the person — one guarded write on the person document (profile alive,
     no ban, department-day and active limits);
  4. insert the appointment with its `appointment.booked` event in its outbox.
The event is then published from memory; marking it sent is batched in the background. A
refusal of a slot this process saw sold out costs no store operation; a lost race three.

A crash between 2 and 4 leaves a unit (and maybe a person hold) held by an appointment that
does not exist: the session and person documents carry `check_after`, and the reconciler
returns such holds a minute later (jobs.py). A booking never outlives its RPC deadline, so a
minute is far beyond any booking still running.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

from services.booking.domain import (
    PatientRef,
    PersonLimits,
    SlotInfo,
    appointment_id_for,
    ban_until,
    iso_local,
    request_hash,
)
from services.booking.lottery import ReleaseLottery
from services.booking.projections import PatientDirectory, RulesBook, SessionBook, SoldOutBoard
from services.booking.repository import Appointments, Persons, Sessions, no_show_dates
from services.booking.views import appointment_event, appointment_view
from shared.context import deadline_var
from shared.contracts.booking import Appointment, BookParams
from shared.contracts.catalog import BookingRules
from shared.contracts.payment import order_id_for
from shared.errors import (
    AlreadyBooked,
    BookingClosed,
    BookingNotOpen,
    DomainError,
    IdempotencyKeyReused,
    LimitReached,
    NotFound,
    PatientBanned,
    ScheduleStopped,
    ServiceUnavailable,
    SlotFull,
)
from shared.faults import FaultPoints
from shared.messaging.events import EventEnvelope
from shared.messaging.outbox import OutboxRelay, outbox_fields, with_outbox
from shared.storage.mongo import Document
from shared.tracing import annotate

log = logging.getLogger("guahao.booking")

# how long after a write the reconciler looks for holds whose appointment never came
# (BOOKING_ORPHAN_CHECK_SECONDS; always well beyond the RPC deadline)
ORPHAN_CHECK_AFTER = dt.timedelta(seconds=60)

TakeUnit = Callable[[], Awaitable[int | None]]
ExtraEvents = Callable[[Document], list[EventEnvelope]]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Booker:
    def __init__(
        self,
        *,
        sessions: Sessions,
        appointments: Appointments,
        persons: Persons,
        session_book: SessionBook,
        rules: RulesBook,
        patients: PatientDirectory,
        sold_out: SoldOutBoard,
        lottery: ReleaseLottery,
        outbox: OutboxRelay,
        faults: FaultPoints | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        orphan_check_after: dt.timedelta = ORPHAN_CHECK_AFTER,
        payment_timeout: dt.timedelta | None = None,
    ) -> None:
        self.orphan_check_after = orphan_check_after
        # overrides the hospitals' `payment_timeout_minutes` (PAYMENT_TIMEOUT_SECONDS, tests)
        self.payment_timeout = payment_timeout
        self.sessions = sessions
        self.appointments = appointments
        self.persons = persons
        self.session_book = session_book
        self.rules = rules
        self.patients = patients
        self.sold_out = sold_out
        self.lottery = lottery
        self.outbox = outbox
        self.faults = faults or FaultPoints()
        self.clock = clock

    # ---- the request -------------------------------------------------------------------

    async def prepare(
        self, user_id: str, params: BookParams
    ) -> tuple[str, str, SlotInfo, BookingRules]:
        """What a booking decision starts from, all from memory on a warm process."""
        aid = appointment_id_for(user_id, params.idempotency_key)
        slot = await self.session_book.slot(params.slot_id)
        rules = await self.rules.rules(slot.hospital_id)
        return aid, request_hash(params.slot_id, params.patient_id), slot, rules

    def refuse_sold_out(self, slot: SlotInfo, aid: str) -> None:
        """Refuse at once a slot this process saw sold out, unless this is a replay of one
        of the appointments that held it."""
        note = self.sold_out.seen(slot.id)
        if note is not None and aid not in note.holders:
            raise ScheduleStopped() if note.stopped else SlotFull()

    def refuse_out_of_window(self, slot: SlotInfo, rules: BookingRules) -> None:
        now = self.clock()
        window = slot.window(rules)
        if window.is_closed(now):
            raise BookingClosed(until=None)
        if not window.is_released(now):
            raise BookingNotOpen(until=iso_local(window.release_at))

    async def replay(self, aid: str, user_id: str, req_hash: str) -> Appointment | None:
        """The first result of a retried Idempotency-Key (one read), or None if new."""
        existing = await self.appointments.get(aid)
        if existing is None:
            return None
        if existing["user_id"] != user_id or existing.get("request_hash") != req_hash:
            raise IdempotencyKeyReused()
        return appointment_view(existing)

    async def book(self, user_id: str, params: BookParams) -> tuple[Appointment, bool]:
        """First come: book a slot; the appointment and whether this call created it."""
        aid, req_hash, slot, rules = await self.prepare(user_id, params)
        annotate(appointment_id=aid, hospital_id=slot.hospital_id)
        collecting = self.lottery.is_collecting(rules, slot)
        if not collecting:
            self.refuse_sold_out(slot, aid)
        first = await self.replay(aid, user_id, req_hash)
        if first is not None:
            return first, False
        self.refuse_out_of_window(slot, rules)
        patient = await self.patients.patient(user_id, params.patient_id)
        doc = self.new_appointment(aid, user_id, req_hash, slot, patient, rules)
        if collecting:
            return await self.lottery.enter(doc, rules, slot), True
        if rules.release_mode == "lottery":
            await self.lottery.draw_before_first_come(slot.id, self.complete_pending)
        seq_no = await self.take(doc, slot, patient, rules)
        return await self.insert_booked(doc, seq_no, rules=rules)

    # ---- the steps (shared with the lottery and the waitlist) --------------------------

    def new_appointment(
        self,
        aid: str,
        user_id: str,
        req_hash: str,
        slot: SlotInfo,
        patient: PatientRef,
        rules: BookingRules,
    ) -> Document:
        now = self.clock()
        return {
            "_id": aid,
            "status": "pending",
            "user_id": user_id,
            "request_hash": req_hash,
            "hospital_id": slot.hospital_id,
            "slot_id": slot.id,
            "schedule_id": slot.schedule_id,
            "doctor": slot.doctor.model_dump(exclude_none=True),
            "department": slot.department.model_dump(exclude_none=True),
            "department_id": slot.department_id,
            "doctor_id": slot.doctor_id,
            "date": slot.date,
            "session": slot.session,
            "start": slot.start,
            "end": slot.end,
            "fee_cents": slot.fee_cents,
            "patient": patient.snapshot(),
            "id_hash": patient.id_hash,
            "person_key": PersonLimits.of(slot, rules).day_key,
            "cancel_deadline": slot.window(rules).cancel_deadline,
            "created_at": now,
            "updated_at": now,
        }

    async def take(
        self,
        doc: Document,
        slot: SlotInfo,
        patient: PatientRef,
        rules: BookingRules,
        take_unit: TakeUnit | None = None,
    ) -> int:
        """Steps 2 and 3; the 就诊序号. First come takes the unit first (a lost race then
        costs least); a hand-over (`take_unit`, the waitlist) counts the person first, so a
        patient the rules refuse leaves the unit where it is, for the next one. Idempotent
        per appointment: a resumed booking finds its unit and hold again."""
        aid = doc["_id"]
        limits = PersonLimits.of(slot, rules)
        if take_unit is None:
            seq_no = await self.sessions.reserve(
                slot.schedule_id, slot.id, aid, self.clock(), self.clock() + self.orphan_check_after
            )
            if seq_no is None:
                seq_no = await self._lost_unit(slot, aid)
            self.faults.point("book.after_reserve")
            await self._hold_person(aid, patient, limits, rules, slot=slot)
        else:
            await self._hold_person(aid, patient, limits, rules, slot=None)
            taken = await take_unit()
            if taken is None:
                await self.persons.release(patient.id_hash, aid, limits.hospital_id, limits.day_key)
                raise SlotFull()
            seq_no = taken
        self.faults.point("book.after_hold")
        return seq_no

    async def _hold_person(
        self,
        aid: str,
        patient: PatientRef,
        limits: PersonLimits,
        rules: BookingRules,
        *,
        slot: SlotInfo | None,
    ) -> None:
        """Count the booking against the person, or refuse it with the rule that blocks
        it (giving back the unit already taken for it, when `slot` says which)."""
        now = self.clock()
        if await self.persons.hold(patient, aid, limits, now, now + self.orphan_check_after):
            return
        person = await self.persons.get(patient.id_hash)
        if aid in (person or {}).get("holds", {}):
            return  # a resumed booking: the hold is ours already
        if ((person or {}).get("profiles") or {}).get(
            patient.id
        ) != patient.user_id and await self.persons.add_profile(
            patient.id_hash, patient.id, patient.user_id
        ):
            # this replica heard of the profile (the `views` broadcast) before the person
            # document did (the `patients` consumer): record it now, once, and try again
            if await self.persons.hold(patient, aid, limits, now, now + self.orphan_check_after):
                return
            person = await self.persons.get(patient.id_hash)
        if slot is not None and await self.sessions.release(slot.schedule_id, slot.id, aid):
            self.sold_out.freed(slot.id)
        raise self._person_refusal(person, patient, limits, rules)

    async def _lost_unit(self, slot: SlotInfo, aid: str) -> int:
        """The reservation was refused: full, stopped, or already ours (a resumed booking)."""
        session = await self.sessions.get(slot.schedule_id)
        if session is None:
            raise NotFound("号源不存在 / slot not found", slot_id=slot.id)
        stock = session.stock[slot.id]
        if aid in stock.holders:
            return await self.sessions.next_seq(slot.schedule_id)
        if session.stopped:
            self.sold_out.sold_out(slot.id, stock.holders, stopped=True)
            raise ScheduleStopped()
        if stock.remaining == 0:
            self.sold_out.sold_out(slot.id, stock.holders)
        raise SlotFull()

    def _person_refusal(
        self,
        person: Document | None,
        patient: PatientRef,
        limits: PersonLimits,
        rules: BookingRules,
    ) -> DomainError:
        if person is None or (person.get("profiles") or {}).get(patient.id) != patient.user_id:
            self.patients.drop(patient.id)
            return NotFound("就诊人不存在 / patient not found")
        until = ban_until(no_show_dates(person, limits.hospital_id), rules, self.clock())
        if until is not None:
            return PatientBanned(until=iso_local(until))
        if (person.get("day") or {}).get(limits.day_key, 0) >= limits.per_department_per_day:
            return AlreadyBooked(limit=limits.per_department_per_day)
        return LimitReached(limit=limits.max_active)

    def awaiting_payment(
        self, doc: Document, seq_no: int, rules: BookingRules, now: dt.datetime
    ) -> Document:
        """The appointment of a hospital that collects the fee: it holds its unit until
        `pay_by`; the payment service makes the order from its event (same order id)."""
        timeout = self.payment_timeout or dt.timedelta(minutes=rules.payment_timeout_minutes)
        return {
            **doc,
            "status": "pending_payment",
            "seq_no": seq_no,
            "updated_at": now,
            "pay_by": now + timeout,
            "awaiting_payment": True,
            "payment": {
                "order_id": order_id_for(doc["_id"]),
                "amount_cents": doc["fee_cents"],
                "status": "unpaid",
            },
        }

    async def insert_booked(
        self,
        doc: Document,
        seq_no: int,
        extra_events: ExtraEvents | None = None,
        *,
        rules: BookingRules | None = None,
    ) -> tuple[Appointment, bool]:
        """Step 4: the appointment and its events in one insert, then published from memory;
        the appointment and whether this runner created it. With `rules` that collect a fee
        (and a fee to collect) it waits for the payment (`pending_payment`) instead."""
        if _past_deadline():
            await self.undo_take(doc)
            raise ServiceUnavailable("预约超时，请重试 / booking timed out, retry")
        now = self.clock()
        if rules is not None and rules.payment == "required" and doc["fee_cents"] > 0:
            booked = self.awaiting_payment(doc, seq_no, rules, now)
            event_type = "appointment.pending_payment"
        else:
            booked = {
                **doc,
                "status": "booked",
                "seq_no": seq_no,
                "booked_at": now,
                "updated_at": now,
            }
            event_type = "appointment.booked"
        events = [
            appointment_event(event_type, booked, now),
            *(extra_events(booked) if extra_events else []),
        ]
        if not await self.appointments.insert({**booked, **outbox_fields(*events)}):
            return await self._concurrent_first(doc), False
        self.faults.point("book.after_insert")
        log.info(
            "appointment booked",
            extra={
                "appointment_id": doc["_id"],
                "slot_id": doc["slot_id"],
                "status": booked["status"],
            },
        )
        await self.outbox.publish_committed(self.appointments.collection, doc["_id"], events)
        return appointment_view(booked), True

    async def complete_pending(
        self,
        doc: Document,
        rules: BookingRules,
        take_unit: TakeUnit | None = None,
        extra_events: ExtraEvents | None = None,
    ) -> Appointment:
        """pending → booked (or pending_payment, at a hospital that collects the fee) for an
        appointment that already exists (a lottery entry)."""
        slot = await self.session_book.slot(doc["slot_id"])
        patient = PatientRef(
            id=doc["patient"]["id"],
            user_id=doc["user_id"],
            id_hash=doc["id_hash"],
            name=doc["patient"]["name"],
            id_number_masked=doc["patient"]["id_number_masked"],
        )
        seq_no = await self.take(doc, slot, patient, rules, take_unit)
        now = self.clock()
        if rules.payment == "required" and doc["fee_cents"] > 0:  # a drawn entry pays too
            after = self.awaiting_payment(doc, seq_no, rules, now)
            fields = {
                k: after[k]
                for k in ("status", "seq_no", "updated_at", "pay_by", "awaiting_payment", "payment")
            }
            event_type = "appointment.pending_payment"
        else:
            fields = {"status": "booked", "seq_no": seq_no, "booked_at": now, "updated_at": now}
            event_type = "appointment.booked"
        booked = {**doc, **fields}
        events = [
            appointment_event(event_type, booked, now),
            *(extra_events(booked) if extra_events else []),
        ]
        final = await self.appointments.transition(
            doc["_id"], "pending", with_outbox({"$set": fields}, *events)
        )
        if final is None:
            return await self._concurrent_first(doc)
        await self.outbox.publish_committed(self.appointments.collection, doc["_id"], events)
        return appointment_view(final)

    async def _concurrent_first(self, doc: Document) -> Appointment:
        """Another runner of the same appointment got there first: its result."""
        current = await self.appointments.get(doc["_id"])
        if current is None:
            raise ServiceUnavailable("请稍后重试 / try again")
        return appointment_view(current)

    async def undo_take(self, doc: Document) -> None:
        """Give back the unit and the person's hold of an appointment that will not be
        inserted (only when that is certain: an insert of unknown outcome is left to the
        reconciler, which looks before it returns anything)."""
        if await self.sessions.release(doc["schedule_id"], doc["slot_id"], doc["_id"]):
            self.sold_out.freed(doc["slot_id"])
        await self.persons.release(
            doc["id_hash"], doc["_id"], doc["hospital_id"], doc["person_key"]
        )


def _past_deadline() -> bool:
    """The caller has given up (its RPC deadline passed): inserting now would book for
    nobody."""
    deadline = deadline_var.get()
    return deadline is not None and time.time() > deadline
