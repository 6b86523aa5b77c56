"""候补 (waitlist): patients wait for a doctor or a department over a range of dates; a unit
that frees up (a cancellation, a move, 加号) goes to the first eligible waiting entry in the
order they joined, in the same single write that frees it — no window in which another
patient could take it.

A promotion is an ordinary booking (pending appointment → holds → unit → seq → booked)
whose "take a unit" step is the hand-over. An entry that cannot be served right now (banned,
already booked that day, at its limit) is skipped and keeps waiting. A crash after the
hand-over leaves a stale pending appointment holding the unit; the reconciler rolls it back,
so the slot ends up free and the entry still waiting.
"""

from __future__ import annotations

import datetime as dt
import logging

from services.booking.repository import Waitlist
from services.booking.service import BookingService, appointment_id_for
from shared.contracts.booking import WaitlistEntry, WaitlistJoin, WaitlistList
from shared.contracts.patients import ResolvedPatient
from shared.errors import DomainError, LimitReached, NotFound, PatientBanned, ValidationFailed
from shared.ids import new_id
from shared.messaging.events import EventEnvelope, new_event
from shared.messaging.outbox import outbox_fields
from shared.rules import BookingWindow, local_now
from shared.storage.mongo import Document

log = logging.getLogger("guahao.booking.waitlist")

MAX_WAITING_PER_PERSON = 3


