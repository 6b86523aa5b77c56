"""Booking rules and the appointment life cycle. No I/O details: repositories and ports
are given to the constructor.

A booking is a short sequence of single-document steps, each idempotent, starting from a
`pending` appointment whose id comes from the Idempotency-Key:
  1. insert the pending appointment (concurrent retries of one key meet here);
  2. claim the per-person holds (per department per day, max active);
  3. reserve one unit of the slot (guarded update; the only place that can say SLOT_FULL);
  4. take the next seq_no of the schedule;
  5. finalize to `booked` with its event in the outbox (one write).
A failure rolls the earlier steps back; a crash leaves a stale `pending` that the reconciler
rolls back (jobs.py). A 停诊 racing with step 5 is caught by re-reading the slot afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.booking.lottery import ReleaseLottery
from services.booking.ports import CatalogPort, PatientPort, WaitlistPort
from services.booking.repository import Appointments, Holds, Inventory, NoShows
from shared.contracts.booking import (
    Appointment,
    AppointmentList,
    Availability,
    BookParams,
    Eligibility,
    EligibilityReason,
    ScheduleAvailability,
    SlotAvailability,
    SlotState,
    StopResult,
)
from shared.contracts.catalog import BookingRules
from shared.contracts.patients import ResolvedPatient
from shared.errors import (
    AlreadyBooked,
    BookingClosed,
    BookingNotOpen,
    CancelDeadlinePassed,
    DomainError,
    IdempotencyKeyReused,
    InvalidState,
    LimitReached,
    NotFound,
    PatientBanned,
    ScheduleStopped,
    ServiceUnavailable,
    SlotFull,
    ValidationFailed,
)
from shared.ids import new_id
from shared.messaging.events import EventEnvelope, new_event
from shared.messaging.outbox import OutboxRelay, with_outbox
from shared.rules import HOSPITAL_TZ, BookingWindow, at_local, local_now
from shared.storage.mongo import Document

log = logging.getLogger("guahao.booking")

PENDING_STALE_AFTER = dt.timedelta(seconds=30)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def appointment_id_for(user_id: str, idempotency_key: str | None) -> str:
    """Retries of one Idempotency-Key by one user land on the same appointment id."""
    if idempotency_key is None:
        return new_id("apt")
    digest = hashlib.sha256(f"{user_id}\n{idempotency_key}".encode()).hexdigest()
    return f"apt_{digest[:24]}"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(HOSPITAL_TZ).isoformat(timespec="seconds")


class BookingService:
    def __init__(
        self,
        inventory: Inventory,
        appointments: Appointments,
        holds: Holds,
        no_shows: NoShows,
        catalog: CatalogPort,
        patients: PatientPort,
        outbox: OutboxRelay,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.inventory = inventory
        self.appointments = appointments
        self.holds = holds
        self.no_shows = no_shows
        self.catalog = catalog
        self.patients = patients
        self.outbox = outbox
        self.clock = clock
        self.waitlist: WaitlistPort | None = None
        self.lottery = ReleaseLottery(self)

    # ---- inventory ---------------------------------------------------------------------

    async def slot(self, slot_id: str) -> Document:
        """The slot, pulling its schedule from the catalog the first time booking sees it."""
        slot = await self.inventory.slot(slot_id)
        if slot is None:
            definition = await self.catalog.schedule_for_slot(slot_id)
            if definition is None:
                raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
            await self.inventory.register(definition)
            slot = await self.inventory.slot(slot_id)
        if slot is None:
            raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
        return slot

    async def schedule(self, schedule_id: str, hospital_id: str | None = None) -> Document:
        schedule = await self.inventory.schedule(schedule_id)
        if schedule is None:
            definition = await self.catalog.schedule_definition(schedule_id)
            if definition is not None:
                await self.inventory.register(definition)
                schedule = await self.inventory.schedule(schedule_id)
        if schedule is None or (hospital_id and schedule["hospital_id"] != hospital_id):
            raise NotFound("出诊不存在 / schedule not found", schedule_id=schedule_id)
        return schedule

    async def availability(self, schedule_ids: list[str]) -> Availability:
        schedules = await self.inventory.schedules_by_id(schedule_ids)
        slots = await self.inventory.slots_of(list(schedules))
        by_schedule: dict[str, list[SlotAvailability]] = {sid: [] for sid in schedules}
        for slot in slots:
            by_schedule[slot["schedule_id"]].append(SlotAvailability(
                id=slot["_id"], capacity=slot["capacity"],
                remaining=max(0, slot["capacity"] - slot["booked"])))
        return Availability(items=[
            ScheduleAvailability(schedule_id=sid, stopped=bool(schedules[sid].get("stopped")),
                                 slots=by_schedule[sid])
            for sid in schedules
        ])

    # ---- rules -------------------------------------------------------------------------

    async def _reasons(self, rules: BookingRules, slot: Document, patient: ResolvedPatient,
                       *, with_counts: bool) -> list[DomainError]:
        """Every rule that blocks booking this slot for this person now."""
        now = self.clock()
        window = BookingWindow(rules, dt.date.fromisoformat(slot["date"]), slot["session"],
                               slot["start"])
        reasons: list[DomainError] = []
        if slot.get("stopped"):
            reasons.append(ScheduleStopped())
        if window.is_closed(now):
            reasons.append(BookingClosed(until=None))
        elif not window.is_released(now):
            reasons.append(BookingNotOpen(until=_iso(window.release_at)))
        if slot["booked"] >= slot["capacity"]:
            reasons.append(SlotFull())
        ban_until = await self._ban_until(rules, patient.id_hash, slot["hospital_id"])
        if ban_until is not None:
            reasons.append(PatientBanned(until=_iso(ban_until)))
        if with_counts:
            same_day = await self.appointments.count_active({
                "id_hash": patient.id_hash, "hospital_id": slot["hospital_id"],
                "department_id": slot["department_id"], "date": slot["date"]})
            if same_day >= rules.per_department_per_day:
                reasons.append(AlreadyBooked(limit=rules.per_department_per_day))
            active = await self.appointments.count_active({
                "id_hash": patient.id_hash, "hospital_id": slot["hospital_id"],
                "date": {"$gte": local_now(now).date().isoformat()}})
            if active >= rules.max_active:
                reasons.append(LimitReached(limit=rules.max_active))
        return reasons

    async def _ban_until(self, rules: BookingRules, id_hash: str, hospital_id: str
                         ) -> dt.datetime | None:
        today = local_now(self.clock()).date()
        since = today - dt.timedelta(days=rules.no_show_window_days)
        dates = await self.no_shows.dates_since(id_hash, hospital_id, since)
        if len(dates) < rules.no_show_limit or rules.ban_days == 0:
            return None
        last = dt.date.fromisoformat(dates[-1])
        until = dt.datetime.combine(last + dt.timedelta(days=rules.ban_days + 1), dt.time(),
                                    tzinfo=HOSPITAL_TZ)
        return until if until > self.clock() else None

    async def eligibility(self, user_id: str, slot_id: str, patient_id: str) -> Eligibility:
        slot = await self.slot(slot_id)
        patient = await self.patients.resolve(user_id, patient_id)
        rules = await self.catalog.rules(slot["hospital_id"])
        reasons = await self._reasons(rules, slot, patient, with_counts=True)
        return Eligibility(eligible=not reasons, reasons=[
            EligibilityReason(code=r.code, message=r.message, until=r.details.get("until"))
            for r in reasons
        ])

    # ---- booking -----------------------------------------------------------------------

    async def book(self, user_id: str, params: BookParams) -> tuple[Appointment, bool]:
        """Book a slot; returns the appointment and whether this call created it."""
        appointment_id = appointment_id_for(user_id, params.idempotency_key)
        request_hash = hashlib.sha256(f"{params.slot_id}|{params.patient_id}".encode()).hexdigest()
        for _ in range(3):
            existing = await self.appointments.get(appointment_id)
            if existing is not None:
                replay = await self._replay(existing, user_id, request_hash)
                if replay is not None:
                    return replay, False
                continue
            slot = await self.slot(params.slot_id)
            patient = await self.patients.resolve(user_id, params.patient_id)
            rules = await self.catalog.rules(slot["hospital_id"])
            reasons = await self._reasons(rules, slot, patient, with_counts=False)
            lottery_open = self.lottery.is_collecting(rules, slot)
            if reasons and not (lottery_open and all(r.code == "SLOT_FULL" for r in reasons)):
                raise reasons[0]
            doc = self._pending_document(appointment_id, user_id, request_hash, slot, patient,
                                         rules)
            if lottery_open:
                return await self.lottery.enter(doc, rules), True
            if rules.release_mode == "lottery":
                await self.lottery.draw_before_first_come(slot["_id"])
            if not await self.appointments.insert_pending(doc):
                continue  # a concurrent retry of the same key got there first
            try:
                return await self._complete_booking(doc, rules), True
            except BaseException:
                await self._roll_back(doc)
                raise
        raise ServiceUnavailable("请稍后重试 / try again")

    def _pending_document(self, appointment_id: str, user_id: str, request_hash: str,
                          slot: Document, patient: ResolvedPatient, rules: BookingRules
                          ) -> Document:
        now = self.clock()
        window = BookingWindow(rules, dt.date.fromisoformat(slot["date"]), slot["session"],
                               slot["start"])
        return {
            "_id": appointment_id, "status": "pending", "user_id": user_id,
            "request_hash": request_hash, "hospital_id": slot["hospital_id"],
            "slot_id": slot["_id"], "schedule_id": slot["schedule_id"],
            "doctor": slot["doctor"], "department": slot["department"],
            "department_id": slot["department_id"], "doctor_id": slot["doctor_id"],
            "date": slot["date"], "session": slot["session"], "start": slot["start"],
            "end": slot["end"], "fee_cents": slot["fee_cents"],
            "patient": {"id": patient.id, "name": patient.name,
                        "id_number_masked": patient.id_number_masked},
            "id_hash": patient.id_hash, "cancel_deadline": window.cancel_deadline,
            "holds": [], "created_at": now, "updated_at": now, "outbox": [],
            "outbox_pending": False,
        }

    async def _complete_booking(
        self,
        doc: Document,
        rules: BookingRules,
        take_unit: Callable[[], Awaitable[bool]] | None = None,
        extra_events: Callable[[Document], list[EventEnvelope]] | None = None,
    ) -> Appointment:
        """Steps 2–5 of a booking. `take_unit` defaults to reserving free capacity; the
        waitlist passes a hand-over of a unit being freed instead."""
        aid = doc["_id"]
        person = f"{doc['id_hash']}:{doc['hospital_id']}"
        day_key = await self._claim(f"dept:{person}:{doc['department_id']}:{doc['date']}",
                                    rules.per_department_per_day, aid,
                                    AlreadyBooked(limit=rules.per_department_per_day))
        active_key = await self._claim(f"active:{person}", rules.max_active, aid,
                                       LimitReached(limit=rules.max_active))
        doc["holds"] = [day_key, active_key]
        await self.appointments.set_fields(aid, {"holds": doc["holds"]})
        took = await (take_unit() if take_unit else self.inventory.reserve(doc["slot_id"], aid))
        if not took:
            slot = await self.inventory.slot(doc["slot_id"])
            if slot is not None and slot.get("stopped"):
                raise ScheduleStopped()
            raise SlotFull()
        seq_no = await self.inventory.next_seq(doc["schedule_id"])
        now = self.clock()
        booked = {**doc, "status": "booked", "seq_no": seq_no}
        final = await self.appointments.transition(aid, "pending", with_outbox(
            {"$set": {"status": "booked", "seq_no": seq_no, "booked_at": now,
                      "updated_at": now}},
            self._event("appointment.booked", booked),
            *(extra_events(booked) if extra_events else []),
        ))
        if final is None:
            final = await self.appointments.get(aid)
            if final is None or final["status"] == "pending":
                raise ServiceUnavailable("预约超时，请重试 / booking timed out, retry")
            if final["status"] != "booked":
                raise InvalidState(status=final["status"])
        log.info("appointment booked", extra={"appointment_id": aid, "slot_id": doc["slot_id"]})
        await self.outbox.flush_quietly(self.appointments.collection, aid)
        slot = await self.inventory.slot(doc["slot_id"])
        if slot is not None and slot.get("stopped"):
            # 停诊 landed between our reservation and finalize: it wins.
            schedule = await self.inventory.schedule(doc["schedule_id"])
            await self._cancel(final, "hospital", (schedule or {}).get("stop_reason", "停诊"))
            raise ScheduleStopped()
        return self._view(final)

    async def _claim(self, prefix: str, limit: int, aid: str, refusal: DomainError,
                     alive: Callable[[str], Awaitable[bool]] | None = None) -> str:
        """Take one of `limit` numbered holds; a hold whose owner is dead is reclaimed."""
        alive = alive or self._holds_legitimately
        for k in range(limit):
            key = f"{prefix}:{k}"
            for _ in range(3):
                if await self.holds.claim(key, aid):
                    return key
                holder = await self.holds.holder(key)
                if holder is None:
                    continue
                if holder == aid:
                    return key
                if await alive(holder):
                    break
                await self.holds.drop(key, holder)
        raise refusal

    async def _holds_legitimately(self, appointment_id: str) -> bool:
        doc = await self.appointments.get(appointment_id)
        if doc is None:
            return False
        if doc["status"] == "booked":
            return True
        if doc["status"] == "pending":
            return bool(self.clock() - doc["created_at"] < PENDING_STALE_AFTER)
        return False

    async def _roll_back(self, doc: Document) -> None:
        """Undo a booking that did not complete (all steps are idempotent)."""
        aid = doc["_id"]
        try:
            current = await self.appointments.get(aid)
            if current is not None and current["status"] != "pending":
                return
            await self.inventory.release(doc["slot_id"], aid)
            await self.holds.drop_all(aid)
            await self.appointments.delete_pending(aid)
        except Exception:
            log.exception("roll back failed; the reconciler will finish it",
                          extra={"appointment_id": aid})

    async def _replay(self, existing: Document, user_id: str, request_hash: str
                      ) -> Appointment | None:
        """A retried Idempotency-Key: the first result, or None when it vanished (retry).

        A booking still pending after a short wait is resumed rather than waited for: its
        first runner may have died (the RPC was redelivered), and every step is idempotent,
        so two runners of one appointment converge on one result."""
        if existing["user_id"] != user_id or existing.get("request_hash") != request_hash:
            raise IdempotencyKeyReused()
        if existing.get("lottery") and existing["status"] == "pending":
            return self._view(existing)  # waiting for the release draw
        deadline = self.clock() + dt.timedelta(seconds=1.5)
        while existing["status"] == "pending" and self.clock() < deadline:
            await asyncio.sleep(0.05)
            again = await self.appointments.get(existing["_id"])
            if again is None:
                return None
            existing = again
        if existing["status"] != "pending":
            return self._view(existing)
        rules = await self.catalog.rules(existing["hospital_id"])
        try:
            return await self._complete_booking(existing, rules)
        except DomainError:
            await self._roll_back(existing)
            raise

    # ---- life cycle --------------------------------------------------------------------

    async def _cancel(self, appointment: Document, by: str, reason: str | None) -> Document:
        """booked → cancelled with its event, then return the capacity (exactly once)."""
        now = self.clock()
        fields: Document = {"status": "cancelled", "cancelled_by": by, "cancelled_at": now,
                            "updated_at": now, "released": False}
        if reason:
            fields["reason"] = reason
        after = {**appointment, **fields}
        updated = await self.appointments.transition(
            appointment["_id"], "booked",
            with_outbox({"$set": fields}, self._event("appointment.cancelled", after)))
        if updated is None:
            raise InvalidState(status=appointment["status"])
        log.info("appointment cancelled", extra={"appointment_id": appointment["_id"], "by": by})
        await self.release_capacity(updated)
        await self.outbox.flush_quietly(self.appointments.collection, updated["_id"])
        return updated

    async def release_capacity(self, appointment: Document) -> None:
        """Return a cancelled appointment's unit — to the first waiting patient if there is
        one, else to the pool — and its holds; safe to repeat."""
        if self.waitlist is not None and await self.waitlist.hand_over(
                appointment["slot_id"], appointment["_id"]):
            log.info("slot handed to the waitlist", extra={"slot_id": appointment["slot_id"]})
        elif await self.inventory.release(appointment["slot_id"], appointment["_id"]):
            log.info("slot released", extra={"slot_id": appointment["slot_id"],
                                             "appointment_id": appointment["_id"]})
        await self.holds.drop_all(appointment["_id"])
        await self.appointments.set_fields(appointment["_id"], {"released": True})

    async def cancel_by_patient(self, user_id: str, appointment_id: str) -> Appointment:
        appointment = await self._own(user_id, appointment_id)
        if appointment["status"] != "booked":
            raise InvalidState(status=appointment["status"])
        if self.clock() > appointment["cancel_deadline"]:
            raise CancelDeadlinePassed(deadline=_iso(appointment["cancel_deadline"]))
        return self._view(await self._cancel(appointment, "patient", "患者取消"))

    async def cancel_by_hospital(self, hospital_id: str, appointment_id: str,
                                 reason: str | None) -> Appointment:
        appointment = await self._of_hospital(hospital_id, appointment_id)
        if appointment["status"] != "booked":
            raise InvalidState(status=appointment["status"])
        return self._view(await self._cancel(appointment, "hospital", reason or "医院取消"))

    async def check_in(self, hospital_id: str, appointment_id: str) -> Appointment:
        appointment = await self._of_hospital(hospital_id, appointment_id)
        self._require_visit_day(appointment)
        return self._view(await self._finish(appointment, "checked_in",
                                             "appointment.checked_in"))

    def _require_visit_day(self, appointment: Document) -> None:
        """签到 only on the visit day (hospital-local)."""
        today = local_now(self.clock()).date().isoformat()
        if appointment["status"] == "booked" and str(appointment["date"]) != today:
            raise InvalidState("只能在就诊当天签到 / check-in only on the visit day",
                               date=str(appointment["date"]))

    def _require_session_ended(self, appointment: Document) -> None:
        """爽约 only once the booked slice has ended (it counts towards a ban)."""
        ends = at_local(dt.date.fromisoformat(str(appointment["date"])), appointment["end"])
        if appointment["status"] == "booked" and self.clock() < ends:
            raise InvalidState("就诊时段结束后才能登记爽约 / no-show only after the slot ended",
                               ends_at=_iso(ends))

    async def mark_no_show(self, hospital_id: str | None, appointment_id: str) -> Appointment:
        appointment = (await self._of_hospital(hospital_id, appointment_id) if hospital_id
                       else await self.appointments.get(appointment_id))
        if appointment is None:
            raise NotFound()
        self._require_session_ended(appointment)
        updated = await self._finish(appointment, "no_show", "appointment.no_show")
        await self.no_shows.record(updated)
        return self._view(updated)

    async def _finish(self, appointment: Document, status: str, event_type: str) -> Document:
        if appointment["status"] != "booked":
            raise InvalidState(status=appointment["status"])
        now = self.clock()
        fields = {"status": status, "updated_at": now, f"{status}_at": now}
        updated = await self.appointments.transition(
            appointment["_id"], "booked",
            with_outbox({"$set": fields}, self._event(event_type, {**appointment, **fields})))
        if updated is None:
            raise InvalidState(status="changed")
        await self.holds.drop_all(appointment["_id"])
        await self.outbox.flush_quietly(self.appointments.collection, updated["_id"])
        return updated

    async def stop_schedule(self, hospital_id: str, schedule_id: str, reason: str
                            ) -> StopResult:
        """停诊: refuse new bookings, then cancel every active appointment of the schedule."""
        schedule = await self.schedule(schedule_id, hospital_id)
        event = new_event("schedule.stopped", hospital_id, {"schedule": {
            "id": schedule_id, "doctor_id": schedule["doctor"]["id"], "date": schedule["date"],
            "session": schedule["session"], "reason": reason}})
        if await self.inventory.mark_stopped(schedule_id, with_outbox(
                {"$set": {"stopped": True, "stop_reason": reason, "stopped_at": self.clock()}},
                event)):
            await self.outbox.flush_quietly(self.inventory.schedules, schedule_id)
        cancelled = 0
        for appointment in await self.appointments.find(
                {"schedule_id": schedule_id, "status": "booked"}, [("_id", 1)], limit=100_000):
            try:
                await self._cancel(appointment, "hospital", f"停诊：{reason}")
                cancelled += 1
            except InvalidState:
                pass
        log.info("schedule stopped", extra={"schedule_id": schedule_id, "cancelled": cancelled})
        return StopResult(schedule_id=schedule_id, status="stopped", cancelled=cancelled)

    async def change_capacity(self, hospital_id: str, slot_id: str, delta: int) -> SlotState:
        """加号 (delta > 0) or reduce capacity, never below what is booked."""
        slot = await self.slot(slot_id)
        if slot["hospital_id"] != hospital_id:
            raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
        if delta == 0:
            raise ValidationFailed.field("delta", "不能为0 / must not be 0")
        handed = 0
        while self.waitlist is not None and handed < delta and not slot.get("stopped"):
            if not await self.waitlist.hand_over(slot_id, None):
                break  # 加号 straight to the waiting patients first, in order
            handed += 1
        event = new_event("schedule.capacity_changed", hospital_id, {"slot": {
            "id": slot_id, "schedule_id": slot["schedule_id"], "doctor_id": slot["doctor_id"],
            "date": slot["date"], "start": slot["start"], "end": slot["end"],
            "capacity": slot["capacity"] + delta, "delta": delta}})
        try:
            updated = await self.inventory.change_capacity(
                slot_id, delta - handed,
                with_outbox({"$set": {"updated_at": self.clock()}}, event))
        except ValueError:
            raise InvalidState("不能少于已预约数 / below what is booked",
                               booked=slot["booked"]) from None
        if updated is None:
            raise NotFound()
        await self.outbox.flush_quietly(self.inventory.slots, slot_id)
        return SlotState(id=slot_id, schedule_id=updated["schedule_id"], start=updated["start"],
                         end=updated["end"], capacity=updated["capacity"],
                         remaining=max(0, updated["capacity"] - updated["booked"]))

    async def move(self, hospital_id: str, appointment_id: str, slot_id: str) -> Appointment:
        """改约: take the new slot first; release the old one only once the move is recorded."""
        appointment = await self._of_hospital(hospital_id, appointment_id)
        if appointment["status"] != "booked":
            raise InvalidState(status=appointment["status"])
        if appointment["slot_id"] == slot_id:
            raise ValidationFailed.field("slot_id", "与原号源相同 / same slot")
        target = await self.slot(slot_id)
        if target["hospital_id"] != hospital_id:
            raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
        if target["department_id"] != appointment["department_id"]:
            raise ValidationFailed.field("slot_id", "只能改约到同一科室 / same department only")
        aid = appointment["_id"]
        marked = await self.appointments.transition(aid, "booked", {"$set": {
            "move": {"to": slot_id, "from": appointment["slot_id"], "at": self.clock()}}},
            extra_filter={"slot_id": appointment["slot_id"]})
        if marked is None:
            raise InvalidState(status="changed")
        try:
            if not await self.inventory.reserve(slot_id, aid):
                raise ScheduleStopped() if target.get("stopped") else SlotFull()
            seq_no = await self.inventory.next_seq(target["schedule_id"])
        except BaseException:
            await self.inventory.release(slot_id, aid)
            await self.appointments.collection.update_one({"_id": aid}, {"$unset": {"move": ""}})
            raise
        rules = await self.catalog.rules(hospital_id)
        window = BookingWindow(rules, dt.date.fromisoformat(target["date"]), target["session"],
                               target["start"])
        new_fields = {
            "slot_id": slot_id, "schedule_id": target["schedule_id"], "doctor": target["doctor"],
            "doctor_id": target["doctor_id"], "date": target["date"],
            "session": target["session"], "start": target["start"], "end": target["end"],
            "fee_cents": target["fee_cents"], "seq_no": seq_no,
            "cancel_deadline": window.cancel_deadline, "updated_at": self.clock(),
        }
        previous = {k: appointment[k] for k in ("slot_id", "date", "start", "end", "seq_no")}
        event = self._event("appointment.rescheduled", {**appointment, **new_fields},
                            previous=previous)
        update = with_outbox({"$set": new_fields}, event)
        update["$unset"] = {"move": ""}
        moved = await self.appointments.transition(aid, "booked", update,
                                                   extra_filter={"slot_id": appointment["slot_id"]})
        if moved is None:
            await self.inventory.release(slot_id, aid)
            raise InvalidState(status="changed")
        if self.waitlist is None or not await self.waitlist.hand_over(
                appointment["slot_id"], aid):
            await self.inventory.release(appointment["slot_id"], aid)
        log.info("appointment moved", extra={"appointment_id": aid, "slot_id": slot_id})
        await self.outbox.flush_quietly(self.appointments.collection, aid)
        return self._view(moved)

    async def move_by_patient(self, user_id: str, appointment_id: str, slot_id: str
                              ) -> Appointment:
        """Patient 改约: one's own booked appointment, before its cancel deadline, to a slot of
        the same doctor or department that passes the rules of a new booking (released, not
        closed, not stopped, not full, person not banned; on another day the per-department
        daily limit there). The move itself is the hospital one: the new slot is taken
        before the old is freed."""
        appointment = await self._own(user_id, appointment_id)
        if appointment["status"] != "booked":
            raise InvalidState(status=appointment["status"])
        if self.clock() > appointment["cancel_deadline"]:
            raise CancelDeadlinePassed(deadline=_iso(appointment["cancel_deadline"]))
        target = await self.slot(slot_id)
        if target["hospital_id"] != appointment["hospital_id"]:
            raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
        if (target["doctor_id"] != appointment["doctor_id"]
                and target["department_id"] != appointment["department_id"]):
            raise ValidationFailed.field(
                "slot_id", "只能改约到同一医生或科室 / same doctor or department only")
        rules = await self.catalog.rules(target["hospital_id"])
        patient = await self.patients.resolve(user_id, appointment["patient"]["id"])
        if reasons := await self._reasons(rules, target, patient, with_counts=False):
            raise reasons[0]
        aid, holds = appointment["_id"], list(appointment.get("holds") or [])
        person = f"{appointment['id_hash']}:{appointment['hospital_id']}"
        day_key = await self._claim(f"dept:{person}:{target['department_id']}:{target['date']}",
                                    rules.per_department_per_day, aid,
                                    AlreadyBooked(limit=rules.per_department_per_day))
        try:
            moved = await self.move(appointment["hospital_id"], aid, slot_id)
        except BaseException:
            if day_key not in holds:
                await self.holds.drop(day_key, aid)
            raise
        if holds and holds[0] != day_key:
            await self.holds.drop(holds[0], aid)
            await self.appointments.set_fields(aid, {"holds": [day_key, *holds[1:]]})
        return moved

    # ---- reads -------------------------------------------------------------------------

    async def active_count_for_user(self, user_id: str) -> int:
        """Active (pending or booked) appointments of a user for today or later."""
        today = local_now(self.clock()).date().isoformat()
        return await self.appointments.count_active({"user_id": user_id,
                                                     "date": {"$gte": today}})

    async def get_for_user(self, user_id: str, appointment_id: str) -> Appointment:
        return self._view(await self._own(user_id, appointment_id))

    async def get_for_hospital(self, hospital_id: str, appointment_id: str) -> Appointment:
        return self._view(await self._of_hospital(hospital_id, appointment_id))

    async def list_for_user(self, user_id: str, status: str | None, cursor: str | None,
                            limit: int) -> AppointmentList:
        query: Document = {"user_id": user_id}
        visible = ["booked", "checked_in", "completed", "cancelled", "no_show"]
        if status == "pending":
            query.update(status="pending", lottery=True)
        elif status:
            query["status"] = status
        else:
            query["$or"] = [{"status": {"$in": visible}}, {"status": "pending", "lottery": True}]
        skip = _offset(cursor)
        docs = await self.appointments.find(query, [("created_at", -1), ("_id", -1)],
                                            limit + 1, skip)
        return AppointmentList(items=[self._view(d) for d in docs[:limit]],
                               next=str(skip + limit) if len(docs) > limit else None)

    async def list_for_hospital(self, hospital_id: str, filters: Document, cursor: str | None,
                                limit: int) -> AppointmentList:
        query: Document = {"hospital_id": hospital_id, **filters}
        if "status" not in query:
            query["status"] = {"$ne": "pending"}
        skip = _offset(cursor)
        docs = await self.appointments.find(
            query, [("date", 1), ("start", 1), ("seq_no", 1), ("_id", 1)], limit + 1, skip)
        return AppointmentList(items=[self._view(d) for d in docs[:limit]],
                               next=str(skip + limit) if len(docs) > limit else None)

    async def _own(self, user_id: str, appointment_id: str) -> Document:
        doc = await self.appointments.get(appointment_id)
        hidden = doc is not None and doc["status"] == "pending" and not doc.get("lottery")
        if doc is None or doc["user_id"] != user_id or hidden:
            raise NotFound("预约不存在 / appointment not found")
        return doc

    async def _of_hospital(self, hospital_id: str, appointment_id: str) -> Document:
        doc = await self.appointments.get(appointment_id)
        if doc is None or doc["hospital_id"] != hospital_id or doc["status"] == "pending":
            raise NotFound("预约不存在 / appointment not found")
        return doc

    # ---- shapes ------------------------------------------------------------------------

    def _event(self, event_type: str, doc: Document, **extra: Any) -> EventEnvelope:
        appointment: Document = {
            "id": doc["_id"], "status": doc["status"], "slot_id": doc["slot_id"],
            "schedule_id": doc["schedule_id"], "doctor_id": doc["doctor_id"],
            "department_id": doc["department_id"], "date": doc["date"],
            "session": doc["session"], "start": doc["start"], "end": doc["end"],
            "seq_no": doc.get("seq_no"), "patient": doc["patient"], "user_id": doc["user_id"],
            "doctor": doc["doctor"], "department": doc["department"],
            "fee_cents": doc["fee_cents"],
        }
        for key in ("cancelled_by", "reason", "waitlist_entry_id"):
            if doc.get(key):
                appointment[key] = doc[key]
        return new_event(event_type, doc["hospital_id"], {"appointment": appointment, **extra},
                         at=self.clock())

    def _view(self, doc: Document) -> Appointment:
        return Appointment.model_validate({
            **{k: v for k, v in doc.items() if k not in ("_id", "cancel_deadline", "created_at")},
            "id": doc["_id"], "seq_no": doc.get("seq_no", 0),
            "cancel_deadline": _iso(doc["cancel_deadline"]), "created_at": _iso(doc["created_at"]),
            "lottery_draw_at": _iso(doc["draw_at"]) if doc.get("lottery")
            and doc["status"] == "pending" else None,
        })


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or int(cursor) > 1_000_000:
        raise ValidationFailed.field("cursor", "无效的分页游标 / invalid cursor")
    return int(cursor)
