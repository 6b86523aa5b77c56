"""Statistics: the projection of booking's events equals a direct count of the appointments
after a randomized run of bookings, cancellations, 停诊, 加号, check-ins and no-shows — with
events delivered out of order and twice — and again after a rebuild from booking's records."""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections import defaultdict
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.catalog.repository import CatalogRepository
from services.catalog.service import Clock
from services.catalog.stats import StatsRepository, StatsService, ratio
from shared.contracts.booking import (
    AppointmentList,
    Availability,
    BookParams,
    HospitalAppointmentFilter,
)
from shared.contracts.catalog import BookingRules, ScheduleDefinition
from shared.contracts.scheduling import StatsQuery
from shared.errors import DomainError, NotFound
from shared.messaging.events import EventEnvelope, new_event
from shared.storage.mongo import Document
from tests.booking_kit import Kit, local
from tests.catalog_kit import PLATFORM_ADMIN, hospital_admin

DAYS = [dt.date(2026, 12, 2) + dt.timedelta(days=i) for i in range(7)]
DOCTORS = {"doc_a": "dep_heart", "doc_b": "dep_heart", "doc_c": "dep_bone"}
OPERATIONS = 500


@pytest.fixture(autouse=True)
def every_log_line_is_built(caplog: pytest.LogCaptureFixture) -> None:
    """Log records are really made (a reserved `extra` key fails only then)."""
    caplog.set_level(logging.DEBUG, logger="guahao")


class BookingRecords:
    """The booking service's own answers, as the rebuild gets them over RPC."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    async def hospital_appointments(self, hospital_id: str, cursor: str | None) -> AppointmentList:
        return await self.kit.queries.list_for_hospital(
            hospital_id, HospitalAppointmentFilter(cursor=cursor, limit=200)
        )

    async def availability(self, schedule_ids: list[str]) -> Availability:
        return await self.kit.admin.availability(schedule_ids)


async def run_hospital_day(kit: Kit, rng: random.Random) -> tuple[list[ScheduleDefinition], int]:
    """A randomized week of one hospital; returns its sessions and how many operations
    changed something."""
    schedules = [
        kit.schedule(
            date,
            doctor=doctor,
            department=department,
            capacity=6,
            starts=("08:00", "08:30", "09:00", "09:30"),
        )
        for date in DAYS
        for doctor, department in DOCTORS.items()
    ]
    slots = [slot.id for s in schedules for slot in s.slots]
    booked: list[tuple[str, str]] = []  # (user, appointment id)
    done = 0

    async def attempt(op: Any) -> None:
        nonlocal done
        kit.clock.advance(seconds=rng.randint(1, 30))
        try:
            await op
            done += 1
        except DomainError:
            pass

    async def book() -> None:
        user = f"u_{uuid.uuid4().hex[:8]}"
        patient = kit.patients.add(user)
        appointment, _ = await kit.booker.book(
            user,
            BookParams(
                slot_id=rng.choice(slots), patient_id=patient, idempotency_key=uuid.uuid4().hex
            ),
        )
        booked.append((user, appointment.id))

    kit.clock.now = local(2026, 12, 1, 9, 0)
    for i in range(320):
        await attempt(book())
        if i % 5 == 4 and booked:
            user, aid = rng.choice(booked)
            await attempt(kit.lifecycle.cancel_by_patient(user, aid))
        if i % 17 == 16 and booked:
            _, aid = rng.choice(booked)
            await attempt(kit.lifecycle.cancel_by_hospital(kit.hospital_id, aid, "医生调班"))
    await attempt(kit.admin.stop(kit.hospital_id, schedules[4].id, "医生出差"))
    await attempt(kit.admin.change_capacity(kit.hospital_id, schedules[7].slots[0].id, 3))
    await attempt(kit.admin.change_capacity(kit.hospital_id, schedules[9].slots[3].id, -2))
    for date in DAYS:
        appointments = [
            doc
            async for doc in kit.appointments.collection.find(
                {"date": date.isoformat(), "status": "booked"}
            )
        ]
        kit.clock.now = local(date.year, date.month, date.day, 7, 30)
        for doc in appointments:
            if rng.random() < 0.55:
                await attempt(kit.lifecycle.check_in(kit.hospital_id, doc["_id"]))
        kit.clock.now = local(date.year, date.month, date.day, 12, 0)
        for doc in appointments:
            if rng.random() < 0.5:
                await attempt(kit.lifecycle.mark_no_show(kit.hospital_id, doc["_id"]))
    await kit.relay.sweep(everything=True)
    return schedules, done


async def direct_count(kit: Kit, group_by: str) -> dict[str, dict[str, Any]]:
    """The numbers counted straight from booking's appointments and inventory."""
    field = {"day": "date", "doctor": "doctor_id", "department": "department_id"}[group_by]
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    async for doc in kit.appointments.collection.find(
        {"status": {"$in": ["booked", "checked_in", "completed", "cancelled", "no_show"]}}
    ):
        row = rows[doc[field]]
        row["booked"] += 1
        status = doc["status"]
        if status == "cancelled":
            row[f"cancelled_by_{doc['cancelled_by']}"] += 1
        elif status in ("checked_in", "completed"):
            row["completed"] += 1
        elif status == "no_show":
            row["no_show"] += 1
    async for session in kit.sessions.collection.find({"stopped": False}):
        for stock in session["slots"].values():
            rows[session[field]]["capacity"] += stock["capacity"]
    result: dict[str, dict[str, Any]] = {}
    for key, row in rows.items():
        cancelled = sum(v for k, v in row.items() if k.startswith("cancelled_by_"))
        result[key] = {
            "booked": row["booked"],
            "cancelled_by_patient": row["cancelled_by_patient"],
            "cancelled_by_hospital": row["cancelled_by_hospital"],
            "cancelled_by_system": row["cancelled_by_system"],
            "no_show": row["no_show"],
            "completed": row["completed"],
            "capacity": row["capacity"],
            "utilization": ratio(row["booked"] - cancelled, row["capacity"]),
            "no_show_rate": ratio(row["no_show"], row["no_show"] + row["completed"]),
        }
    return result


