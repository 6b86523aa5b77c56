"""MongoDB access of scheduling (排班) in `guahao_catalog`.

Collections: `doctor_templates` (one document per doctor holding all of its weekly
templates, so a new template is checked against its siblings and stored in one guarded
write), `calendar` (one document per hospital and date: a holiday or a 调休 workday),
`leaves` (doctor leave, with the sessions it stopped), `generation` (per hospital: the
version of its scheduling inputs and the version last generated). Generated sessions live
in `schedules` beside hand-made ones, marked with `template_id` and `fingerprint`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.storage.mongo import Document

INSERT_BATCH = 500


class SchedulingRepository:
    """Templates, calendar, leave and generation state; bulk writes of generated sessions."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.templates: AsyncCollection[Document] = db["doctor_templates"]
        self.calendar: AsyncCollection[Document] = db["calendar"]
        self.leaves: AsyncCollection[Document] = db["leaves"]
        self.generation: AsyncCollection[Document] = db["generation"]
        self.schedules: AsyncCollection[Document] = db["schedules"]

    async def ensure_indexes(self) -> None:
        await self.templates.create_indexes([IndexModel("hospital_id", name="hospital")])
        await self.calendar.create_indexes(
            [IndexModel([("hospital_id", ASCENDING), ("date", ASCENDING)], name="hospital_date")]
        )
        await self.leaves.create_indexes(
            [
                IndexModel([("hospital_id", ASCENDING), ("to", ASCENDING)], name="hospital_to"),
                IndexModel("done", name="done"),
            ]
        )

    # templates

    async def doctor_templates(self, doctor_id: str) -> Document | None:
        return await self.templates.find_one({"_id": doctor_id})

    async def hospital_templates(self, hospital_id: str) -> list[Document]:
        return [doc async for doc in self.templates.find({"hospital_id": hospital_id})]

    async def save_templates(
        self,
        doctor_id: str,
        hospital_id: str,
        version: int,
        templates: list[Document],
        now: dt.datetime,
    ) -> bool:
        """Store the doctor's whole template list if nobody changed it since `version`
        (0: the doctor had none); False when someone did (read again and retry)."""
        if version == 0:
            try:
                await self.templates.insert_one(
                    {
                        "_id": doctor_id,
                        "hospital_id": hospital_id,
                        "templates": templates,
                        "version": 1,
                        "updated_at": now,
                    }
                )
            except DuplicateKeyError:
                return False
            return True
        result = await self.templates.update_one(
            {"_id": doctor_id, "version": version},
            {"$set": {"templates": templates, "updated_at": now}, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    # calendar

    async def put_calendar_day(self, hospital_id: str, date: dt.date, fields: Document) -> None:
        """Replace what the calendar says about one date (absent fields are unset)."""
        await self.calendar.replace_one(
            {"_id": f"{hospital_id}:{date.isoformat()}"},
            {"hospital_id": hospital_id, "date": date.isoformat(), **fields},
            upsert=True,
        )

    async def calendar_days(
        self, hospital_id: str, date_from: dt.date, date_to: dt.date
    ) -> list[Document]:
        cursor = self.calendar.find(
            {
                "hospital_id": hospital_id,
                "date": {"$gte": date_from.isoformat(), "$lte": date_to.isoformat()},
            }
        ).sort("date", ASCENDING)
        return [doc async for doc in cursor]

    # leave

    async def insert_leave(self, doc: Document) -> None:
        await self.leaves.insert_one(doc)

    async def leaves_overlapping(
        self, hospital_id: str, date_from: dt.date, date_to: dt.date
    ) -> list[Document]:
        cursor = self.leaves.find(
            {"hospital_id": hospital_id, "to": {"$gte": date_from.isoformat()}}
        )
        return [doc async for doc in cursor if doc["from"] <= date_to.isoformat()]

    async def unfinished_leaves(self) -> list[Document]:
        return [doc async for doc in self.leaves.find({"done": False}).limit(100)]

    async def finish_leave(self, leave_id: str, stopped: list[str], cancelled: int) -> None:
        await self.leaves.update_one(
            {"_id": leave_id}, {"$set": {"done": True, "stopped": stopped, "cancelled": cancelled}}
        )

    # generation state

    async def bump_inputs(self, hospital_id: str) -> None:
        """A template, calendar day, leave or rule changed: the window must be regenerated."""
        await self.generation.update_one({"_id": hospital_id}, {"$inc": {"wanted": 1}}, upsert=True)

    async def generation_state(self, hospital_id: str) -> Document:
        return await self.generation.find_one({"_id": hospital_id}) or {"_id": hospital_id}

    async def mark_generated(
        self, hospital_id: str, wanted: int, through: dt.date, at: dt.datetime
    ) -> None:
        """Inputs version `wanted` is generated up to `through` (the window's last date)."""
        await self.generation.update_one(
            {"_id": hospital_id},
            {"$set": {"done": wanted, "done_through": through.isoformat(), "done_at": at}},
            upsert=True,
        )

    # generated sessions

    async def schedules_between(
        self,
        hospital_id: str,
        date_from: dt.date,
        date_to: dt.date,
        doctor_ids: Iterable[str] | None = None,
    ) -> list[Document]:
        query: dict[str, Any] = {
            "hospital_id": hospital_id,
            "date": {"$gte": date_from.isoformat(), "$lte": date_to.isoformat()},
        }
        if doctor_ids is not None:
            query["doctor_id"] = {"$in": sorted(set(doctor_ids))}
        return [doc async for doc in self.schedules.find(query, projection={"outbox": 0})]

    async def doctor_schedules_between(
        self, doctor_id: str, date_from: dt.date, date_to: dt.date
    ) -> list[Document]:
        cursor = self.schedules.find(
            {
                "doctor_id": doctor_id,
                "date": {"$gte": date_from.isoformat(), "$lte": date_to.isoformat()},
            },
            projection={"outbox": 0},
        ).sort("date", ASCENDING)
        return [doc async for doc in cursor]

    async def insert_schedules(self, docs: list[Document]) -> list[str]:
        """Insert new sessions, skipping any whose id or (doctor, date, session) exists
        (a concurrent run got there first); return the ids this call inserted."""
        inserted: list[str] = []
        for i in range(0, len(docs), INSERT_BATCH):
            batch = docs[i : i + INSERT_BATCH]
            try:
                await self.schedules.insert_many(batch, ordered=False)
                inserted.extend(doc["_id"] for doc in batch)
            except BulkWriteError as exc:
                failed = {batch[err["index"]]["_id"] for err in exc.details.get("writeErrors", [])}
                inserted.extend(doc["_id"] for doc in batch if doc["_id"] not in failed)
        return inserted

    async def delete_generated_schedule(self, schedule_id: str, fingerprint: str) -> bool:
        """Remove a generated session that was closed in booking (its replacement, if any,
        is inserted next)."""
        result = await self.schedules.delete_one({"_id": schedule_id, "fingerprint": fingerprint})
        return result.deleted_count == 1
