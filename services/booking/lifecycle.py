"""An appointment after it is booked: cancel, check in, no-show, complete, 改约.

Each change is one guarded write on the appointment that also carries its event and, when
the change frees something, what it owes (`owed`: the slot unit to return, the person's
hold to return). `settle` pays the debt at once; if the process dies first, the reconciler
pays it (jobs.py). So a unit is returned exactly once whatever dies when.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Protocol

from services.booking.booker import Booker
from services.booking.domain import (
    HOLDING,
    PersonLimits,
    ban_until,
    check_transition,
    iso_local,
)
from services.booking.projections import RulesBook, SessionBook, SoldOutBoard
from services.booking.repository import Appointments, Persons, Sessions, no_show_dates
from services.booking.views import appointment_event, appointment_view
from shared.contracts.booking import Appointment
from shared.contracts.payment import refund_no_for
from shared.errors import (
    AlreadyBooked,
    CancelDeadlinePassed,
    InvalidState,
    NotFound,
    PatientBanned,
    ScheduleStopped,
    SlotFull,
    ValidationFailed,
)
from shared.faults import FaultPoints
from shared.messaging.outbox import OutboxRelay, with_outbox
from shared.rules import at_local, local_now
from shared.storage.mongo import Document

log = logging.getLogger("guahao.booking.lifecycle")


def payment_after_cancel(doc: Document) -> Document:
    """What a cancellation does to the fee as the appointment shows it (the payment
    service decides the same from the `appointment.cancelled` event): an unpaid order is
    closed, a paid fee is refunded in full."""
    payment = doc.get("payment")
    if not payment:
        return {}
    if doc["status"] == "pending_payment" or payment["status"] == "unpaid":
        return {"awaiting_payment": False, "payment": {**payment, "status": "closed"}}
    if payment["status"] == "paid":
        return {
            "payment": {**payment, "status": "refunding"},
            "refund": refund_view(payment, "processing"),
        }
    return {}


def refund_view(payment: Document, status: str) -> Document:
    return {
        "out_refund_no": refund_no_for(payment["order_id"]),
        "amount_cents": payment["amount_cents"],
        "status": status,
    }


Clock = Callable[[], dt.datetime]


class HandOver(Protocol):
    """Who a freed unit goes to first (the waitlist)."""

    async def hand_over(self, slot_id: str, from_appointment_id: str | None) -> bool: ...


class QueuePlacement(Protocol):
    """Where a check-in puts the appointment in its session's queue (the queue desk)."""

    async def place(self, doc: Document) -> Document: ...

    async def requeue(self, doc: Document) -> Appointment: ...

    async def done(
        self, hospital_id: str, schedule_id: str, appointment_id: str
    ) -> Appointment: ...


