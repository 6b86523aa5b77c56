"""Statistics as a projection of booking's events, kept in the catalog's database.

The projection holds one row per appointment (its visit date, doctor, department and
latest status) and one per slot (its capacity, and whether its session was stopped). An
event sets a row to the state it announces, guarded by the event's instant (and, for
events of the same millisecond, by how far along the life cycle the status is), so events
may arrive twice, late or out of order and the rows still end at the latest state.
Each event is claimed by inserting its id under a unique key before it is applied and
marked applied after; a redelivery of an applied event is skipped, one that was claimed
but not applied (a crash in between) is applied again — applying is idempotent.

Queries aggregate the rows of the range (`$match` + `$group` in the database).
`python -m services.catalog.stats rebuild <hospital_id>` rebuilds a hospital's rows from
booking's appointments (the `hospital_appointments` RPC, page by page) and the catalog's
sessions with booking's live capacities.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from typing import Any, Protocol

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.catalog.repository import CatalogRepository
from services.catalog.service import require_hospital_staff
from shared.context import Caller
from shared.contracts.booking import AppointmentList, Availability
from shared.contracts.scheduling import Stats, StatsQuery, StatsRow
from shared.errors import NotFound
from shared.messaging.events import HOSPITAL_TZ, EventEnvelope
from shared.storage.mongo import Document

log = logging.getLogger("guahao.catalog.stats")

EVENT_BINDINGS = [
    "appointment.*.*",
    "schedule.published.*",
    "schedule.capacity_changed.*",
    "schedule.stopped.*",
]
CLAIM_TTL_SECONDS = 14 * 24 * 3600
# how far along the life cycle a status is: breaks ties between events of one millisecond
RANK = {
    "pending": 0,
    "pending_payment": 0,
    "booked": 1,
    "checked_in": 2,
    "completed": 3,
    "cancelled": 3,
    "no_show": 3,
}
GROUP_FIELD = {"day": "date", "department": "department_id", "doctor": "doctor_id"}
# the columns counted from the appointment rows: `booked` is every appointment made for the
# visit date (whatever became of it); `completed` is every visit that took place (checked
# in, or completed by the queue)
COUNTED: dict[str, Document] = {
    "booked": {},
    "cancelled_by_patient": {"status": "cancelled", "cancelled_by": "patient"},
    "cancelled_by_hospital": {"status": "cancelled", "cancelled_by": "hospital"},
    "cancelled_by_system": {"status": "cancelled", "cancelled_by": "system"},
    "no_show": {"status": "no_show"},
    "completed": {"status": {"$in": ["checked_in", "completed"]}},
}
PAGE = 200
AVAILABILITY_BATCH = 500


class BookingRecords(Protocol):
    """Booking's records a rebuild reads (over RPC in production)."""

    async def hospital_appointments(
        self, hospital_id: str, cursor: str | None
    ) -> AppointmentList: ...

    async def availability(self, schedule_ids: list[str]) -> Availability: ...


def instant(at: dt.datetime) -> str:
    """An instant written as event envelopes write `occurred_at` (so they compare)."""
    return at.astimezone(HOSPITAL_TZ).isoformat(timespec="milliseconds")


def newer(at: str, rank: int) -> dict[str, Any]:
    """Rows older than (at, rank): the ones an event of that instant and rank may set."""
    return {"$or": [{"at": {"$lt": at}}, {"at": at, "rank": {"$lt": rank}}]}


def ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0