class WaitlistService:
    def __init__(self, booking: BookingService, entries: Waitlist) -> None:
        self.booking = booking
        self.entries = entries

    async def join(self, user_id: str, params: WaitlistJoin) -> WaitlistEntry:
        b = self.booking
        patient = await b.patients.resolve(user_id, params.patient_id)
        if params.hospital_id is None:  # api.md: derived from the doctor or department
            params = params.model_copy(update={"hospital_id": await b.catalog.hospital_of(
                params.doctor_id, params.department_id)})
        assert params.hospital_id is not None
        rules = await b.catalog.rules(params.hospital_id)
        today = local_now(b.clock()).date()
        if params.date_from < today:
            raise ValidationFailed.field("date_from", "不能早于今天 / must not be in the past")
        if params.date_to > today + dt.timedelta(days=rules.window_days + 31):
            raise ValidationFailed.field("date_to", "超出可候补范围 / too far ahead")
        ban_until = await b._ban_until(rules, patient.id_hash, params.hospital_id)
        if ban_until is not None:
            raise PatientBanned(until=ban_until.isoformat())
        entry_id = new_id("wl")
        await b._claim(f"wait:{patient.id_hash}:{params.hospital_id}", MAX_WAITING_PER_PERSON,
                       entry_id, LimitReached(limit=MAX_WAITING_PER_PERSON),
                       alive=self._still_waiting)
        now = b.clock()
        doc: Document = {
            "_id": entry_id, "status": "waiting", "user_id": user_id,
            "hospital_id": params.hospital_id, "date_from": params.date_from.isoformat(),
            "date_to": params.date_to.isoformat(), "patient": patient.model_dump(mode="json"),
            "created_at": now,
        }
        for key in ("doctor_id", "department_id", "sessions"):
            if getattr(params, key) is not None:
                doc[key] = getattr(params, key)
        doc.update(outbox_fields(new_event("waitlist.joined", params.hospital_id,
                                           {"entry": _event_view(doc)}, at=now)))
        await self.entries.insert(doc)
        await b.outbox.flush_quietly(self.entries.collection, entry_id)
        return _view(doc)

    async def list_for_user(self, user_id: str) -> WaitlistList:
        return WaitlistList(items=[_view(d) for d in await self.entries.of_user(user_id)])

    async def waiting_count(self, user_id: str) -> int:
        return sum(1 for d in await self.entries.of_user(user_id) if d["status"] == "waiting")

    async def cancel(self, user_id: str, entry_id: str) -> WaitlistEntry:
        entry = await self.entries.get(entry_id)
        if entry is None or entry["user_id"] != user_id:
            raise NotFound("候补不存在 / waitlist entry not found")
        if entry["status"] != "waiting":
            return _view(entry)
        done = await self.entries.finish(entry_id, "cancelled",
                                         {"cancelled_at": self.booking.clock()})
        await self.booking.holds.drop_all(entry_id)
        return _view(done or await self.entries.get(entry_id) or entry)

    async def hand_over(self, slot_id: str, from_appointment_id: str | None) -> bool:
        """Give the unit `from_appointment_id` releases (or, with None, one more unit of
        capacity) to the first eligible waiting entry; False when nobody takes it."""
        b = self.booking
        slot = await b.inventory.slot(slot_id)
        if slot is None or slot.get("stopped"):
            return False
        rules = await b.catalog.rules(slot["hospital_id"])
        window = BookingWindow(rules, dt.date.fromisoformat(slot["date"]), slot["session"],
                               slot["start"])
        now = b.clock()
        if window.is_closed(now) or not window.is_released(now):
            return False
        for entry in await self.entries.waiting_for(slot):
            patient = ResolvedPatient.model_validate(entry["patient"])
            if await b._ban_until(rules, patient.id_hash, slot["hospital_id"]) is not None:
                continue
            aid = appointment_id_for(entry["user_id"], f"waitlist:{entry['_id']}")
            existing = await b.appointments.get(aid)
            if existing is not None:
                if existing["status"] != "pending":
                    await self._promoted(entry, aid)
                # pending: another hand-over is promoting this entry right now (or died
                # doing it, and the reconciler will undo it): serve the next one
                continue
            doc = b._pending_document(
                aid, entry["user_id"], f"waitlist:{entry['_id']}", slot, patient, rules)
            doc["waitlist_entry_id"] = entry["_id"]
            if not await b.appointments.insert_pending(doc):
                continue

            async def take_unit(aid: str = aid) -> bool:
                if from_appointment_id is None:
                    return await b.inventory.add_unit_for(slot_id, aid)
                return await b.inventory.transfer(slot_id, from_appointment_id, aid)

            def promoted(booked: Document, entry: Document = entry) -> list[EventEnvelope]:
                announced = b._event("appointment.booked", booked).data["appointment"]
                return [new_event("waitlist.promoted", slot["hospital_id"], {
                    "entry": _event_view(entry), "appointment": announced}, at=now)]

            try:
                await b._complete_booking(doc, rules, take_unit, promoted)
            except DomainError as exc:
                await b._roll_back(doc)
                if exc.code in ("ALREADY_BOOKED", "LIMIT_REACHED"):
                    continue  # this patient cannot take it now: the next one may
                return False  # the unit is gone (already handed over, or the slot stopped)
            await self._promoted(entry, aid)
            log.info("waitlist promoted", extra={"entry_id": entry["_id"], "appointment_id": aid})
            return True
        return False

    async def _still_waiting(self, entry_id: str) -> bool:
        entry = await self.entries.get(entry_id)
        if entry is None:  # claimed a moment ago, its insert not yet visible
            return True
        return bool(entry["status"] == "waiting")

    async def _promoted(self, entry: Document, appointment_id: str) -> None:
        await self.entries.finish(entry["_id"], "promoted", {
            "appointment_id": appointment_id, "promoted_at": self.booking.clock()})
        await self.booking.holds.drop_all(entry["_id"])


def _event_view(doc: Document) -> Document:
    view = {k: doc[k] for k in ("_id", "hospital_id", "date_from", "date_to", "user_id")
            if k in doc}
    view["id"] = view.pop("_id")
    view["patient"] = {k: doc["patient"][k] for k in ("id", "name", "id_number_masked")}
    for key in ("doctor_id", "department_id", "sessions"):
        if key in doc:
            view[key] = doc[key]
    return view


def _view(doc: Document) -> WaitlistEntry:
    created = doc["created_at"]
    return WaitlistEntry.model_validate({
        **{k: v for k, v in doc.items() if k not in ("_id", "patient", "created_at")},
        "id": doc["_id"], "patient": {k: doc["patient"][k]
                                      for k in ("id", "name", "id_number_masked")},
        "created_at": created.astimezone(dt.UTC).isoformat(timespec="seconds")
        if isinstance(created, dt.datetime) else str(created),
    })
