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
    seed_demo,
    seed_demo_once,
)
from services.catalog.scheduling import Scheduler
from shared.contracts.catalog import DoctorQuery, ScheduleQuery
from shared.storage.lease import Lease
from shared.storage.mongo import Document
from tests.catalog_kit import TODAY, CatalogKit, build_catalog, day
from tests.scheduling_kit import build_scheduler

COLLECTIONS = ("hospitals", "departments", "doctors", "schedules", "doctor_templates")
# the window 2026-12-01 (Tue) … 12-08 (Tue), ISO weeks 49 (odd) and 50 (even), per doctor:
# 1: am+pm every day; 2: am Mon–Fri (6), pm Tue/Thu (3), evening Wed (1); 3: am Wed/Fri of
# week 49, am Tue of week 50, the 特需 pm of Monday 12-07; 4: am+pm Mon–Sat
WINDOW = 8


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> CatalogKit:
    return await build_catalog(mongo_db)


@pytest.fixture
def scheduler(kit: CatalogKit) -> Scheduler:
    return build_scheduler(kit)


async def counts(kit: CatalogKit) -> dict[str, int]:
    return {name: await kit.db[name].count_documents({}) for name in COLLECTIONS}


def seeding_lease(kit: CatalogKit, owner: str) -> Lease:
    return demo_lease(kit.db, owner)


async def test_demo_seed_creates_the_hospital_tree_doctors_and_a_week_of_sessions(
    kit: CatalogKit, scheduler: Scheduler
) -> None:
    report = await seed_demo(kit.service, scheduler)
    sessions = [doc async for doc in kit.db["schedules"].find({})]
    assert report == SeedReport(hospitals=1, departments=6, doctors=4, schedules=len(sessions))
    per_doctor = {d.id: sum(1 for s in sessions if s["doctor_id"] == d.id) for d in DOCTORS}
    assert per_doctor == {
        "doc_demo_1": 2 * WINDOW,
        "doc_demo_2": 6 + 3 + 1,
        "doc_demo_3": 4,
        "doc_demo_4": 2 * 7,
    }
    assert {s["clinic_type"] for s in sessions} == {"general", "expert", "special"}
    assert all("template_id" in s for s in sessions)
    hospital = await kit.service.get_hospital(DEMO_HOSPITAL_ID)
    assert hospital.name == "协和示范医院 (Demo)"
    tree = await kit.service.list_departments(DEMO_HOSPITAL_ID)
    assert {d.name: sorted(c.name for c in d.children) for d in tree.items} == {
        "内科": ["心血管内科", "消化内科"],
        "外科": ["普通外科", "骨科"],
    }
    doctors = await kit.service.list_doctors(DoctorQuery(hospital_id=DEMO_HOSPITAL_ID))
    assert len(doctors.items) == 4
    assert {d.title for d in doctors.items} == {"主任医师", "副主任医师", "主治医师"}
    assert all(d.fee_cents > 0 for d in doctors.items)
    schedules = await kit.service.doctor_schedules(ScheduleQuery(doctor_id=DOCTORS[0].id))
    assert [s.date for s in schedules.items][::2] == [day(i) for i in range(WINDOW)]
    am, pm = schedules.items[2], schedules.items[3]
    assert (am.slots[0].start, am.slots[-1].end, len(am.slots)) == ("08:00", "11:30", 7)
    assert (pm.slots[0].start, pm.slots[-1].end, len(pm.slots)) == ("13:30", "16:30", 6)
    assert {s.capacity for s in am.slots + pm.slots} == {3}


async def test_seeding_again_creates_nothing(kit: CatalogKit, scheduler: Scheduler) -> None:
    await seed_demo(kit.service, scheduler)
    first = await counts(kit)
    assert await seed_demo(kit.service, scheduler) == SeedReport()
    assert await counts(kit) == first


async def test_on_a_later_day_the_generation_job_adds_only_the_new_dates(
    kit: CatalogKit, scheduler: Scheduler
) -> None:
    await seed_demo(kit.service, scheduler)
    before = await kit.db["schedules"].count_documents({})
    kit.clock.now += dt.timedelta(days=2)
    await scheduler.generation_pass()
    added = await kit.db["schedules"].count_documents({}) - before
    # Wed 12-09 and Thu 12-10: doctor 1 am+pm, 2 am+evening / am+pm, 3 nothing (even
    # week: Tue/Thu → Thu), 4 am+pm
    assert added == 2 * 2 + 2 + 2 + 1 + 2 * 2
    assert await kit.db["schedules"].count_documents({"date": day(8).isoformat()}) == 2 + 2 + 2


async def test_seeded_sessions_are_announced_by_the_relay(
    kit: CatalogKit, scheduler: Scheduler
) -> None:
    await seed_demo(kit.service, scheduler)
    await kit.relay.sweep(everything=True)  # whatever was not flushed at once (doctors)
    count = await kit.db["schedules"].count_documents({})
    sessions = [e for e in kit.events if e.type == "schedule.published"]
    assert len(sessions) == count
    assert len([e for e in kit.events if e.type == "doctor.updated"]) == 4
    assert {e.hospital_id for e in sessions} == {DEMO_HOSPITAL_ID}
    assert min(e.data["schedule"]["date"] for e in sessions) == TODAY.isoformat()


async def test_only_the_lease_holder_seeds(kit: CatalogKit, scheduler: Scheduler) -> None:
    other = seeding_lease(kit, "replica-b")
    assert await other.acquire() is not None
    assert await seed_demo_once(kit.service, scheduler, seeding_lease(kit, "replica-a")) is None
    assert await kit.db["hospitals"].count_documents({}) == 0
    await other.release()
    report = await seed_demo_once(kit.service, scheduler, seeding_lease(kit, "replica-a"))
    assert report is not None and report.hospitals == 1
    # the lease is given back at once, so the next seeding replica need not wait for expiry
    assert await seed_demo_once(kit.service, scheduler, other) == SeedReport()
