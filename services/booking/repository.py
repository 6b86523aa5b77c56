"""MongoDB access for booking: inventory (schedules, slots), appointments, holds, no-shows.

Every invariant holds with single-document atomic updates plus unique keys:
- a slot's `holders` lists the appointments holding a unit of its capacity; reserving is one
  guarded update (`booked < capacity`, not stopped, not already a holder), releasing is one
  guarded update (only while the appointment is a holder), so capacity returns exactly once;
- the per-patient limits are `holds` documents with numbered keys (`…:0`, `…:1`): taking one
  is an insert under the unique `_id`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.contracts.catalog import ScheduleDefinition
from shared.storage.mongo import Document

ACTIVE = ("pending", "booked")


class Inventory:
    """Schedules and slots as booking holds them (capacity, holders, stop state)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.schedules = db.schedules
        self.slots = db.slots

    async def ensure_indexes(self) -> None:
        await self.slots.create_index("schedule_id")
        await self.schedules.create_index([("hospital_id", ASCENDING), ("date", ASCENDING)])

    async def register(self, schedule: ScheduleDefinition) -> None:
        """Hold inventory for a schedule; idempotent, never resets what was booked."""
        base = {
            "hospital_id": schedule.hospital_id,
            "doctor": schedule.doctor.model_dump(exclude_none=True),
            "department": schedule.department.model_dump(exclude_none=True),
            "date": schedule.date.isoformat(),
            "session": schedule.session,
            "fee_cents": schedule.fee_cents,
        }
        await _insert_if_absent(self.slots.database.schedules, schedule.id,
                                {**base, "seq": 0, "stopped": False})
        for slot in schedule.slots:
            await _insert_if_absent(self.slots, slot.id, {
                **base, "schedule_id": schedule.id, "doctor_id": schedule.doctor.id,
                "department_id": schedule.department.id, "start": slot.start, "end": slot.end,
                "capacity": slot.capacity, "booked": 0, "holders": [], "stopped": False,
            })

    async def slot(self, slot_id: str) -> Document | None:
        return await self.slots.find_one({"_id": slot_id})

    async def schedule(self, schedule_id: str) -> Document | None:
        return await self.schedules.find_one({"_id": schedule_id})

    async def slots_of(self, schedule_ids: list[str]) -> list[Document]:
        cursor = self.slots.find({"schedule_id": {"$in": schedule_ids}},
                                 projection={"holders": 0}).sort("start", ASCENDING)
        return [doc async for doc in cursor]

    async def schedules_by_id(self, schedule_ids: list[str]) -> dict[str, Document]:
        cursor = self.schedules.find({"_id": {"$in": schedule_ids}}, projection={"outbox": 0})
        return {doc["_id"]: doc async for doc in cursor}

    async def reserve(self, slot_id: str, appointment_id: str) -> bool:
        """Take one unit of capacity for an appointment (idempotent per appointment)."""
        doc = await self.slots.find_one_and_update(
            {"_id": slot_id, "stopped": False, "holders": {"$nin": [appointment_id]},
             "$expr": {"$lt": ["$booked", "$capacity"]}},
            {"$push": {"holders": appointment_id}, "$inc": {"booked": 1, "v": 1}},
            projection={"_id": 1},
        )
        if doc is not None:
            return True
        return await self.is_holder(slot_id, appointment_id)

    async def is_holder(self, slot_id: str, appointment_id: str) -> bool:
        return await self.slots.count_documents({"_id": slot_id, "holders": appointment_id}) > 0

    async def release(self, slot_id: str, appointment_id: str) -> bool:
        """Give an appointment's unit back; True only the one time it was actually returned."""
        result = await self.slots.update_one(
            {"_id": slot_id, "holders": appointment_id},
            {"$pull": {"holders": appointment_id}, "$inc": {"booked": -1, "v": 1}},
        )
        return result.modified_count == 1

    async def transfer(self, slot_id: str, from_id: str, to_id: str) -> bool:
        """Hand one held unit from one appointment to another in a single write (the
        waitlist's promotion): nobody else can take it in between."""
        for _ in range(20):
            slot = await self.slots.find_one({"_id": slot_id})
            if (slot is None or from_id not in slot["holders"] or to_id in slot["holders"]
                    or slot.get("stopped")):
                return False
            holders = [h for h in slot["holders"] if h != from_id] + [to_id]
            result = await self.slots.update_one(
                {"_id": slot_id, "stopped": False, **_version(slot)},
                {"$set": {"holders": holders, "booked": len(holders)}, "$inc": {"v": 1}})
            if result.modified_count == 1:
                return True
        raise RuntimeError("slot transfer kept racing")

    async def add_unit_for(self, slot_id: str, appointment_id: str) -> bool:
        """加号 straight into an appointment: capacity and its holder grow in one write."""
        for _ in range(20):
            slot = await self.slots.find_one({"_id": slot_id})
            if slot is None or slot.get("stopped"):
                return False
            if appointment_id in slot["holders"]:
                return True
            result = await self.slots.update_one(
                {"_id": slot_id, "stopped": False, **_version(slot)},
                {"$push": {"holders": appointment_id},
                 "$inc": {"capacity": 1, "booked": 1, "v": 1}})
            if result.modified_count == 1:
                return True
        raise RuntimeError("slot capacity change kept racing")

    async def next_seq(self, schedule_id: str) -> int:
        """The next 就诊序号 of a schedule: increasing, never reused."""
        doc = await self.schedules.find_one_and_update(
            {"_id": schedule_id}, {"$inc": {"seq": 1}},
            projection={"seq": 1}, return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise LookupError(schedule_id)
        return int(doc["seq"])

    async def mark_stopped(self, schedule_id: str, update: dict[str, Any]) -> bool:
        """Stop a schedule and its slots; True the first time (the caller emits the event)."""
        result = await self.schedules.update_one({"_id": schedule_id, "stopped": False}, update)
        await self.slots.update_many({"schedule_id": schedule_id},
                                     {"$set": {"stopped": True}, "$inc": {"v": 1}})
        return result.modified_count == 1

    async def change_capacity(self, slot_id: str, delta: int, update_extra: dict[str, Any]
                              ) -> Document | None:
        """Add or remove capacity without going below what is booked (optimistic retry)."""
        for _ in range(20):
            slot = await self.slots.find_one({"_id": slot_id}, projection={"holders": 0})
            if slot is None:
                return None
            new_capacity = int(slot["capacity"]) + delta
            if new_capacity < int(slot["booked"]) or new_capacity < 0:
                raise ValueError("below booked")
            update = {op: dict(v) for op, v in update_extra.items()}
            update.setdefault("$set", {})["capacity"] = new_capacity
            update.setdefault("$inc", {})["v"] = 1
            doc = await self.slots.find_one_and_update(
                {"_id": slot_id, "capacity": slot["capacity"],
                 "booked": {"$lte": new_capacity}},
                update, projection={"holders": 0, "outbox": 0},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return doc
        raise RuntimeError("capacity change kept racing")


def _version(slot: Document) -> Document:
    """Guard on the slot's write counter (absent on a slot never written since created)."""
    return {"v": slot["v"]} if "v" in slot else {"v": {"$exists": False}}


async def _insert_if_absent(collection: Any, _id: str, fields: Document) -> None:
    try:
        await collection.update_one({"_id": _id}, {"$setOnInsert": fields}, upsert=True)
    except DuplicateKeyError:
        pass


class Appointments:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.appointments

    async def ensure_indexes(self) -> None:
        c = self.collection
        await c.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
        await c.create_index([("hospital_id", ASCENDING), ("date", ASCENDING)])
        await c.create_index("schedule_id")
        await c.create_index([("id_hash", ASCENDING), ("hospital_id", ASCENDING),
                              ("status", ASCENDING)])
        await c.create_index([("status", ASCENDING), ("updated_at", ASCENDING)])
        await c.create_index("released")

    async def get(self, appointment_id: str) -> Document | None:
        return await self.collection.find_one({"_id": appointment_id}, projection={"outbox": 0})

    async def insert_pending(self, doc: Document) -> bool:
        try:
            await self.collection.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    async def transition(self, appointment_id: str, from_status: str | tuple[str, ...],
                         update: dict[str, Any], extra_filter: Document | None = None
                         ) -> Document | None:
        """Atomically move an appointment from one status (guard) to the next."""
        statuses = [from_status] if isinstance(from_status, str) else list(from_status)
        return await self.collection.find_one_and_update(
            {"_id": appointment_id, "status": {"$in": statuses}, **(extra_filter or {})},
            update, projection={"outbox": 0}, return_document=ReturnDocument.AFTER,
        )

    async def delete_pending(self, appointment_id: str) -> None:
        await self.collection.delete_one({"_id": appointment_id, "status": "pending"})

    async def set_fields(self, appointment_id: str, fields: Document) -> None:
        await self.collection.update_one({"_id": appointment_id}, {"$set": fields})

    async def count_active(self, query: Document) -> int:
        return await self.collection.count_documents({**query, "status": {"$in": list(ACTIVE)}})

    async def find(self, query: Document, sort: list[tuple[str, int]], limit: int,
                   skip: int = 0) -> list[Document]:
        cursor = self.collection.find(query, projection={"outbox": 0}).sort(sort)
        return [doc async for doc in cursor.skip(skip).limit(limit)]


class Holds:
    """Numbered claims that cap how many active appointments one person holds."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.holds

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("appointment_id")

    async def claim(self, key: str, appointment_id: str) -> bool:
        try:
            await self.collection.insert_one({"_id": key, "appointment_id": appointment_id,
                                              "at": dt.datetime.now(dt.UTC)})
            return True
        except DuplicateKeyError:
            return False

    async def holder(self, key: str) -> str | None:
        doc = await self.collection.find_one({"_id": key})
        return None if doc is None else str(doc["appointment_id"])

    async def drop(self, key: str, appointment_id: str) -> None:
        await self.collection.delete_one({"_id": key, "appointment_id": appointment_id})

    async def drop_all(self, appointment_id: str) -> None:
        await self.collection.delete_many({"appointment_id": appointment_id})


class Waitlist:
    """候补 entries, served in the order they joined."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.waitlist

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("hospital_id", ASCENDING), ("status", ASCENDING),
                                            ("created_at", ASCENDING)])
        await self.collection.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])

    async def insert(self, doc: Document) -> None:
        await self.collection.insert_one(doc)

    async def get(self, entry_id: str) -> Document | None:
        return await self.collection.find_one({"_id": entry_id}, projection={"outbox": 0})

    async def of_user(self, user_id: str) -> list[Document]:
        cursor = self.collection.find({"user_id": user_id}, projection={"outbox": 0})
        return [d async for d in cursor.sort([("created_at", DESCENDING), ("_id", DESCENDING)])
                .limit(100)]

    async def waiting_for(self, slot: Document) -> list[Document]:
        """Waiting entries that this slot would satisfy, oldest first."""
        cursor = self.collection.find({
            "hospital_id": slot["hospital_id"], "status": "waiting",
            "date_from": {"$lte": slot["date"]}, "date_to": {"$gte": slot["date"]},
            "$or": [{"doctor_id": slot["doctor_id"]}, {"department_id": slot["department_id"]}],
        }, projection={"outbox": 0}).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return [d async for d in cursor.limit(200)
                if not d.get("sessions") or slot["session"] in d["sessions"]]

    async def finish(self, entry_id: str, status: str, fields: Document) -> Document | None:
        return await self.collection.find_one_and_update(
            {"_id": entry_id, "status": "waiting"},
            {"$set": {"status": status, **fields}},
            projection={"outbox": 0}, return_document=ReturnDocument.AFTER)


class NoShows:
    """No-shows recorded against the person (keyed hash of the ID number), not the account."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.no_shows

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("id_hash", ASCENDING), ("hospital_id", ASCENDING),
                                            ("date", ASCENDING)])

    async def record(self, appointment: Document) -> None:
        try:
            await self.collection.insert_one({
                "_id": appointment["_id"], "id_hash": appointment["id_hash"],
                "hospital_id": appointment["hospital_id"], "date": appointment["date"],
            })
        except DuplicateKeyError:
            pass

    async def dates_since(self, id_hash: str, hospital_id: str, since: dt.date) -> list[str]:
        cursor = self.collection.find({"id_hash": id_hash, "hospital_id": hospital_id,
                                       "date": {"$gte": since.isoformat()}})
        return sorted([doc["date"] async for doc in cursor])
