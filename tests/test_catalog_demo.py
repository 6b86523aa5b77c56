"""The demo seed: complete on first run, idempotent after, and rolling forward by day."""

from __future__ import annotations

import datetime as dt

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.catalog.app import demo_lease
from services.catalog.demo import (
    DEMO_HOSPITAL_ID,
    DOCTORS,
    SeedReport,
    schedule_id,
    seed_demo,
    seed_demo_once,
)
from shared.contracts.catalog import DoctorQuery, ScheduleQuery
from shared.storage.lease import Lease
from shared.storage.mongo import Document
from tests.catalog_kit import TODAY, CatalogKit, build_catalog, day

COLLECTIONS = ("hospitals", "departments", "doctors", "schedules")


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> CatalogKit:
    return await build_catalog(mongo_db)


async def counts(kit: CatalogKit) -> dict[str, int]:
    return {name: await kit.db[name].count_documents({}) for name in COLLECTIONS}


def seeding_lease(kit: CatalogKit, owner: str) -> Lease:
    return demo_lease(kit.db, owner)


async def test_demo_seed_creates_the_hospital_tree_doctors_and_a_week_of_sessions(
    kit: CatalogKit,
) -> None:
    report = await seed_demo(kit.service)
    assert report == SeedReport(hospitals=1, departments=6, doctors=4, schedules=4 * 7 * 2)
    hospital = await kit.service.get_hospital(DEMO_HOSPITAL_ID)
    assert hospital.name == "协和示范医院 (Demo)"
    tree = await kit.service.list_departments(DEMO_HOSPITAL_ID)
    assert {d.name: sorted(c.name for c in d.children) for d in tree.items} == {
        "内科": ["心血管内科", "消化内科"], "外科": ["普通外科", "骨科"]}
    doctors = await kit.service.list_doctors(DoctorQuery(hospital_id=DEMO_HOSPITAL_ID))
    assert len(doctors.items) == 4
    assert {d.title for d in doctors.items} == {"主任医师", "副主任医师", "主治医师"}
    assert all(d.fee_cents > 0 for d in doctors.items)
    schedules = await kit.service.doctor_schedules(ScheduleQuery(doctor_id=DOCTORS[0].id))
    assert [s.date for s in schedules.items][::2] == [day(i) for i in range(7)]
    am, pm = schedules.items[2], schedules.items[3]
    assert (am.slots[0].start, am.slots[-1].end, len(am.slots)) == ("08:00", "11:30", 7)
    assert (pm.slots[0].start, pm.slots[-1].end, len(pm.slots)) == ("13:30", "16:30", 6)
    assert {s.capacity for s in am.slots + pm.slots} == {3}
    assert am.id == schedule_id(DOCTORS[0].id, day(1), "am")


async def test_seeding_again_creates_nothing(kit: CatalogKit) -> None:
    await seed_demo(kit.service)
    first = await counts(kit)
    assert await seed_demo(kit.service) == SeedReport()
    assert await counts(kit) == first


async def test_seeding_on_a_later_day_adds_only_the_new_dates(kit: CatalogKit) -> None:
    await seed_demo(kit.service)
    kit.clock.now += dt.timedelta(days=2)
    report = await seed_demo(kit.service)
    assert report == SeedReport(schedules=4 * 2 * 2)
    assert await kit.db["schedules"].count_documents({}) == 4 * 9 * 2
    assert await kit.db["schedules"].count_documents({"date": day(8).isoformat()}) == 8


async def test_seeded_sessions_are_announced_by_the_relay(kit: CatalogKit) -> None:
    await seed_demo(kit.service)
    assert kit.events == []  # left for the relay: it runs once the service is up
    published = await kit.relay.sweep()
    assert published == 4 + 4 * 7 * 2
    sessions = [e for e in kit.events if e.type == "schedule.published"]
    assert {e.hospital_id for e in sessions} == {DEMO_HOSPITAL_ID}
    assert min(e.data["schedule"]["date"] for e in sessions) == TODAY.isoformat()


async def test_only_the_lease_holder_seeds(kit: CatalogKit) -> None:
    other = seeding_lease(kit, "replica-b")
    assert await other.acquire() is not None
    assert await seed_demo_once(kit.service, seeding_lease(kit, "replica-a")) is None
    assert await kit.db["hospitals"].count_documents({}) == 0
    await other.release()
    report = await seed_demo_once(kit.service, seeding_lease(kit, "replica-a"))
    assert report is not None and report.hospitals == 1
    # the lease is given back at once, so the next seeding replica need not wait for expiry
    assert await seed_demo_once(kit.service, other) == SeedReport()