class AppointmentLifecycle:
    def __init__(
        self,
        *,
        appointments: Appointments,
        sessions: Sessions,
        persons: Persons,
        session_book: SessionBook,
        rules: RulesBook,
        sold_out: SoldOutBoard,
        outbox: OutboxRelay,
        booker: Booker,
        waitlist: HandOver | None,
        faults: FaultPoints,
        clock: Clock,
        queue: QueuePlacement | None = None,
    ) -> None:
        self.appointments = appointments
        self.queue = queue
        self.sessions = sessions
        self.persons = persons
        self.session_book = session_book
        self.rules = rules
        self.sold_out = sold_out
        self.outbox = outbox
        self.booker = booker
        self.waitlist = waitlist
        self.faults = faults
        self.clock = clock

    # ---- lookups with access rules -----------------------------------------------------

    async def own(self, user_id: str, appointment_id: str) -> Document:
        doc = await self.appointments.get(appointment_id)
        hidden = doc is not None and doc["status"] == "pending" and not doc.get("lottery")
        if doc is None or doc["user_id"] != user_id or hidden:
            raise NotFound("预约不存在 / appointment not found")
        return doc

    async def of_hospital(self, hospital_id: str, appointment_id: str) -> Document:
        doc = await self.appointments.get(appointment_id)
        if doc is None or doc["hospital_id"] != hospital_id or doc["status"] == "pending":
            raise NotFound("预约不存在 / appointment not found")
        return doc

    # ---- changes -----------------------------------------------------------------------

    async def change(
        self,
        doc: Document,
        target: str,
        event_type: str,
        fields: Document,
        *,
        frees_unit: bool = False,
        frees_person: bool = False,
    ) -> Document:
        """One guarded write: status `doc.status` → `target` with its event and, when the
        change frees the slot's unit or the person's hold, the debt that says so."""
        check_transition(doc["status"], target)
        now = self.clock()
        fields = {"status": target, "updated_at": now, **fields}
        frees = frees_unit or frees_person
        if frees:
            fields |= {
                "owed": {"unit": frees_unit, "person": frees_person},
                "owed_at": now,
                "owing": True,
            }
        after = {**doc, **fields}
        event = appointment_event(event_type, after, now)
        updated = await self.appointments.transition(
            doc["_id"], doc["status"], with_outbox({"$set": fields}, event)
        )
        if updated is None:
            raise InvalidState(status="changed")
        self.faults.point(f"{target}.after_write")
        if frees:
            await self.settle(updated)
        await self.outbox.publish_committed(self.appointments.collection, doc["_id"], [event])
        return updated

    async def settle(self, doc: Document) -> None:
        """Pay what a change owes: the unit to the first waiting patient or to the pool, the
        person's hold back. Safe to repeat (each return happens once)."""
        owed = doc.get("owed") or {}
        if owed.get("unit"):
            await self.return_unit(doc["schedule_id"], doc["slot_id"], doc["_id"])
            self.faults.point("settle.after_unit")
        if owed.get("person"):
            await self.persons.release(
                doc["id_hash"], doc["_id"], doc["hospital_id"], doc["person_key"]
            )
            self.faults.point("settle.after_person")
        if "from" in owed:
            old = owed["from"]
            await self.return_unit(old["schedule_id"], old["slot_id"], doc["_id"])
            self.faults.point("settle.after_old_unit")
        if owed:
            await self.appointments.settled(doc["_id"], doc["owed_at"])

    async def return_unit(self, schedule_id: str, slot_id: str, appointment_id: str) -> None:
        if self.waitlist is not None and await self.waitlist.hand_over(slot_id, appointment_id):
            log.info("slot handed to the waitlist", extra={"slot_id": slot_id})
        elif await self.sessions.release(schedule_id, slot_id, appointment_id):
            self.sold_out.freed(slot_id)
            log.info("slot released", extra={"slot_id": slot_id, "appointment_id": appointment_id})

    async def cancel(self, doc: Document, by: str, reason: str | None) -> Document:
        fields: Document = {
            "cancelled_by": by,
            "cancelled_at": self.clock(),
            **payment_after_cancel(doc),
        }
        if reason:
            fields["reason"] = reason
        holding = doc["status"] in HOLDING
        updated = await self.change(
            doc,
            "cancelled",
            "appointment.cancelled",
            fields,
            frees_unit=holding,
            frees_person=holding,
        )
        log.info("appointment cancelled", extra={"appointment_id": doc["_id"], "by": by})
        return updated

    async def cancel_by_patient(self, user_id: str, appointment_id: str) -> Appointment:
        doc = await self.own(user_id, appointment_id)
        if doc["status"] not in ("booked", "pending_payment"):
            raise InvalidState(status=doc["status"])
        if doc["status"] == "booked" and self.clock() > doc["cancel_deadline"]:
            raise CancelDeadlinePassed(deadline=iso_local(doc["cancel_deadline"]))
        return appointment_view(await self.cancel(doc, "patient", "患者取消"))

    async def cancel_by_hospital(
        self, hospital_id: str, appointment_id: str, reason: str | None
    ) -> Appointment:
        doc = await self.of_hospital(hospital_id, appointment_id)
        if doc["status"] not in ("booked", "pending_payment"):
            raise InvalidState(status=doc["status"])
        return appointment_view(await self.cancel(doc, "hospital", reason or "医院取消"))

    async def check_in(self, hospital_id: str, appointment_id: str) -> Appointment:
        """签到: only on the visit day (hospital-local); the same write puts the appointment
        in its session's queue. A skipped patient checking in again goes back in the queue."""
        doc = await self.of_hospital(hospital_id, appointment_id)
        if doc["status"] == "checked_in" and self.queue is not None:
            return await self.queue.requeue(doc)
        today = local_now(self.clock()).date().isoformat()
        if doc["status"] == "booked" and doc["date"] != today:
            raise InvalidState(
                "只能在就诊当天签到 / check-in only on the visit day", date=doc["date"]
            )
        fields: Document = {"checked_in_at": self.clock()}
        if doc["status"] == "booked" and self.queue is not None:
            fields["queue"] = await self.queue.place(doc)
        return appointment_view(
            await self.change(
                doc, "checked_in", "appointment.checked_in", fields, frees_person=True
            )
        )

    async def complete(self, hospital_id: str | None, appointment_id: str) -> Appointment:
        """就诊完成 (checked_in → completed)."""
        doc = (
            await self.of_hospital(hospital_id, appointment_id)
            if hospital_id
            else await self.appointments.get(appointment_id)
        )
        if doc is None:
            raise NotFound()
        if self.queue is not None and (doc.get("queue") or {}).get("state") == "called":
            done = await self.queue.done(doc["hospital_id"], doc["schedule_id"], doc["_id"])
            return Appointment.model_validate(done.model_dump(exclude={"queue"}))  # timed
        return appointment_view(
            await self.change(
                doc, "completed", "appointment.completed", {"completed_at": self.clock()}
            )
        )

    async def mark_no_show(self, hospital_id: str | None, appointment_id: str) -> Appointment:
        """爽约: only once the session's slot has ended; counts towards the person's ban."""
        doc = (
            await self.of_hospital(hospital_id, appointment_id)
            if hospital_id
            else await self.appointments.get(appointment_id)
        )
        if doc is None:
            raise NotFound()
        ends = at_local(dt.date.fromisoformat(doc["date"]), doc["end"])
        if doc["status"] == "booked" and self.clock() < ends:
            raise InvalidState(
                "就诊时段结束后才能登记爽约 / no-show only after the slot ended",
                ends_at=iso_local(ends),
            )
        updated = await self.change(
            doc, "no_show", "appointment.no_show", {"no_show_at": self.clock()}, frees_person=True
        )
        await self.record_no_show(updated)
        return appointment_view(updated)

    async def record_no_show(self, doc: Document) -> None:
        rules = await self.rules.rules(doc["hospital_id"])
        person = await self.persons.get(doc["id_hash"])
        dates = [*no_show_dates(person, doc["hospital_id"]), doc["date"]]
        until = ban_until(dates, rules, self.clock())
        await self.persons.record_no_show(
            doc["id_hash"], doc["_id"], doc["hospital_id"], doc["date"], until
        )

    # ---- 改约 --------------------------------------------------------------------------

    async def move_by_hospital(
        self, hospital_id: str, appointment_id: str, slot_id: str
    ) -> Appointment:
        doc = await self.of_hospital(hospital_id, appointment_id)
        return await self.move(doc, slot_id, by="hospital")

    async def move_by_patient(self, user_id: str, appointment_id: str, slot_id: str) -> Appointment:
        doc = await self.own(user_id, appointment_id)
        if doc["status"] == "booked" and self.clock() > doc["cancel_deadline"]:
            raise CancelDeadlinePassed(deadline=iso_local(doc["cancel_deadline"]))
        return await self.move(doc, slot_id, by="patient")

    async def move(self, doc: Document, slot_id: str, *, by: str) -> Appointment:
        """Take the new unit first, then move the appointment in one write that records the
        old unit as owed; a crash anywhere leaves at most one unit held (the reconciler
        returns a stale move's loser and pays what a move owes)."""
        if doc["status"] != "booked":
            raise InvalidState(status=doc["status"])
        if doc["slot_id"] == slot_id:
            raise ValidationFailed.field("slot_id", "与原号源相同 / same slot")
        target = await self.session_book.slot(slot_id)
        if target.hospital_id != doc["hospital_id"]:
            raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
        if target.department_id != doc["department_id"]:
            raise ValidationFailed.field("slot_id", "只能改约到同一科室 / same department only")
        rules = await self.rules.rules(doc["hospital_id"])
        if by == "patient":  # the rules of a new booking (the unit and the day: below)
            self.booker.refuse_out_of_window(target, rules)
            person = await self.persons.get(doc["id_hash"])
            until = ban_until(no_show_dates(person, doc["hospital_id"]), rules, self.clock())
            if until is not None:
                raise PatientBanned(until=iso_local(until))
        aid = doc["_id"]
        now = self.clock()
        new_key = PersonLimits.of(target, rules).day_key
        marked = await self.appointments.mark_move(
            aid,
            doc["slot_id"],
            {
                "to": slot_id,
                "to_schedule": target.schedule_id,
                "to_key": new_key,
                "from": doc["slot_id"],
                "from_key": doc["person_key"],
                "at": now,
            },
        )
        if marked is None:
            raise InvalidState(status="changed")
        self.faults.point("move.after_mark")
        seq_no = await self.sessions.reserve(
            target.schedule_id, slot_id, aid, now, now + dt.timedelta(minutes=5)
        )
        if seq_no is None:
            await self.appointments.clear_move(aid)
            session = await self.sessions.get(target.schedule_id)
            raise ScheduleStopped() if session is None or session.stopped else SlotFull()
        self.faults.point("move.after_reserve")
        new_fields = {
            "slot_id": slot_id,
            "schedule_id": target.schedule_id,
            "doctor": target.doctor.model_dump(exclude_none=True),
            "doctor_id": target.doctor_id,
            "date": target.date,
            "session": target.session,
            "start": target.start,
            "end": target.end,
            "fee_cents": target.fee_cents,
            "seq_no": seq_no,
            "cancel_deadline": target.window(rules).cancel_deadline,
            "person_key": new_key,
            "updated_at": now,
            "owed": {"from": {"schedule_id": doc["schedule_id"], "slot_id": doc["slot_id"]}},
            "owed_at": now,
            "owing": True,
        }
        if new_key != doc["person_key"] and not await self.persons.move_hold(
            doc["id_hash"], aid, doc["person_key"], new_key, rules.per_department_per_day
        ):
            await self.undo_move(aid, marked["move"])
            raise AlreadyBooked(limit=rules.per_department_per_day)
        self.faults.point("move.after_person")
        previous = {k: doc[k] for k in ("slot_id", "date", "start", "end", "seq_no")}
        after = {**doc, **new_fields}
        event = appointment_event("appointment.rescheduled", after, now, previous=previous)
        update = with_outbox({"$set": new_fields}, event)
        update["$unset"] = {"move": "", "moving": ""}
        moved = await self.appointments.transition(aid, "booked", update, slot_id=doc["slot_id"])
        if moved is None:
            await self.undo_move(aid, marked["move"])
            raise InvalidState(status="changed")
        self.faults.point("move.after_final_write")
        await self.settle(moved)
        log.info("appointment moved", extra={"appointment_id": aid, "slot_id": slot_id})
        await self.outbox.publish_committed(self.appointments.collection, aid, [event])
        return appointment_view(moved)

    async def undo_move(self, appointment_id: str, move: Document) -> None:
        """A move that did not commit: the new unit and the person's new day go back
        (each only if taken), then the marker."""
        doc = await self.appointments.get(appointment_id)
        if doc is not None and doc["slot_id"] == move["to"]:
            return  # it did commit after all
        if await self.sessions.release(move["to_schedule"], move["to"], appointment_id):
            self.sold_out.freed(move["to"])
        if doc is not None and move["to_key"] != move["from_key"]:
            await self.persons.move_hold(
                doc["id_hash"], appointment_id, move["to_key"], move["from_key"], None
            )
        await self.appointments.clear_move(appointment_id)
