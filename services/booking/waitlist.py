"""候补 (waitlist): patients wait for a doctor or a department over a range of dates; a unit
that frees up (a cancellation, a move, 加号) goes to the first eligible waiting entry in the
order they joined, in the same single write that frees it — no window in which another
patient could take it.

A promotion is an ordinary booking whose "take a unit" step is the hand-over, with the
person counted first: an entry the rules refuse right now (banned, already booked that day,
at its limit) is skipped and keeps waiting, and the unit stays for the next one. A crash
after the hand-over leaves the unit held by an appointment that never came; the reconciler
returns it to the pool and the entry is still waiting.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable

from services.booking.booker import Booker
from services.booking.domain import PatientRef, SlotInfo, appointment_id_for, ban_until
from services.booking.projections import CatalogPort, PatientDirectory, RulesBook, SessionBook
from services.booking.repository import (
    Appointments,
    Holds,
    Persons,
    Sessions,
    Waitlist,
    no_show_dates,
)
from services.booking.views import appointment_event
from shared.contracts.booking import WaitlistEntry, WaitlistJoin, WaitlistList
from shared.contracts.events import (
    AppointmentData,
    EventPatient,
    WaitlistEntryData,
    WaitlistJoined,
    WaitlistPromoted,
    typed_event,
)
from shared.errors import (
    AlreadyBooked,
    DomainError,
    LimitReached,
    NotFound,
    PatientBanned,
    ValidationFailed,
)
from shared.ids import new_id
from shared.messaging.events import EventEnvelope
from shared.messaging.outbox import OutboxRelay, outbox_fields
from shared.rules import local_now
from shared.storage.mongo import Document

log = logging.getLogger("guahao.booking.waitlist")

MAX_WAITING_PER_PERSON = 3
# a patient the rules refuse right now keeps waiting; anything else ends the hand-over
SKIP_ENTRY = {"ALREADY_BOOKED", "LIMIT_REACHED", "PATIENT_BANNED", "NOT_FOUND"}


class WaitlistService:
    def __init__(
        self,
        *,
        entries: Waitlist,
        holds: Holds,
        appointments: Appointments,
        sessions: Sessions,
        persons: Persons,
        session_book: SessionBook,
        rules: RulesBook,
        patients: PatientDirectory,
        booker: Booker,
        catalog: CatalogPort,
        outbox: OutboxRelay,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.catalog = catalog
        self.entries = entries
        self.holds = holds
        self.appointments = appointments
        self.sessions = sessions
        self.persons = persons
        self.session_book = session_book
        self.rules = rules
        self.patients = patients
        self.booker = booker
        self.outbox = outbox
        self.clock = clock

    async def join(self, user_id: str, params: WaitlistJoin) -> WaitlistEntry:
        patient = await self.patients.patient(user_id, params.patient_id)
        hospital_id = params.hospital_id or await self.catalog.hospital_of(
            params.doctor_id, params.department_id
        )  # api.md: derived, accepted if given
        params = params.model_copy(update={"hospital_id": hospital_id})
        rules = await self.rules.rules(hospital_id)
        today = local_now(self.clock()).date()
        if params.date_from < today:
            raise ValidationFailed.field("date_from", "不能早于今天 / must not be in the past")
        if params.date_to > today + dt.timedelta(days=rules.window_days + 31):
            raise ValidationFailed.field("date_to", "超出可候补范围 / too far ahead")
        until = await self._ban_until(patient, hospital_id)
        if until is not None:
            raise PatientBanned(until=until.isoformat())
        entry_id = new_id("wl")
        await self._claim_place(f"wait:{patient.id_hash}:{hospital_id}", entry_id)
        now = self.clock()
        doc: Document = {
            "_id": entry_id,
            "status": "waiting",
            "user_id": user_id,
            "hospital_id": hospital_id,
            "date_from": params.date_from.isoformat(),
            "date_to": params.date_to.isoformat(),
            "patient": {**patient.snapshot(), "id_hash": patient.id_hash},
            "created_at": now,
        }
        for key in ("doctor_id", "department_id", "sessions"):
            if getattr(params, key) is not None:
                doc[key] = getattr(params, key)
        event = typed_event(
            "waitlist.joined", hospital_id, WaitlistJoined(entry=_event_view(doc)), at=now
        )
        await self.entries.insert({**doc, **outbox_fields(event)})
        await self.outbox.publish_committed(self.entries.collection, entry_id, [event])
        return _view(doc)

    async def _claim_place(self, prefix: str, entry_id: str) -> None:
        """One of the person's `MAX_WAITING_PER_PERSON` places; a place whose entry is no
        longer waiting is taken back."""
        now = self.clock()
        for k in range(MAX_WAITING_PER_PERSON):
            key = f"{prefix}:{k}"
            for _ in range(3):
                if await self.holds.claim(key, entry_id, now):
                    return
                holder = await self.holds.holder(key)
                if holder is None:
                    continue
                entry = await self.entries.get(holder)
                if entry is None or entry["status"] == "waiting":
                    break  # taken (an entry being inserted right now counts as waiting)
                await self.holds.drop(key, holder)
        raise LimitReached(limit=MAX_WAITING_PER_PERSON)

    async def _ban_until(self, patient: PatientRef, hospital_id: str) -> dt.datetime | None:
        rules = await self.rules.rules(hospital_id)
        person = await self.persons.get(patient.id_hash)
        return ban_until(no_show_dates(person, hospital_id), rules, self.clock())

    async def list_for_user(self, user_id: str) -> WaitlistList:
        return WaitlistList(items=[_view(d) for d in await self.entries.of_user(user_id)])

    async def waiting_count(self, user_id: str) -> int:
        """The user's entries still waiting (an account with any is not deleted)."""
        return sum(1 for d in await self.entries.of_user(user_id) if d["status"] == "waiting")

    async def cancel(self, user_id: str, entry_id: str) -> WaitlistEntry:
        entry = await self.entries.get(entry_id)
        if entry is None or entry["user_id"] != user_id:
            raise NotFound("候补不存在 / waitlist entry not found")
        if entry["status"] != "waiting":
            return _view(entry)
        done = await self.entries.finish(entry_id, "cancelled", {"cancelled_at": self.clock()})
        await self.holds.drop_all(entry_id)
        return _view(done or await self.entries.get(entry_id) or entry)

    async def hand_over(self, slot_id: str, from_appointment_id: str | None) -> bool:
        """Give the unit `from_appointment_id` releases (or, with None, one more unit of
        capacity) to the first eligible waiting entry; False when nobody takes it."""
        slot = await self.session_book.slot(slot_id)
        rules = await self.rules.rules(slot.hospital_id)
        window = slot.window(rules)
        now = self.clock()
        if window.is_closed(now) or not window.is_released(now):
            return False
        for entry in await self.entries.waiting_for(
            slot.hospital_id, slot.doctor_id, slot.department_id, slot.date, slot.session
        ):
            patient = PatientRef(
                id=entry["patient"]["id"],
                user_id=entry["user_id"],
                id_hash=entry["patient"]["id_hash"],
                name=entry["patient"]["name"],
                id_number_masked=entry["patient"]["id_number_masked"],
            )
            aid = appointment_id_for(entry["user_id"], f"waitlist:{entry['_id']}")
            if not await self.entries.claim(entry["_id"], now):
                continue  # another hand-over is serving this entry right now
            if await self.appointments.get(aid) is not None:
                await self._promoted(entry, aid)  # promoted before; its entry not yet closed
                continue
            doc = self.booker.new_appointment(
                aid, entry["user_id"], f"waitlist:{entry['_id']}", slot, patient, rules
            )
            doc["waitlist_entry_id"] = entry["_id"]
            try:
                seq_no = await self.booker.take(
                    doc,
                    slot,
                    patient,
                    rules,
                    functools.partial(self._take_unit, slot, from_appointment_id, aid),
                )
            except DomainError as exc:
                await self.entries.unclaim(entry["_id"])
                if exc.code in SKIP_ENTRY:
                    continue  # this patient cannot take it now: the next one may
                return False  # the unit is gone (already handed over, or the slot stopped)

            def promoted(booked: Document, entry: Document = entry) -> list[EventEnvelope]:
                announced = appointment_event("appointment.booked", booked, now)
                return [
                    typed_event(
                        "waitlist.promoted",
                        slot.hospital_id,
                        WaitlistPromoted(
                            entry=_event_view(entry),
                            appointment=AppointmentData.model_validate(
                                announced.data["appointment"]
                            ),
                        ),
                        at=now,
                    )
                ]

            # at a hospital that collects the fee the promoted patient pays like any other
            await self.booker.insert_booked(doc, seq_no, promoted, rules=rules)
            await self._promoted(entry, aid)
            log.info("waitlist promoted", extra={"entry_id": entry["_id"], "appointment_id": aid})
            return True
        return False

    async def _take_unit(self, slot: SlotInfo, from_id: str | None, to_id: str) -> int | None:
        """The hand-over itself: one write that moves the unit from the appointment freeing
        it (or from new capacity) to the promoted one, and numbers the visit."""
        for _ in range(20):
            session = await self.sessions.get(slot.schedule_id)
            if session is None or session.stopped:
                return None
            holders = session.stock[slot.id].holders
            if to_id in holders:
                # a hand-over that died after giving this entry a unit: that unit is
                # returned by the reconciler; this one goes to the next entry
                raise AlreadyBooked()
            if from_id is not None and from_id not in holders:
                return None
            new = [h for h in holders if h != from_id] + [to_id]
            seq_no = await self.sessions.replace_holders(
                session,
                slot.id,
                new,
                self.clock() + self.booker.orphan_check_after,
                capacity_delta=1 if from_id is None else 0,
                take_seq=True,
            )
            if seq_no is not None:
                return seq_no
        raise RuntimeError("slot hand-over kept racing")

    async def release_stale_claims(self, before: dt.datetime) -> int:
        """Entries whose hand-over died: promoted if its appointment exists, else waiting
        again (the unit it may have taken is returned as an orphan)."""
        stale = await self.entries.stale_claims(before)
        for entry in stale:
            aid = appointment_id_for(entry["user_id"], f"waitlist:{entry['_id']}")
            if await self.appointments.get(aid) is not None:
                await self._promoted(entry, aid)
            else:
                await self.entries.unclaim(entry["_id"])
        return len(stale)

    async def _promoted(self, entry: Document, appointment_id: str) -> None:
        await self.entries.finish(
            entry["_id"],
            "promoted",
            {"appointment_id": appointment_id, "promoted_at": self.clock()},
        )
        await self.holds.drop_all(entry["_id"])


def _event_view(doc: Document) -> WaitlistEntryData:
    return WaitlistEntryData(
        id=doc["_id"],
        hospital_id=doc["hospital_id"],
        date_from=doc["date_from"],
        date_to=doc["date_to"],
        user_id=doc["user_id"],
        patient=EventPatient.model_validate(
            {k: doc["patient"][k] for k in ("id", "name", "id_number_masked")}
        ),
        doctor_id=doc.get("doctor_id"),
        department_id=doc.get("department_id"),
        sessions=doc.get("sessions"),
    )


def _view(doc: Document) -> WaitlistEntry:
    created = doc["created_at"]
    return WaitlistEntry.model_validate(
        {
            **{k: v for k, v in doc.items() if k not in ("_id", "patient", "created_at")},
            "id": doc["_id"],
            "patient": {k: doc["patient"][k] for k in ("id", "name", "id_number_masked")},
            "created_at": created.astimezone(dt.UTC).isoformat(timespec="seconds")
            if isinstance(created, dt.datetime)
            else str(created),
        }
    )
