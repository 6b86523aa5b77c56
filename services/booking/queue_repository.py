"""MongoDB access of the queue (候诊叫号): guarded single-document writes on appointments.

The queue is a sub-state of checked-in appointments (`queue.{state, rank, room, calls,
called_at, …}` on the appointment document), so every queue change is one guarded write on
one appointment that carries its event in the appointment's outbox (`with_outbox`), and the
queue of a session is recomputed from the session's appointments at every read. A write
whose follow-up (the `queue_near` announcements) is not done yet carries `queue_due: true`
until it is; `due` finds what a crash left.
"""

from __future__ import annotations

import datetime as dt

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.booking.repository import NO_OUTBOX
from shared.storage.mongo import Document

# what the queue reads of an appointment (never its outbox)
QUEUE_STATUSES = ("booked", "checked_in", "completed")


class QueueStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.appointments = db.appointments
        self.sessions = db.sessions

    async def ensure_indexes(self) -> None:
        # the repair finds its work by equality on a flag only unfinished changes carry
        await self.appointments.create_index("queue_due")

    async def of_session(self, schedule_id: str) -> list[Document]:
        """The session's appointments the queue is made of (booked, checked in, done)."""
        cursor = self.appointments.find({"schedule_id": schedule_id}, projection=NO_OUTBOX)
        return [doc async for doc in cursor if doc["status"] in QUEUE_STATUSES]

    async def take(
        self, appointment_id: str, states: tuple[str, ...], update: Document
    ) -> Document | None:
        """Apply `update` if the appointment is checked in and its queue state is one of
        `states` (atomic: two desks never take the same patient); the document after."""
        return await self.appointments.find_one_and_update(
            {"_id": appointment_id, "status": "checked_in", "queue.state": {"$in": list(states)}},
            update,
            projection=NO_OUTBOX,
            return_document=ReturnDocument.AFTER,
        )

    async def announce_near(self, appointment_id: str, update: Document) -> bool:
        """Mark a waiting appointment as told its turn is near, once ever."""
        result = await self.appointments.update_one(
            {
                "_id": appointment_id,
                "status": "checked_in",
                "queue.state": "waiting",
                "queue.near_at": {"$exists": False},
            },
            update,
        )
        return result.modified_count == 1

    async def followed_up(self, appointment_id: str, at: dt.datetime) -> None:
        """The follow-up of the change written at `at` is done (a newer one stays due)."""
        await self.appointments.update_one(
            {"_id": appointment_id, "queue_due": True, "queue_due_at": at},
            {"$unset": {"queue_due": "", "queue_due_at": ""}},
        )

    async def due(self, before: dt.datetime, limit: int = 200) -> list[Document]:
        """Changes written before `before` whose follow-up a crash left undone."""
        cursor = self.appointments.find(
            {"queue_due": True}, projection={"schedule_id": 1, "queue_due_at": 1}
        )
        return [doc async for doc in cursor.limit(limit) if doc["queue_due_at"] < before]

    async def sessions_of_doctor(
        self, hospital_id: str, doctor_id: str, dates: list[str]
    ) -> list[str]:
        """The doctor's sessions on `dates` (the hospital-and-date index, then a filter)."""
        cursor = self.sessions.find(
            {"hospital_id": hospital_id, "date": {"$in": dates}}, projection={"doctor_id": 1}
        )
        return [doc["_id"] async for doc in cursor if doc.get("doctor_id") == doctor_id]

    async def consults_of(self, schedule_ids: list[str]) -> list[tuple[dt.datetime, int]]:
        """(done at, consult seconds) of the completed visits the queue timed."""
        cursor = self.appointments.find(
            {"schedule_id": {"$in": schedule_ids}, "status": "completed"}, projection={"queue": 1}
        )
        return [
            (doc["queue"]["done_at"], int(doc["queue"]["consult_seconds"]))
            async for doc in cursor
            if "consult_seconds" in (doc.get("queue") or {})
        ]