class StatsRepository:
    """The projection's rows and its claimed events."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.appointments: AsyncCollection[Document] = db["stats_appointments"]
        self.slots: AsyncCollection[Document] = db["stats_slots"]
        self.schedules: AsyncCollection[Document] = db["stats_schedules"]
        self.claims: AsyncCollection[Document] = db["stats_events"]

    async def ensure_indexes(self) -> None:
        for rows in (self.appointments, self.slots):
            await rows.create_indexes(
                [
                    IndexModel(
                        [("hospital_id", ASCENDING), ("date", ASCENDING)], name="hospital_date"
                    )
                ]
            )
        await self.slots.create_indexes([IndexModel("schedule_id", name="schedule")])
        await self.claims.create_indexes(
            [IndexModel("at", name="expiry", expireAfterSeconds=CLAIM_TTL_SECONDS)]
        )

    async def claim(self, event_id: str, now: dt.datetime) -> bool:
        """Take the event for this consumer: True to apply it, False when it was applied."""
        try:
            await self.claims.insert_one({"_id": event_id, "at": now, "applied": False})
            return True
        except DuplicateKeyError:
            doc = await self.claims.find_one({"_id": event_id})
            return not (doc or {}).get("applied")

    async def mark_applied(self, event_id: str) -> None:
        await self.claims.update_one({"_id": event_id}, {"$set": {"applied": True}})

    async def set_appointment(
        self, appointment_id: str, at: str, rank: int, fields: Document
    ) -> bool:
        """Set an appointment's row unless it already holds a later state."""
        try:
            result = await self.appointments.update_one(
                {"$and": [{"_id": appointment_id}, newer(at, rank)]},
                {"$set": {**fields, "at": at, "rank": rank}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the row exists with a later state
        return result.modified_count == 1 or result.upserted_id is not None

    async def set_slot(self, slot_id: str, static: Document, capacity: int, at: str) -> None:
        """A slot's place (date, doctor, …) and its capacity as of `at`."""
        update: Document = {"$set": static}
        if "stopped" not in static:  # never null: nx-27017's $ne misses absent fields
            update["$setOnInsert"] = {"stopped": False}
        await self.slots.update_one({"_id": slot_id}, update, upsert=True)
        await self.slots.update_one(
            {
                "$and": [
                    {"_id": slot_id},
                    {"$or": [{"cap_at": {"$exists": False}}, {"cap_at": {"$lt": at}}]},
                ]
            },
            {"$set": {"capacity": capacity, "cap_at": at}},
        )

    async def stop_schedule(self, schedule_id: str) -> None:
        """Record the stop first, then flag the slots known so far; a publication handled
        concurrently flags its own slots after writing them (see `schedule_stopped`)."""
        await self.schedules.update_one(
            {"_id": schedule_id}, {"$set": {"stopped": True}}, upsert=True
        )
        await self.slots.update_many({"schedule_id": schedule_id}, {"$set": {"stopped": True}})

    async def schedule_stopped(self, schedule_id: str) -> bool:
        doc = await self.schedules.find_one({"_id": schedule_id})
        return bool(doc and doc.get("stopped"))

    async def count_appointments(
        self, hospital_id: str, date_from: dt.date, date_to: dt.date, group: str, match: Document
    ) -> dict[str, int]:
        """Rows matching `match` per value of `group` (one `$group` on a plain field:
        nx-27017 answers a compound `$group` key with the literal expression)."""
        pipeline: list[Document] = [
            {
                "$match": {
                    "hospital_id": hospital_id,
                    **match,
                    "date": {"$gte": date_from.isoformat(), "$lte": date_to.isoformat()},
                }
            },
            {"$group": {"_id": f"${group}", "n": {"$sum": 1}}},
        ]
        return {
            str(doc["_id"]): int(doc["n"])
            async for doc in await self.appointments.aggregate(pipeline)
        }

    async def sum_capacity(
        self, hospital_id: str, date_from: dt.date, date_to: dt.date, group: str
    ) -> list[Document]:
        pipeline: list[Document] = [
            {
                "$match": {
                    "hospital_id": hospital_id,
                    "stopped": False,
                    "date": {"$gte": date_from.isoformat(), "$lte": date_to.isoformat()},
                }
            },
            {"$group": {"_id": f"${group}", "capacity": {"$sum": "$capacity"}}},
        ]
        return [doc async for doc in await self.slots.aggregate(pipeline)]

    async def drop_older(self, hospital_id: str, stamp: str) -> None:
        """After a rebuild: rows neither rebuilt nor set by a later event are gone."""
        await self.appointments.delete_many({"hospital_id": hospital_id, "at": {"$lt": stamp}})
        await self.slots.delete_many({"hospital_id": hospital_id, "cap_at": {"$lt": stamp}})


class StatsService:
    """Applies events to the projection, answers queries, rebuilds it."""

    def __init__(self, store: StatsRepository, catalog: CatalogRepository, clock: Any) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock

    # events

    async def on_event(self, event: EventEnvelope) -> None:
        """Apply one event at most once (claimed by id), whatever the redelivery."""
        if not await self.store.claim(event.id, self.clock()):
            log.debug("event already counted", extra={"event_id": event.id})
            return
        await self.apply(event)
        await self.store.mark_applied(event.id)

    async def apply(self, event: EventEnvelope) -> None:
        """Set the rows an event speaks about (idempotent)."""
        at = event.occurred_at
        if event.type.startswith("appointment."):
            appointment = event.data.get("appointment")
            if isinstance(appointment, dict) and appointment.get("status") in RANK:
                await self._set_appointment(event.hospital_id, appointment, at)
        elif event.type == "schedule.published":
            schedule = event.data["schedule"]
            for slot in schedule["slots"]:
                await self.store.set_slot(
                    slot["id"],
                    {
                        "hospital_id": event.hospital_id,
                        "schedule_id": schedule["id"],
                        "date": schedule["date"],
                        "doctor_id": schedule["doctor"]["id"],
                        "department_id": schedule["department"]["id"],
                    },
                    int(slot["capacity"]),
                    at,
                )
            if await self.store.schedule_stopped(schedule["id"]):
                await self.store.stop_schedule(schedule["id"])
        elif event.type == "schedule.capacity_changed":
            slot = event.data["slot"]
            await self.store.set_slot(
                slot["id"],
                {
                    "hospital_id": event.hospital_id,
                    "schedule_id": slot["schedule_id"],
                    "date": slot["date"],
                    "doctor_id": slot["doctor_id"],
                },
                int(slot["capacity"]),
                at,
            )
        elif event.type == "schedule.stopped":
            await self.store.stop_schedule(event.data["schedule"]["id"])

    async def _set_appointment(self, hospital_id: str, appointment: Document, at: str) -> None:
        status = appointment["status"]
        fields: Document = {
            "hospital_id": hospital_id,
            "date": str(appointment["date"]),
            "doctor_id": appointment["doctor_id"],
            "department_id": appointment["department_id"],
            "status": status,
        }
        if status == "cancelled":
            fields["cancelled_by"] = appointment.get("cancelled_by") or "system"
        await self.store.set_appointment(appointment["id"], at, RANK[status], fields)

    # queries

    async def query(self, caller: Caller | None, query: StatsQuery) -> Stats:
        require_hospital_staff(caller, query.hospital_id)
        if await self.catalog.hospital(query.hospital_id) is None:
            raise NotFound("医院不存在 / no such hospital")
        group = GROUP_FIELD[query.group_by]
        counts: dict[str, dict[str, int]] = {}
        for column, match in COUNTED.items():
            found = await self.store.count_appointments(
                query.hospital_id, query.from_, query.to, group, match
            )
            for key, n in found.items():
                row = counts.setdefault(key, {})
                row[column] = row.get(column, 0) + n
        capacity = {
            str(doc["_id"]): int(doc["capacity"])
            for doc in await self.store.sum_capacity(
                query.hospital_id, query.from_, query.to, group
            )
        }
        names = await self._names(query.group_by, set(counts) | set(capacity))
        items: list[StatsRow] = []
        for key in sorted(set(counts) | set(capacity)):
            row = counts.get(key, {})
            booked = row.get("booked", 0)
            cancelled = sum(v for k, v in row.items() if k.startswith("cancelled_by_"))
            completed = row.get("completed", 0)
            no_show = row.get("no_show", 0)
            cap = capacity.get(key, 0)
            items.append(
                StatsRow(
                    key=key,
                    name=names.get(key),
                    booked=booked,
                    cancelled_by_patient=row.get("cancelled_by_patient", 0),
                    cancelled_by_hospital=row.get("cancelled_by_hospital", 0),
                    cancelled_by_system=row.get("cancelled_by_system", 0),
                    no_show=no_show,
                    completed=completed,
                    capacity=cap,
                    utilization=ratio(booked - cancelled, cap),
                    no_show_rate=ratio(no_show, no_show + completed),
                )
            )
        return Stats(items=items)

    async def _names(self, group_by: str, keys: set[str]) -> dict[str, str]:
        if group_by == "doctor":
            return {k: d["name"] for k, d in (await self.catalog.doctors_by_id(keys)).items()}
        if group_by == "department":
            return {k: d["name"] for k, d in (await self.catalog.departments_by_id(keys)).items()}
        return {}

    # rebuild

    async def rebuild(self, hospital_id: str, booking: BookingRecords) -> tuple[int, int]:
        """Rebuild a hospital's rows from booking's appointments and the sessions' live
        capacities; events of changes made meanwhile still win (they are later than the
        rebuild's instant). Returns (appointments, slots)."""
        stamp = instant(self.clock())
        appointments = 0
        cursor: str | None = None
        while True:
            page = await booking.hospital_appointments(hospital_id, cursor)
            for item in page.items:
                if item.status not in RANK:
                    continue
                await self._set_appointment(
                    hospital_id,
                    {
                        "id": item.id,
                        "status": item.status,
                        "date": item.date.isoformat(),
                        "doctor_id": item.doctor.id,
                        "department_id": item.department.id,
                        "cancelled_by": item.cancelled_by,
                    },
                    stamp,
                )
                appointments += 1
            if not page.next:
                break
            cursor = page.next
        schedules = await self.catalog.find_schedules(
            date_from=dt.date(2000, 1, 1), date_to=dt.date(2100, 1, 1), hospital_id=hospital_id
        )
        slots = 0
        for i in range(0, len(schedules), AVAILABILITY_BATCH):
            batch = schedules[i : i + AVAILABILITY_BATCH]
            seen = {
                item.schedule_id: item
                for item in (await booking.availability([doc["_id"] for doc in batch])).items
            }
            for doc in batch:
                state = seen.get(doc["_id"])
                live = {slot.id: slot.capacity for slot in state.slots} if state else {}
                for slot in doc["slots"]:
                    await self.store.set_slot(
                        slot["id"],
                        {
                            "hospital_id": hospital_id,
                            "schedule_id": doc["_id"],
                            "date": doc["date"],
                            "doctor_id": doc["doctor_id"],
                            "department_id": doc["department_id"],
                            "stopped": bool(state and state.stopped),
                        },
                        live.get(slot["id"], slot["capacity"]),
                        stamp,
                    )
                    slots += 1
        await self.store.drop_older(hospital_id, stamp)
        log.info(
            "statistics rebuilt",
            extra={"hospital_id": hospital_id, "appointments": appointments, "slots": slots},
        )
        return appointments, slots


async def _rebuild_command(hospital_id: str) -> None:
    from services.catalog.app import BookingClient, utcnow
    from shared.logs import configure_logging
    from shared.messaging.rpc import RpcClient
    from shared.runtime import connect_broker_with_retry
    from shared.settings import Settings
    from shared.storage.mongo import connect_mongo, service_database

    settings = Settings.from_env()
    configure_logging("catalog-stats", settings.log_level, settings.log_format)
    broker = await connect_broker_with_retry(settings.broker_urls, name="catalog-stats")
    mongo = connect_mongo(settings, app_name="catalog-stats")
    try:
        db = service_database(mongo, settings, "catalog")
        store = StatsRepository(db)
        await store.ensure_indexes()
        service = StatsService(store, CatalogRepository(db), utcnow)
        client = BookingClient(RpcClient(broker, default_timeout=settings.rpc_timeout))
        appointments, slots = await service.rebuild(hospital_id, client)
        print(f"rebuilt statistics of {hospital_id}: {appointments} appointments, {slots} slots")
    finally:
        await broker.close()
        await mongo.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "rebuild":
        print("usage: python -m services.catalog.stats rebuild <hospital_id>", file=sys.stderr)
        return 2
    asyncio.run(_rebuild_command(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
