"""MongoDB access for booking, in domain verbs. The only module that writes Mongo operators.

Every invariant holds with single-document atomic updates plus unique keys:
- a session document holds its slots' stock (`slots.<id>.{capacity, booked, holders}`), its
  就诊序号 counter and its stop flag, so reserving a unit and numbering the visit is one
  guarded write, and 停诊 and 加号 are one write each;
- a person document (keyed by the ID-number hash) holds the person's live profiles, holds and
  counters per hospital, department-day and no-show ban, so the per-person limits are one
  guarded write;
- an appointment and the event announcing it are one insert (the outbox rides in it);
- a change that owes later work (returning a unit, a person's hold) records what is owed in
  the same write (`owed`); `settle` pays it, the reconciler pays what a crash left.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.booking.domain import PatientRef, PersonLimits, Session
from shared.contracts.catalog import ScheduleDefinition
from shared.messaging.outbox import merge_updates
from shared.storage.mongo import Document

NO_OUTBOX = {"outbox": 0}


def _stock(slot_id: str) -> str:
    return f"slots.{slot_id}"


class Sessions:
    """Clinic sessions with their slots' stock (one document per session)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.sessions
        self.index = db.slot_index

    async def ensure_indexes(self) -> None:
        # the background jobs find their work by equality on a flag only the documents with
        # work carry (a range query would scan the collection on nx-27017)
        await self.collection.create_index([("hospital_id", ASCENDING), ("date", ASCENDING)])
        await self.collection.create_index("checking")
        await self.collection.create_index("stopping")
        await self.index.create_index("schedule_id")

    async def register(self, definition: ScheduleDefinition) -> None:
        """Hold inventory for a published schedule; idempotent, never resets what was booked."""
        for slot in definition.slots:
            await _insert_if_absent(self.index, {"_id": slot.id, "schedule_id": definition.id})
        await _insert_if_absent(self.collection, Session.new_doc(definition))

    async def schedule_of(self, slot_id: str) -> str | None:
        doc = await self.index.find_one({"_id": slot_id})
        return None if doc is None else str(doc["schedule_id"])

    async def get(self, schedule_id: str) -> Session | None:
        doc = await self.collection.find_one({"_id": schedule_id}, projection=NO_OUTBOX)
        return None if doc is None else Session.from_doc(doc)

    async def many(self, schedule_ids: list[str]) -> list[Session]:
        cursor = self.collection.find({"_id": {"$in": schedule_ids}}, projection=NO_OUTBOX)
        return [Session.from_doc(doc) async for doc in cursor]

    async def stopping(self) -> list[tuple[Session, dt.datetime]]:
        """Stopped sessions whose follow-up is not finished yet, with when they stopped."""
        cursor = self.collection.find({"stopping": True}, projection=NO_OUTBOX)
        return [(Session.from_doc(doc), doc["stopped_at"]) async for doc in cursor.limit(200)]

    async def stop_followed_up(self, schedule_id: str) -> None:
        await self.collection.update_one({"_id": schedule_id}, {"$unset": {"stopping": ""}})

    async def reserve(
        self,
        schedule_id: str,
        slot_id: str,
        appointment_id: str,
        now: dt.datetime,
        check_after: dt.datetime,
    ) -> int | None:
        """Take one unit of the slot for an appointment and number the visit, in one write;
        the 就诊序号, or None when the slot is full, stopped or already held by it."""
        stock = _stock(slot_id)
        doc = await self.collection.find_one_and_update(
            {
                "_id": schedule_id,
                "stopped": False,
                f"{stock}.holders": {"$nin": [appointment_id]},
                "$expr": {"$lt": [f"${stock}.booked", f"${stock}.capacity"]},
            },
            {
                "$push": {f"{stock}.holders": appointment_id},
                "$inc": {f"{stock}.booked": 1, "seq": 1, "v": 1},
                "$set": {"touched_at": now, "checking": True, "check_after": check_after},
            },
            projection={"seq": 1},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else int(doc["seq"])

    async def next_seq(self, schedule_id: str) -> int:
        """A fresh 就诊序号 (a resumed booking whose first number is unknown: gaps are fine,
        reuse is not)."""
        doc = await self.collection.find_one_and_update(
            {"_id": schedule_id},
            {"$inc": {"seq": 1}},
            projection={"seq": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise LookupError(schedule_id)
        return int(doc["seq"])

    async def release(self, schedule_id: str, slot_id: str, appointment_id: str) -> bool:
        """Give an appointment's unit back; True only the one time it was returned."""
        stock = _stock(slot_id)
        result = await self.collection.update_one(
            {"_id": schedule_id, f"{stock}.holders": appointment_id},
            {
                "$pull": {f"{stock}.holders": appointment_id},
                "$inc": {f"{stock}.booked": -1, "v": 1},
            },
        )
        return result.modified_count == 1

    async def replace_holders(
        self,
        session: Session,
        slot_id: str,
        holders: list[str],
        check_after: dt.datetime,
        *,
        capacity_delta: int = 0,
        take_seq: bool = False,
    ) -> int | None:
        """Rewrite one slot's holders (a hand-over from one appointment to another, or 加号
        straight into an appointment), guarded by the session's version; the new 就诊序号
        when asked, else 0; None when the session changed or stopped meanwhile."""
        stock = _stock(slot_id)
        update: Document = {
            "$set": {
                f"{stock}.holders": holders,
                f"{stock}.booked": len(holders),
                "checking": True,
                "check_after": check_after,
            },
            "$inc": {"v": 1},
        }
        if capacity_delta:
            update["$inc"][f"{stock}.capacity"] = capacity_delta
        if take_seq:
            update["$inc"]["seq"] = 1
        doc = await self.collection.find_one_and_update(
            {"_id": session.id, "stopped": False, "v": session.version},
            update,
            projection={"seq": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        return int(doc["seq"]) if take_seq else 0

    async def stop(self, schedule_id: str, reason: str, now: dt.datetime, outbox: Document) -> bool:
        """停诊 in one write: no slot of the session can be reserved afterwards. True the first
        time (the caller's event rides in `outbox`)."""
        result = await self.collection.update_one(
            {"_id": schedule_id, "stopped": False},
            merge_updates(
                {
                    "$set": {
                        "stopped": True,
                        "stop_reason": reason,
                        "stopped_at": now,
                        "stopping": True,
                    },
                    "$inc": {"v": 1},
                },
                outbox,
            ),
        )
        return result.modified_count == 1

    async def change_capacity(
        self, schedule_id: str, slot_id: str, delta: int, outbox: Document
    ) -> Session | None:
        """加号 / reduce in one write, never below what is booked; None if that would be."""
        stock = _stock(slot_id)
        guard: Document = {"_id": schedule_id}
        if delta < 0:
            guard["$expr"] = {"$lte": [f"${stock}.booked", {"$add": [f"${stock}.capacity", delta]}]}
        doc = await self.collection.find_one_and_update(
            guard,
            merge_updates({"$inc": {f"{stock}.capacity": delta, "v": 1}}, outbox),
            projection=NO_OUTBOX,
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else Session.from_doc(doc)

    async def due_for_check(self, now: dt.datetime, limit: int = 500) -> list[Document]:
        """Sessions written a while ago whose holders the reconciler has not checked since."""
        cursor = self.collection.find({"checking": True}, projection={"slots": 1, "check_after": 1})
        return [doc async for doc in cursor.limit(limit) if doc["check_after"] <= now]

    async def mark_checked(self, schedule_id: str, check_after: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": schedule_id, "check_after": check_after},
            {"$unset": {"checking": "", "check_after": ""}},
        )


class Appointments:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.appointments

    async def ensure_indexes(self) -> None:
        c = self.collection
        await c.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
        await c.create_index([("hospital_id", ASCENDING), ("date", ASCENDING)])
        await c.create_index("schedule_id")
        await c.create_index("date")
        await c.create_index("status")  # the jobs look for `pending` only (few)
        await c.create_index("owing")
        await c.create_index("moving")
        await c.create_index("awaiting_payment")  # `pending_payment` ones (few)

    async def get(self, appointment_id: str) -> Document | None:
        return await self.collection.find_one({"_id": appointment_id}, projection=NO_OUTBOX)

    async def insert(self, doc: Document) -> bool:
        """A new appointment (its events in its outbox); False if the id exists already."""
        try:
            await self.collection.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    async def transition(
        self,
        appointment_id: str,
        from_status: str | tuple[str, ...],
        update: Document,
        *,
        slot_id: str | None = None,
    ) -> Document | None:
        """Atomically apply `update` if the appointment is still in `from_status` (and still
        on `slot_id`, when given); the document after, or None."""
        statuses = [from_status] if isinstance(from_status, str) else list(from_status)
        guard: Document = {"_id": appointment_id, "status": {"$in": statuses}}
        if slot_id is not None:
            guard["slot_id"] = slot_id
        return await self.collection.find_one_and_update(
            guard, update, projection=NO_OUTBOX, return_document=ReturnDocument.AFTER
        )

    async def mark_move(
        self, appointment_id: str, from_slot: str, move: Document
    ) -> Document | None:
        return await self.transition(
            appointment_id, "booked", {"$set": {"move": move, "moving": True}}, slot_id=from_slot
        )

    async def clear_move(self, appointment_id: str) -> None:
        await self.collection.update_one(
            {"_id": appointment_id}, {"$unset": {"move": "", "moving": ""}}
        )

    async def settled(self, appointment_id: str, owed_at: dt.datetime) -> None:
        """What the change owed is paid (guarded: a newer debt stays)."""
        await self.collection.update_one(
            {"_id": appointment_id, "owed_at": owed_at},
            {"$unset": {"owed": "", "owed_at": "", "owing": ""}},
        )

    async def delete_pending(self, appointment_id: str) -> None:
        await self.collection.delete_one({"_id": appointment_id, "status": "pending"})

    async def existing(self, appointment_ids: list[str]) -> set[str]:
        cursor = self.collection.find({"_id": {"$in": appointment_ids}}, projection={"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def owing(self, before: dt.datetime, limit: int = 500) -> list[Document]:
        """Appointments whose change still owes something, written before `before`."""
        cursor = self.collection.find({"owing": True}, projection=NO_OUTBOX)
        return [doc async for doc in cursor.limit(limit) if doc["owed_at"] < before]

    async def stale_moves(self, before: dt.datetime, limit: int = 500) -> list[Document]:
        cursor = self.collection.find({"moving": True}, projection=NO_OUTBOX)
        return [doc async for doc in cursor.limit(limit) if doc["move"]["at"] < before]

    async def booked_of_schedule(self, schedule_id: str, limit: int = 100_000) -> list[Document]:
        """The appointments of a session holding a unit (booked, or waiting for the fee)."""
        cursor = self.collection.find(
            {"schedule_id": schedule_id, "status": {"$in": ["booked", "pending_payment"]}},
            projection=NO_OUTBOX,
        ).sort("_id", ASCENDING)
        return [doc async for doc in cursor.limit(limit)]

    async def unpaid_due(self, now: dt.datetime, limit: int = 500) -> list[Document]:
        """`pending_payment` appointments whose `pay_by` has passed."""
        cursor = self.collection.find({"awaiting_payment": True}, projection=NO_OUTBOX)
        return [
            doc
            async for doc in cursor.limit(limit)
            if doc["status"] == "pending_payment" and doc["pay_by"] <= now
        ]

    async def record_payment(
        self, appointment_id: str, payment_statuses: list[str], fields: Document
    ) -> bool:
        """Project a payment outcome onto the appointment, only from `payment_statuses`
        (an outcome never goes back: a late duplicate leaves a refund as it is)."""
        result = await self.collection.update_one(
            {"_id": appointment_id, "payment.status": {"$in": payment_statuses}}, {"$set": fields}
        )
        return result.modified_count == 1

    async def on_date(self, date: str, statuses: tuple[str, ...]) -> list[Document]:
        """The appointments of one visit date in `statuses` (the end-of-day sweep)."""
        cursor = self.collection.find({"date": date}, projection=NO_OUTBOX)
        return [doc async for doc in cursor if doc["status"] in statuses]

    async def lottery_due(
        self, now: dt.datetime, slot_id: str | None = None, limit: int = 10_000
    ) -> list[Document]:
        """Lottery entries whose draw is due (pending appointments are few)."""
        cursor = self.collection.find({"status": "pending"}, projection=NO_OUTBOX)
        due = [
            doc
            async for doc in cursor.limit(limit)
            if doc.get("lottery")
            and doc["draw_at"] <= now
            and (slot_id is None or doc["slot_id"] == slot_id)
        ]
        return sorted(due, key=lambda doc: doc["_id"])

    async def count_of_user(self, user_id: str, statuses: frozenset[str], *, from_date: str) -> int:
        return await self.collection.count_documents(
            {"user_id": user_id, "status": {"$in": sorted(statuses)}, "date": {"$gte": from_date}}
        )

    async def of_user(
        self, user_id: str, status: str | None, skip: int, limit: int
    ) -> list[Document]:
        query: Document = {"user_id": user_id}
        visible = ["pending_payment", "booked", "checked_in", "completed", "cancelled", "no_show"]
        if status == "pending":
            query.update(status="pending", lottery=True)
        elif status:
            query["status"] = status
        else:
            query["$or"] = [{"status": {"$in": visible}}, {"status": "pending", "lottery": True}]
        cursor = self.collection.find(query, projection=NO_OUTBOX).sort(
            [("created_at", DESCENDING), ("_id", DESCENDING)]
        )
        return [doc async for doc in cursor.skip(skip).limit(limit)]

    async def of_hospital(
        self,
        hospital_id: str,
        *,
        date: str | None,
        doctor_id: str | None,
        schedule_id: str | None,
        status: str | None,
        skip: int,
        limit: int,
    ) -> list[Document]:
        query: Document = {"hospital_id": hospital_id}
        for name, value in (("date", date), ("doctor_id", doctor_id), ("schedule_id", schedule_id)):
            if value is not None:
                query[name] = value
        query["status"] = status if status else {"$nin": ["pending"]}
        cursor = self.collection.find(query, projection=NO_OUTBOX).sort(
            [("date", ASCENDING), ("start", ASCENDING), ("seq_no", ASCENDING), ("_id", ASCENDING)]
        )
        return [doc async for doc in cursor.skip(skip).limit(limit)]


class Persons:
    """One document per person (ID-number hash): live profiles, holds, counters, no-shows."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.persons

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("checking")

    async def add_profile(self, id_hash: str, patient_id: str, user_id: str) -> bool:
        """A profile of this person may book; False if it was deleted (never comes back)."""
        try:
            await self.collection.update_one(
                {"_id": id_hash, "forgotten": {"$nin": [patient_id]}},
                {"$set": {f"profiles.{patient_id}": user_id}},
                upsert=True,
            )
            return True
        except DuplicateKeyError:
            return False

    async def forget_profile(self, id_hash: str, patient_id: str) -> None:
        """A deleted profile can never book again, whatever races with the delete."""
        await self.collection.update_one(
            {"_id": id_hash},
            {"$unset": {f"profiles.{patient_id}": ""}, "$addToSet": {"forgotten": patient_id}},
            upsert=True,
        )

    async def hold(
        self,
        patient: PatientRef,
        appointment_id: str,
        limits: PersonLimits,
        now: dt.datetime,
        check_after: dt.datetime,
    ) -> bool:
        """Count a booking against the person in one guarded write: the profile is alive,
        no ban is in force, the department-day and active limits are not reached."""
        h, day = limits.hospital_id, f"day.{limits.day_key}"
        doc = await self.collection.find_one_and_update(
            {
                "$and": [
                    {"_id": patient.id_hash},
                    {f"profiles.{patient.id}": patient.user_id},
                    {f"holds.{appointment_id}": {"$exists": False}},
                    {"$or": [{f"ban.{h}": {"$exists": False}}, {f"ban.{h}": {"$lte": now}}]},
                    {
                        "$or": [
                            {day: {"$exists": False}},
                            {day: {"$lt": limits.per_department_per_day}},
                        ]
                    },
                    {
                        "$or": [
                            {f"active.{h}": {"$exists": False}},
                            {f"active.{h}": {"$lt": limits.max_active}},
                        ]
                    },
                ]
            },
            {
                "$set": {
                    f"holds.{appointment_id}": {"h": h, "k": limits.day_key},
                    "checking": True,
                    "check_after": check_after,
                },
                "$inc": {day: 1, f"active.{h}": 1},
            },
            projection={"_id": 1},
        )
        return doc is not None

    async def release(self, id_hash: str, appointment_id: str, hospital_id: str, key: str) -> bool:
        """Return a booking's hold on the person; True only the one time it was returned."""
        result = await self.collection.update_one(
            {"_id": id_hash, f"holds.{appointment_id}": {"$exists": True}},
            {
                "$unset": {f"holds.{appointment_id}": ""},
                "$inc": {f"day.{key}": -1, f"active.{hospital_id}": -1},
            },
        )
        return result.modified_count == 1

    async def move_hold(
        self, id_hash: str, appointment_id: str, from_key: str, to_key: str, limit: int | None
    ) -> bool:
        """Move a booking's department-day count to another day (改约), guarded by the
        limit of the new day when given; idempotent (False if the hold is not on
        `from_key`, e.g. already moved)."""
        guard: Document = {"_id": id_hash, f"holds.{appointment_id}.k": from_key}
        if limit is not None:
            day = f"day.{to_key}"
            guard = {"$and": [guard, {"$or": [{day: {"$exists": False}}, {day: {"$lt": limit}}]}]}
        result = await self.collection.update_one(
            guard,
            {
                "$set": {f"holds.{appointment_id}.k": to_key},
                "$inc": {f"day.{from_key}": -1, f"day.{to_key}": 1},
            },
        )
        return result.modified_count == 1

    async def get(self, id_hash: str) -> Document | None:
        return await self.collection.find_one({"_id": id_hash})

    async def record_no_show(
        self,
        id_hash: str,
        appointment_id: str,
        hospital_id: str,
        date: str,
        ban_until: dt.datetime | None,
    ) -> None:
        update: Document = {
            "$addToSet": {"no_shows": {"a": appointment_id, "h": hospital_id, "d": date}}
        }
        if ban_until is not None:
            update["$set"] = {f"ban.{hospital_id}": ban_until}
        await self.collection.update_one({"_id": id_hash}, update, upsert=True)

    async def due_for_check(self, now: dt.datetime, limit: int = 500) -> list[Document]:
        cursor = self.collection.find({"checking": True}, projection={"holds": 1, "check_after": 1})
        return [doc async for doc in cursor.limit(limit) if doc["check_after"] <= now]

    async def mark_checked(self, id_hash: str, check_after: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": id_hash, "check_after": check_after},
            {"$unset": {"checking": "", "check_after": ""}},
        )


def no_show_dates(person: Document | None, hospital_id: str) -> list[str]:
    return sorted(
        str(n["d"]) for n in (person or {}).get("no_shows", []) if n.get("h") == hospital_id
    )


class DaySweeps:
    """Visit dates the end-of-day sweep has finished (so an idle sweep reads a few ids)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.day_sweeps

    async def done(self, dates: list[str]) -> set[str]:
        cursor = self.collection.find({"_id": {"$in": dates}})
        return {doc["_id"] async for doc in cursor}

    async def finish(self, date: str, now: dt.datetime) -> None:
        await _insert_if_absent(self.collection, {"_id": date, "at": now})


class Patients:
    """Booking's projection of patient profiles (fed by auth's `patient.*` events)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.patients

    async def get(self, patient_id: str) -> PatientRef | None:
        doc = await self.collection.find_one({"_id": patient_id})
        if doc is None or doc.get("deleted"):
            return None
        return PatientRef(
            id=doc["_id"],
            user_id=doc["user_id"],
            id_hash=doc["id_hash"],
            name=doc["name"],
            id_number_masked=doc["id_number_masked"],
        )

    async def put(self, patient: PatientRef) -> None:
        try:
            await self.collection.update_one(
                {"_id": patient.id, "deleted": {"$exists": False}},
                {
                    "$set": {
                        "user_id": patient.user_id,
                        "id_hash": patient.id_hash,
                        "name": patient.name,
                        "id_number_masked": patient.id_number_masked,
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # deleted meanwhile: stays deleted

    async def delete(self, patient_id: str) -> None:
        await self.collection.update_one(
            {"_id": patient_id}, {"$set": {"deleted": True}}, upsert=True
        )


class Holds:
    """Numbered claims for what is capped outside a booking (waitlist entries per person,
    one lottery entry per person and session)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.holds

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("owner")

    async def claim(self, key: str, owner: str, now: dt.datetime) -> bool:
        try:
            await self.collection.insert_one({"_id": key, "owner": owner, "at": now})
            return True
        except DuplicateKeyError:
            return False

    async def holder(self, key: str) -> str | None:
        doc = await self.collection.find_one({"_id": key})
        return None if doc is None else str(doc["owner"])

    async def drop(self, key: str, owner: str) -> None:
        await self.collection.delete_one({"_id": key, "owner": owner})

    async def drop_all(self, owner: str) -> None:
        await self.collection.delete_many({"owner": owner})


class Waitlist:
    """候补 entries, served in the order they joined."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.waitlist

    async def ensure_indexes(self) -> None:
        await self.collection.create_index(
            [("hospital_id", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING)]
        )
        await self.collection.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
        await self.collection.create_index("status")

    async def insert(self, doc: Document) -> None:
        await self.collection.insert_one(doc)

    async def get(self, entry_id: str) -> Document | None:
        return await self.collection.find_one({"_id": entry_id}, projection=NO_OUTBOX)

    async def of_user(self, user_id: str) -> list[Document]:
        cursor = self.collection.find({"user_id": user_id}, projection=NO_OUTBOX)
        return [
            d
            async for d in cursor.sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(100)
        ]

    async def waiting_for(
        self, hospital_id: str, doctor_id: str, department_id: str, date: str, session: str
    ) -> list[Document]:
        """Waiting entries a slot would satisfy, oldest first."""
        cursor = self.collection.find(
            {
                "hospital_id": hospital_id,
                "status": "waiting",
                "date_from": {"$lte": date},
                "date_to": {"$gte": date},
                "$or": [{"doctor_id": doctor_id}, {"department_id": department_id}],
            },
            projection=NO_OUTBOX,
        ).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return [
            d async for d in cursor.limit(200) if not d.get("sessions") or session in d["sessions"]
        ]

    async def claim(self, entry_id: str, now: dt.datetime) -> bool:
        """One hand-over at a time serves an entry: waiting → promoting."""
        result = await self.collection.update_one(
            {"_id": entry_id, "status": "waiting"},
            {"$set": {"status": "promoting", "promoting_at": now}},
        )
        return result.modified_count == 1

    async def unclaim(self, entry_id: str) -> None:
        await self.collection.update_one(
            {"_id": entry_id, "status": "promoting"},
            {"$set": {"status": "waiting"}, "$unset": {"promoting_at": ""}},
        )

    async def stale_claims(self, before: dt.datetime, limit: int = 200) -> list[Document]:
        cursor = self.collection.find({"status": "promoting"}, projection=NO_OUTBOX)
        return [d async for d in cursor.limit(limit) if d["promoting_at"] < before]

    async def finish(self, entry_id: str, status: str, fields: Document) -> Document | None:
        return await self.collection.find_one_and_update(
            {"_id": entry_id, "status": {"$in": ["waiting", "promoting"]}},
            {"$set": {"status": status, **fields}, "$unset": {"promoting_at": ""}},
            projection=NO_OUTBOX,
            return_document=ReturnDocument.AFTER,
        )


async def _insert_if_absent(collection: Any, doc: Document) -> None:
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError:
        pass
