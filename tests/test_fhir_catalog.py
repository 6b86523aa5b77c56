"""The catalog's FHIR service on a real store (nx-27017 or MONGO_URL) with a stub booking
inventory and a fixed clock (2026-12-01 09:00 hospital-local): reads, Slot and Schedule
searches (actor, start/date ranges, status, active, paging), what is not published, and the
pages of the SMART Scheduling Links bulk files. Every Bundle and resource is checked against
the official FHIR R4 JSON schema."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest
from pymongo.asynchronous.database import AsyncDatabase

import services.catalog.fhir as catalog_fhir
from services.catalog.demo import DEMO_HOSPITAL_ID, seed_demo
from services.catalog.fhir import FhirCatalog
from shared.contracts.booking import ScheduleAvailability, SlotAvailability
from shared.contracts.catalog import (
    BookingRules,
    DepartmentCreateParams,
    DoctorCreateParams,
    DoctorPatchParams,
    HospitalCreate,
    Schedule,
    ScheduleCreateParams,
    SlotSpec,
)
from shared.contracts.fhir import (
    SLOT_CAPACITY,
    FhirBulkPage,
    FhirRead,
    FhirSearch,
    FhirSlot,
    fhir_id,
)
from shared.errors import BadRequest, NotFound, ServiceUnavailable
from shared.storage.mongo import Document
from tests.catalog_kit import (
    PLATFORM_ADMIN,
    CatalogKit,
    World,
    add_world,
    am_session,
    build_catalog,
    day,
    hospital_admin,
)
from tests.test_fhir_schema import assert_fhir_valid

BASE = "https://guahao.example/fhir"
APPID = "wx_fhir_test"


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> CatalogKit:
    return await build_catalog(mongo_db)


@pytest.fixture
async def world(kit: CatalogKit) -> World:
    return await add_world(kit)


@pytest.fixture
def fhir(kit: CatalogKit) -> FhirCatalog:
    return FhirCatalog(kit.service, APPID)


async def publish(kit: CatalogKit, world: World, date: dt.date, **options: Any) -> Schedule:
    return await kit.service.create_schedule(world.admin, am_session(world, date, **options))


def remaining(kit: CatalogKit, schedule: Schedule, *left: int, stopped: bool = False) -> None:
    """What booking says is left of each slice."""
    kit.booking.schedules[schedule.id] = ScheduleAvailability(
        schedule_id=schedule.id,
        stopped=stopped,
        slots=[
            SlotAvailability(id=s.id, capacity=s.capacity, remaining=n)
            for s, n in zip(schedule.slots, left, strict=True)
        ],
    )


async def search(fhir: FhirCatalog, resource_type: str, *pairs: tuple[str, str]) -> dict[str, Any]:
    bundle = await fhir.search(
        FhirSearch(
            resource_type=resource_type,  # type: ignore[arg-type]
            params=list(pairs),
            base_url=BASE,
        )
    )
    body: dict[str, Any] = bundle.model_dump(mode="json")
    assert_fhir_valid(body)
    return body


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle.get("entry", [])]


def capacity(slot: dict[str, Any]) -> int:
    return next(int(e["valueInteger"]) for e in slot["extension"] if e["url"] == SLOT_CAPACITY)


def practitioner(world: World) -> str:
    return f"Practitioner/{fhir_id(world.doctor_id)}"


# --- Slot search --------------------------------------------------------------------------


async def test_slots_of_a_doctor_in_a_start_range_are_one_per_slice_free_or_busy(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    booked = await publish(kit, world, day(1))
    await publish(kit, world, day(8))  # after the range
    remaining(kit, booked, 0, 2)
    bundle = await search(
        fhir,
        "Slot",
        ("schedule.actor", practitioner(world)),
        ("start", "ge2026-12-01"),
        ("start", "lt2026-12-08"),
    )
    slots = resources(bundle)
    assert bundle["total"] == 2
    assert [(s["id"], s["status"], capacity(s)) for s in slots] == [
        (fhir_id(booked.slots[0].id), "busy", 0),
        (fhir_id(booked.slots[1].id), "free", 2),
    ]
    assert [s["start"] for s in slots] == ["2026-12-02T08:00:00+08:00", "2026-12-02T08:30:00+08:00"]
    assert {s["schedule"]["reference"] for s in slots} == {f"Schedule/{fhir_id(booked.id)}"}
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"{BASE}/Slot/{s['id']}" for s in slots]


async def test_status_filters_slots_and_a_comma_means_any_of(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    schedule = await publish(kit, world, day(1))
    remaining(kit, schedule, 0, 2)
    actor = ("schedule.actor", practitioner(world))
    free = resources(await search(fhir, "Slot", actor, ("status", "free")))
    both = resources(await search(fhir, "Slot", actor, ("status", "free,busy")))
    assert [s["status"] for s in free] == ["free"]
    assert sorted(s["status"] for s in both) == ["busy", "free"]


async def test_a_stopped_session_has_busy_unavailable_slots_and_an_inactive_schedule(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    schedule = await publish(kit, world, day(2))
    remaining(kit, schedule, 3, 3, stopped=True)
    slots = resources(await search(fhir, "Slot", ("schedule", f"Schedule/{fhir_id(schedule.id)}")))
    assert {s["status"] for s in slots} == {"busy-unavailable"}
    assert {capacity(s) for s in slots} == {3}
    read = (await fhir.read("Schedule", fhir_id(schedule.id))).model_dump(mode="json")
    assert read["active"] is False
    inactive = await search(fhir, "Schedule", ("actor", practitioner(world)), ("active", "false"))
    assert [r["id"] for r in resources(inactive)] == [fhir_id(schedule.id)]


async def test_slices_that_already_started_today_are_closed(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    today = await kit.service.create_schedule(
        world.admin,
        ScheduleCreateParams(
            hospital_id=world.hospital_id,
            doctor_id=world.doctor_id,
            date=day(0),
            session="pm",
            slots=[
                SlotSpec(start="08:00", end="08:30", capacity=2),
                SlotSpec(start="14:00", end="14:30", capacity=2),
            ],
        ),
    )
    slots = resources(await search(fhir, "Slot", ("schedule", f"Schedule/{fhir_id(today.id)}")))
    # 09:00 now: the 08:00 slice has started; the 14:00 one is before the 16:30 stop
    assert [s["status"] for s in slots] == ["busy-unavailable", "free"]


async def test_a_slot_search_must_be_narrowed(fhir: FhirCatalog, world: World) -> None:
    with pytest.raises(BadRequest) as refused:
        await search(fhir, "Slot", ("status", "free"))
    assert refused.value.details["issue"] == "too-costly"


async def test_slots_of_a_hospital_are_found_through_its_location(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    await publish(kit, world, day(1))
    other = await add_world(kit, name="别的医院")
    await publish(kit, other, day(1))
    slots = resources(
        await search(
            fhir,
            "Slot",
            ("schedule.actor", f"Location/{fhir_id(world.hospital_id)}"),
            ("start", "2026-12-02"),
        )
    )
    assert len(slots) == 2
    owners = {cast(FhirSlot, await fhir.read("Slot", s["id"])).schedule.reference for s in slots}
    assert len(owners) == 1


async def test_a_slot_is_readable_by_its_id(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    schedule = await publish(kit, world, day(1))
    slot = (await fhir.read("Slot", fhir_id(schedule.slots[1].id))).model_dump(mode="json")
    assert slot["start"] == "2026-12-02T08:30:00+08:00"
    assert_fhir_valid(slot)
    with pytest.raises(NotFound):
        await fhir.read("Slot", "slot.nothing")


async def test_without_booking_numbers_a_slot_search_is_unavailable(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    await publish(kit, world, day(1))
    kit.booking.down = True
    with pytest.raises(ServiceUnavailable):
        await search(fhir, "Slot", ("schedule.actor", practitioner(world)))


# --- paging -------------------------------------------------------------------------------


async def test_a_page_links_to_the_next_one_and_the_total_counts_every_match(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    await publish(kit, world, day(1))
    await publish(kit, world, day(2))
    actor = ("schedule.actor", practitioner(world))
    first = await search(fhir, "Slot", actor, ("_count", "3"))
    assert first["total"] == 4 and len(first["entry"]) == 3
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["self"].startswith(f"{BASE}/Slot?schedule.actor=Practitioner%2F")
    assert links["next"].endswith("_count=3&_offset=3")
    second = await search(fhir, "Slot", actor, ("_count", "3"), ("_offset", "3"))
    assert len(second["entry"]) == 1 and "next" not in {x["relation"] for x in second["link"]}
    counted = await search(fhir, "Slot", actor, ("_summary", "count"))
    assert counted["total"] == 4 and "entry" not in counted


# --- Schedule, Practitioner, Location -----------------------------------------------------


async def test_schedules_of_a_doctor_are_searched_by_date_of_their_planning_horizon(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    first = await publish(kit, world, day(1))
    await publish(kit, world, day(3))
    found = await search(fhir, "Schedule", ("actor", practitioner(world)), ("date", "eq2026-12-02"))
    (schedule,) = resources(found)
    assert schedule["id"] == fhir_id(first.id)
    assert schedule["planningHorizon"] == {
        "start": "2026-12-02T08:00:00+08:00",
        "end": "2026-12-02T09:00:00+08:00",
    }
    assert schedule["actor"][0]["reference"] == practitioner(world)
    assert schedule["actor"][1]["reference"] == f"Location/{fhir_id(world.hospital_id)}"
    later = await search(fhir, "Schedule", ("actor", practitioner(world)), ("date", "gt2026-12-02"))
    assert [r["planningHorizon"]["start"][:10] for r in resources(later)] == ["2026-12-04"]


async def test_practitioners_are_found_by_id_and_by_name(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    doctor_id = fhir_id(world.doctor_id)
    by_id = await search(fhir, "Practitioner", ("_id", doctor_id))
    assert [r["id"] for r in resources(by_id)] == [doctor_id]
    assert (await search(fhir, "Practitioner", ("name", "张")))["total"] == 1
    assert (await search(fhir, "Practitioner", ("name", "三")))["total"] == 0
    assert (await search(fhir, "Practitioner", ("name:contains", "三")))["total"] == 1
    assert (await search(fhir, "Practitioner", ("name:exact", "张")))["total"] == 0
    read = (await fhir.read("Practitioner", doctor_id)).model_dump(mode="json")
    assert read["name"] == [{"use": "official", "text": "张三"}]
    assert_fhir_valid(read)


async def test_unpublished_doctors_and_their_sessions_are_not_published(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    await publish(kit, world, day(1))
    await kit.service.update_doctor(
        world.admin,
        DoctorPatchParams(
            hospital_id=world.hospital_id, doctor_id=world.doctor_id, published=False
        ),
    )
    with pytest.raises(NotFound):
        await fhir.read("Practitioner", fhir_id(world.doctor_id))
    assert (await search(fhir, "Slot", ("schedule.actor", practitioner(world))))["total"] == 0
    assert (await search(fhir, "Schedule", ("actor", practitioner(world))))["total"] == 0
    assert (await search(fhir, "Practitioner", ("name", "张")))["total"] == 0


async def test_hospitals_are_locations(kit: CatalogKit, world: World, fhir: FhirCatalog) -> None:
    location = (await fhir.read("Location", fhir_id(world.hospital_id))).model_dump(mode="json")
    assert location["name"] == "测试医院"
    assert_fhir_valid(location)
    named = await search(fhir, "Location", ("name", "测试"))
    assert [r["id"] for r in resources(named)] == [fhir_id(world.hospital_id)]


# --- bulk pages ---------------------------------------------------------------------------


async def all_pages(fhir: FhirCatalog, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        chunk = await fhir.bulk_page(
            FhirBulkPage(
                resource_type=kind,  # type: ignore[arg-type]
                cursor=cursor,
            )
        )
        found += chunk.resources
        cursor = chunk.next
        if cursor is None:
            return found
    raise AssertionError("bulk pages never ended")


async def test_bulk_files_hold_the_published_window_of_every_hospital(
    kit: CatalogKit, world: World, fhir: FhirCatalog
) -> None:
    inside = [await publish(kit, world, day(n)) for n in (0, 3, 7)]
    await publish(kit, world, day(8))  # beyond window_days = 7
    second = await add_world(kit, name="第二医院")
    inside.append(await publish(kit, second, day(1)))
    schedules = await all_pages(fhir, "Schedule")
    slots = await all_pages(fhir, "Slot")
    locations = await all_pages(fhir, "Location")
    assert sorted(s["id"] for s in schedules) == sorted(fhir_id(s.id) for s in inside)
    assert sorted(s["id"] for s in slots) == sorted(fhir_id(x.id) for s in inside for x in s.slots)
    assert sorted(x["id"] for x in locations) == sorted(
        fhir_id(h) for h in (world.hospital_id, second.hospital_id)
    )
    for resource in (*schedules, *slots, *locations):
        assert_fhir_valid(resource)


async def test_bulk_pages_continue_after_their_cursor_without_repeats(
    kit: CatalogKit, world: World, fhir: FhirCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_fhir, "BULK_PAGE_TARGET", 1)
    for n in range(4):
        await publish(kit, world, day(n))
    first = await fhir.bulk_page(FhirBulkPage(resource_type="Schedule"))
    assert len(first.resources) == 1 and first.next is not None
    ids = [r["id"] for r in await all_pages(fhir, "Schedule")]
    assert len(ids) == len(set(ids)) == 4
    with pytest.raises(BadRequest):
        await fhir.bulk_page(FhirBulkPage(resource_type="Slot", cursor="h_1|not-a-date"))


async def test_a_hospital_with_a_shorter_window_publishes_fewer_days(
    kit: CatalogKit, fhir: FhirCatalog
) -> None:
    hospital = await kit.service.create_hospital(
        PLATFORM_ADMIN, HospitalCreate(name="短窗口医院", rules=BookingRules(window_days=1))
    )
    world = await staffed(kit, hospital.id)
    await publish(kit, world, day(1))
    await publish(kit, world, day(2))
    assert [s["planningHorizon"]["start"][:10] for s in await all_pages(fhir, "Schedule")] == [
        "2026-12-02"
    ]


async def staffed(kit: CatalogKit, hospital_id: str) -> World:
    """An admin, a department and a published doctor for an existing hospital."""
    admin = hospital_admin(hospital_id)
    dep = await kit.service.create_department(
        admin, DepartmentCreateParams(hospital_id=hospital_id, name="全科")
    )
    doctor = await kit.service.create_doctor(
        admin,
        DoctorCreateParams(
            hospital_id=hospital_id,
            name="李四",
            title="主治医师",
            department_id=dep.id,
            fee_cents=1000,
            published=True,
        ),
    )
    return World(hospital_id, admin, dep.id, dep.id, doctor.id)


async def test_the_demo_hospital_publishes_valid_bulk_files(
    kit: CatalogKit, fhir: FhirCatalog
) -> None:
    from tests.scheduling_kit import build_scheduler

    await seed_demo(kit.service, build_scheduler(kit))
    (location,) = await all_pages(fhir, "Location")
    assert location["id"] == fhir_id(DEMO_HOSPITAL_ID)
    assert location["address"]["city"] == "北京市"
    schedules = await all_pages(fhir, "Schedule")
    slots = await all_pages(fhir, "Slot")
    assert schedules and len(slots) > len(schedules)
    assert {s["status"] for s in slots} <= {"free", "busy", "busy-unavailable"}
    for resource in (location, *schedules, *slots):
        assert_fhir_valid(resource)


def test_read_params_accept_only_fhir_ids() -> None:
    with pytest.raises(ValueError):
        FhirRead(resource_type="Slot", id="slot_1")