async def projected(
    stats: StatsService, hospital_id: str, group_by: str
) -> dict[str, dict[str, Any]]:
    reply = await stats.query(
        hospital_admin(hospital_id),
        StatsQuery.model_validate(
            {
                "hospital_id": hospital_id,
                "from": "2026-11-01",
                "to": "2026-12-31",
                "group_by": group_by,
            }
        ),
    )
    return {item.key: item.model_dump(exclude={"key", "name"}) for item in reply.items}


async def test_statistics_equal_a_direct_count_after_a_randomized_week_and_a_rebuild(
    mongo_db: AsyncDatabase[Document], other_db: AsyncDatabase[Document]
) -> None:
    rng = random.Random(14)
    kit = await Kit(mongo_db, local(2026, 12, 1, 9, 0), BookingRules(max_active=50)).setup()
    schedules, done = await run_hospital_day(kit, rng)
    assert done >= OPERATIONS

    catalog = CatalogRepository(other_db)
    await catalog.ensure_indexes()
    await catalog.insert_hospital({"_id": kit.hospital_id, "name": "统计医院", "version": 1})
    for schedule in schedules:  # the catalog's own record of the sessions
        await catalog.insert_schedule(
            {
                "_id": schedule.id,
                "hospital_id": kit.hospital_id,
                "doctor_id": schedule.doctor.id,
                "department_id": schedule.department.id,
                "date": schedule.date.isoformat(),
                "session": schedule.session,
                "fee_cents": schedule.fee_cents,
                "slots": [slot.model_dump() for slot in schedule.slots],
            }
        )
    store = StatsRepository(other_db)
    await store.ensure_indexes()
    stats = StatsService(store, catalog, kit.clock)

    published = [
        new_event(
            "schedule.published",
            kit.hospital_id,
            {"schedule": s.model_dump(mode="json")},
            at=local(2026, 11, 30),
        )
        for s in schedules
    ]
    events: list[EventEnvelope] = published + kit.publisher.events
    types = {e.type for e in events}
    assert {
        "appointment.booked",
        "appointment.cancelled",
        "appointment.checked_in",
        "appointment.no_show",
        "schedule.stopped",
        "schedule.capacity_changed",
    } <= types
    delivery = events + rng.sample(events, len(events) // 5)  # at least once: duplicates
    rng.shuffle(delivery)  # and out of order
    for event in delivery:
        await stats.on_event(event)

    for group_by in ("day", "doctor", "department"):
        assert await projected(stats, kit.hospital_id, group_by) == await direct_count(
            kit, group_by
        ), group_by
    by_doctor = await stats.query(
        PLATFORM_ADMIN,
        StatsQuery.model_validate(
            {
                "hospital_id": kit.hospital_id,
                "from": "2026-12-02",
                "to": "2026-12-02",
                "group_by": "doctor",
            }
        ),
    )
    assert sorted(item.key for item in by_doctor.items) == sorted(DOCTORS)

    # rebuilt from scratch from booking's records: the same numbers
    for collection in ("stats_appointments", "stats_slots", "stats_schedules"):
        await other_db[collection].delete_many({})
    kit.clock.advance(minutes=5)
    await stats.rebuild(kit.hospital_id, BookingRecords(kit))
    for group_by in ("day", "doctor", "department"):
        assert await projected(stats, kit.hospital_id, group_by) == await direct_count(
            kit, group_by
        ), group_by

    # events still arriving after the rebuild (redelivered old ones) change nothing
    for event in rng.sample(events, 50):
        await stats.apply(event)
    assert await projected(stats, kit.hospital_id, "day") == await direct_count(kit, "day")


async def test_an_event_claimed_but_not_applied_is_applied_on_redelivery(
    other_db: AsyncDatabase[Document],
) -> None:
    store = StatsRepository(other_db)
    await store.ensure_indexes()
    catalog = CatalogRepository(other_db)
    await catalog.insert_hospital({"_id": "h_s", "name": "x", "version": 1})
    clock: Clock = lambda: local(2026, 12, 1)  # noqa: E731
    stats = StatsService(store, catalog, clock)
    event = new_event(
        "appointment.booked",
        "h_s",
        {
            "appointment": {
                "id": "apt_1",
                "status": "booked",
                "date": "2026-12-02",
                "doctor_id": "doc_1",
                "department_id": "dep_1",
            }
        },
        at=local(2026, 12, 1),
    )
    assert await store.claim(event.id, clock())  # a crash right after the claim …
    await stats.on_event(event)  # … the redelivery applies it
    await stats.on_event(event)  # and a later one does not count it twice
    reply = await stats.query(
        PLATFORM_ADMIN,
        StatsQuery.model_validate({"hospital_id": "h_s", "from": "2026-12-02", "to": "2026-12-02"}),
    )
    assert [(i.key, i.booked) for i in reply.items] == [("2026-12-02", 1)]
    with pytest.raises(NotFound):
        await stats.query(
            hospital_admin("h_other"),
            StatsQuery.model_validate(
                {"hospital_id": "h_s", "from": "2026-12-02", "to": "2026-12-02"}
            ),
        )


async def test_statistics_group_by_one_plain_field_per_query(
    other_db: AsyncDatabase[Document],
) -> None:
    """Pins the nx-27017 gap the projection avoids: a compound `$group` key is answered
    with the literal expression there, so every count groups by one plain field."""
    store = StatsRepository(other_db)
    for i, (date, status) in enumerate(
        [("2026-12-02", "booked"), ("2026-12-02", "no_show"), ("2026-12-03", "booked")]
    ):
        await store.set_appointment(
            f"apt_{i}",
            "2026-12-01T08:00:00.000+08:00",
            1,
            {
                "hospital_id": "h_g",
                "date": date,
                "doctor_id": "doc_1",
                "department_id": "dep_1",
                "status": status,
            },
        )
    counted = await store.count_appointments(
        "h_g", dt.date(2026, 12, 1), dt.date(2026, 12, 31), "date", {"status": "booked"}
    )
    assert counted == {"2026-12-02": 1, "2026-12-03": 1}
    everything = await store.count_appointments(
        "h_g", dt.date(2026, 12, 1), dt.date(2026, 12, 31), "doctor_id", {}
    )
    assert everything == {"doc_1": 3}
