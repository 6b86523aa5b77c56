"""Catalog rules: the department tree, doctor publishing, schedule validation, the status a
patient sees, the next available date, hospital scoping and the events of every change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.context import Caller
from shared.contracts.base import parse_object
from shared.contracts.catalog import (
    AdminDoctorQuery,
    AdminScheduleQuery,
    BookingRules,
    DepartmentCreateParams,
    DoctorCreateParams,
    DoctorPatchParams,
    DoctorQuery,
    HospitalCreate,
    RulesPatchParams,
    SameDayStop,
    ScheduleCreateParams,
    ScheduleQuery,
    SlotSpec,
)
from shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from shared.storage.mongo import Document
from tests.catalog_kit import (
    PATIENT,
    PLATFORM_ADMIN,
    TODAY,
    CatalogKit,
    World,
    add_world,
    am_session,
    build_catalog,
    day,
    hospital_admin,
)


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> CatalogKit:
    return await build_catalog(mongo_db)


@pytest.fixture
async def world(kit: CatalogKit) -> World:
    return await add_world(kit)


# hospitals and departments


async def test_created_hospital_has_default_rules_and_is_listed(kit: CatalogKit) -> None:
    created = await kit.service.create_hospital(
        PLATFORM_ADMIN, HospitalCreate(name="北京协和", address="东城区", level="三甲")
    )
    assert created.id.startswith("h_") and created.rules == BookingRules()
    listed = await kit.service.list_hospitals()
    assert [(h.id, h.name, h.address, h.phone) for h in listed.items] == [
        (created.id, "北京协和", "东城区", None)
    ]
    stored = await kit.db["hospitals"].find_one({"_id": created.id})
    assert stored is not None and "phone" not in stored  # absent, never an explicit null
    assert (await kit.service.get_hospital(created.id)).rules.window_days == 7


async def test_only_the_platform_admin_creates_hospitals(kit: CatalogKit) -> None:
    with pytest.raises(Forbidden):
        await kit.service.create_hospital(hospital_admin("h_x"), HospitalCreate(name="x"))
    with pytest.raises(Forbidden):
        await kit.service.create_hospital(PATIENT, HospitalCreate(name="x"))
    with pytest.raises(Unauthenticated):
        await kit.service.create_hospital(None, HospitalCreate(name="x"))
    assert await kit.db["hospitals"].count_documents({}) == 0


async def test_departments_form_a_two_level_tree_sorted_by_name(
    kit: CatalogKit, world: World
) -> None:
    add = kit.service.create_department
    surgery = await add(
        world.admin, DepartmentCreateParams(hospital_id=world.hospital_id, name="外科")
    )
    await add(
        world.admin,
        DepartmentCreateParams(hospital_id=world.hospital_id, name="骨科", parent_id=surgery.id),
    )
    await add(
        world.admin,
        DepartmentCreateParams(
            hospital_id=world.hospital_id, name="消化内科", parent_id=world.department_id
        ),
    )
    tree = await kit.service.list_departments(world.hospital_id)
    assert [(d.name, [c.name for c in d.children]) for d in tree.items] == sorted(
        [("内科", sorted(["心血管内科", "消化内科"])), ("外科", ["骨科"])]
    )
    child = tree.items[0].children[0] if tree.items[0].name == "内科" else None
    assert child is not None and child.parent_id == world.department_id


async def test_a_third_department_level_is_refused(kit: CatalogKit, world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await kit.service.create_department(
            world.admin,
            DepartmentCreateParams(
                hospital_id=world.hospital_id, name="高血压门诊", parent_id=world.sub_department_id
            ),
        )
    assert "parent_id" in refused.value.details["fields"]
    assert await kit.db["departments"].count_documents({}) == 2


async def test_a_parent_department_of_another_hospital_is_refused(
    kit: CatalogKit, world: World
) -> None:
    other = await add_world(kit, "别的医院")
    with pytest.raises(ValidationFailed) as refused:
        await kit.service.create_department(
            world.admin,
            DepartmentCreateParams(
                hospital_id=world.hospital_id, name="儿科", parent_id=other.department_id
            ),
        )
    assert "parent_id" in refused.value.details["fields"]


async def test_a_sibling_department_with_the_same_name_is_a_conflict(
    kit: CatalogKit, world: World
) -> None:
    with pytest.raises(Conflict):
        await kit.service.create_department(
            world.admin, DepartmentCreateParams(hospital_id=world.hospital_id, name="内科")
        )
    # the same name under another parent is fine
    surgery = await kit.service.create_department(
        world.admin, DepartmentCreateParams(hospital_id=world.hospital_id, name="外科")
    )
    await kit.service.create_department(
        world.admin,
        DepartmentCreateParams(
            hospital_id=world.hospital_id, name="心血管内科", parent_id=surgery.id
        ),
    )


async def test_departments_of_an_unknown_hospital_are_not_found(kit: CatalogKit) -> None:
    with pytest.raises(NotFound):
        await kit.service.list_departments("h_nope")


# doctors


async def test_unpublished_doctor_is_hidden_until_published(kit: CatalogKit, world: World) -> None:
    hidden = await kit.service.create_doctor(
        world.admin,
        DoctorCreateParams(
            hospital_id=world.hospital_id,
            name="李四",
            title="主治医师",
            department_id=world.department_id,
            fee_cents=2000,
        ),
    )
    assert hidden.published is False
    listed = await kit.service.list_doctors(DoctorQuery(hospital_id=world.hospital_id))
    assert [d.id for d in listed.items] == [world.doctor_id]
    with pytest.raises(NotFound):
        await kit.service.get_doctor(hidden.id)
    with pytest.raises(NotFound):
        await kit.service.doctor_schedules(ScheduleQuery(doctor_id=hidden.id))
    admin_view = await kit.service.admin_doctors(
        world.admin, AdminDoctorQuery(hospital_id=world.hospital_id)
    )
    assert {d.id for d in admin_view.items} == {world.doctor_id, hidden.id}

    await kit.service.update_doctor(
        world.admin,
        DoctorPatchParams(hospital_id=world.hospital_id, doctor_id=hidden.id, published=True),
    )
    assert (await kit.service.get_doctor(hidden.id)).name == "李四"
    await kit.service.update_doctor(
        world.admin,
        DoctorPatchParams(
            hospital_id=world.hospital_id, doctor_id=world.doctor_id, published=False
        ),
    )
    listed = await kit.service.list_doctors(DoctorQuery(hospital_id=world.hospital_id))
    assert [d.id for d in listed.items] == [hidden.id]
    with pytest.raises(NotFound):
        await kit.service.get_doctor(world.doctor_id)


async def test_doctor_search_matches_name_or_specialty_literally(
    kit: CatalogKit, world: World
) -> None:
    async def found(q: str) -> list[str]:
        listed = await kit.service.list_doctors(DoctorQuery(hospital_id=world.hospital_id, q=q))
        return [d.name for d in listed.items]

    assert await found("张") == ["张三"]
    assert await found("血压") == ["张三"]
    assert await found("王") == []
    assert await found(".*") == []  # regex syntax is text, not a pattern


async def test_doctors_of_a_top_level_department_include_its_sub_departments(
    kit: CatalogKit, world: World
) -> None:
    by_top = await kit.service.list_doctors(DoctorQuery(department_id=world.department_id))
    by_sub = await kit.service.list_doctors(DoctorQuery(department_id=world.sub_department_id))
    assert [d.id for d in by_top.items] == [d.id for d in by_sub.items] == [world.doctor_id]
    other = await add_world(kit, "别的医院")
    mismatched = await kit.service.list_doctors(
        DoctorQuery(hospital_id=other.hospital_id, department_id=world.department_id)
    )
    assert mismatched.items == []


async def test_doctor_in_a_department_of_another_hospital_is_refused_and_not_stored(
    kit: CatalogKit, world: World
) -> None:
    other = await add_world(kit, "别的医院")
    with pytest.raises(ValidationFailed) as refused:
        await kit.service.create_doctor(
            world.admin,
            DoctorCreateParams(
                hospital_id=world.hospital_id,
                name="李四",
                title="主治医师",
                department_id=other.department_id,
                fee_cents=2000,
            ),
        )
    assert "department_id" in refused.value.details["fields"]
    assert await kit.db["doctors"].count_documents({"hospital_id": world.hospital_id}) == 1
    with pytest.raises(ValidationFailed):
        await kit.service.update_doctor(
            world.admin,
            DoctorPatchParams(
                hospital_id=world.hospital_id,
                doctor_id=world.doctor_id,
                department_id=other.department_id,
                name="改名",
            ),
        )
    assert (await kit.service.get_doctor(world.doctor_id)).name == "张三"


async def test_doctor_patch_changes_only_given_fields_and_null_clears_optional_ones(
    kit: CatalogKit, world: World
) -> None:
    patch = DoctorPatchParams.model_validate(
        {
            "hospital_id": world.hospital_id,
            "doctor_id": world.doctor_id,
            "fee_cents": 8000,
            "specialty": None,
        }
    )
    doctor = await kit.service.update_doctor(world.admin, patch)
    assert (doctor.fee_cents, doctor.specialty, doctor.name) == (8000, None, "张三")
    stored = await kit.db["doctors"].find_one({"_id": world.doctor_id})
    assert stored is not None and "specialty" not in stored
    with pytest.raises(ValidationFailed) as refused:
        await kit.service.update_doctor(
            world.admin,
            DoctorPatchParams.model_validate(
                {"hospital_id": world.hospital_id, "doctor_id": world.doctor_id, "name": None}
            ),
        )
    assert "name" in refused.value.details["fields"]


# schedules


async def test_schedule_fee_defaults_to_the_doctors_fee_and_every_slot_is_free(
    kit: CatalogKit, world: World
) -> None:
    schedule = await kit.service.create_schedule(world.admin, am_session(world, day(3)))
    assert schedule.id.startswith("sch_") and schedule.fee_cents == 5000
    assert schedule.status == "open" and schedule.date == day(3)
    assert [(s.start, s.end, s.capacity, s.remaining) for s in schedule.slots] == [
        ("08:00", "08:30", 3, 3),
        ("08:30", "09:00", 3, 3),
    ]
    assert all(s.id.startswith("slot_") for s in schedule.slots)
    own_fee = await kit.service.create_schedule(
        world.admin, am_session(world, day(4), fee_cents=1200)
    )
    assert own_fee.fee_cents == 1200
    stored = await kit.db["schedules"].find_one({"_id": schedule.id})
    assert stored is not None and stored["date"] == day(3).isoformat()


async def test_schedule_in_the_past_is_refused_and_today_is_accepted(
    kit: CatalogKit, world: World
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await kit.service.create_schedule(world.admin, am_session(world, day(-1)))
    assert "date" in refused.value.details["fields"]
    today = await kit.service.create_schedule(world.admin, am_session(world, TODAY))
    assert today.status == "closed"  # 09:00 now: both morning slices have begun


async def test_the_past_is_judged_on_the_hospital_clock(kit: CatalogKit, world: World) -> None:
    # 23:30 UTC on Nov 30 is already Dec 1 in Shanghai
    kit.clock.now = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)
    with pytest.raises(ValidationFailed):
        await kit.service.create_schedule(world.admin, am_session(world, dt.date(2026, 11, 30)))
    await kit.service.create_schedule(world.admin, am_session(world, dt.date(2026, 12, 1)))


async def test_overlapping_slots_are_refused_by_the_contract(world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_object(
            ScheduleCreateParams,
            {
                "hospital_id": world.hospital_id,
                "doctor_id": world.doctor_id,
                "date": day(2).isoformat(),
                "session": "am",
                "slots": [
                    {"start": "08:00", "end": "09:00", "capacity": 2},
                    {"start": "08:30", "end": "09:30", "capacity": 2},
                ],
            },
        )
    assert "slots" in refused.value.details["fields"]


async def test_second_schedule_for_the_same_doctor_date_and_session_is_a_conflict(
    kit: CatalogKit, world: World
) -> None:
    await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    with pytest.raises(Conflict):
        await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    pm = am_session(world, day(2)).model_copy(update={"session": "pm"})
    await kit.service.create_schedule(world.admin, pm)
    assert await kit.db["schedules"].count_documents({}) == 2


async def test_schedule_for_a_doctor_of_another_hospital_is_not_found(
    kit: CatalogKit, world: World
) -> None:
    other = await add_world(kit, "别的医院")
    with pytest.raises(NotFound):
        await kit.service.create_schedule(
            world.admin, am_session(world, day(2), doctor_id=other.doctor_id)
        )
    with pytest.raises(NotFound):
        await kit.service.create_schedule(
            world.admin, am_session(world, day(2), doctor_id="doc_nope")
        )
    assert await kit.db["schedules"].count_documents({}) == 0


async def test_schedule_status_follows_the_clock_and_booking_availability(
    kit: CatalogKit, world: World
) -> None:
    create = kit.service.create_schedule
    closed = await create(world.admin, am_session(world, TODAY))
    full = await create(world.admin, am_session(world, day(2)))
    stopped = await create(world.admin, am_session(world, day(3)))
    open_ = await create(world.admin, am_session(world, day(7)))
    not_released = await create(world.admin, am_session(world, day(8)))
    kit.booking.set_remaining(full, 0)
    kit.booking.set_remaining(stopped, 2, stopped=True)
    kit.booking.set_remaining(open_, 1)

    listed = await kit.service.doctor_schedules(
        ScheduleQuery.model_validate({"doctor_id": world.doctor_id, "to": day(8)})
    )
    status = {s.id: s.status for s in listed.items}
    assert status == {
        closed.id: "closed",
        full.id: "full",
        stopped.id: "stopped",
        open_.id: "open",
        not_released.id: "not_released",
    }
    by_id = {s.id: s for s in listed.items}
    assert [s.remaining for s in by_id[open_.id].slots] == [1, 1]
    assert by_id[not_released.id].release_at == "2026-12-02T08:00:00+08:00"

    kit.clock.set_local(day(1), "08:00")  # day 8 is released on day 1 at 08:00
    again = await kit.service.doctor_schedules(
        ScheduleQuery.model_validate({"doctor_id": world.doctor_id, "to": day(8)})
    )
    assert {s.id: s.status for s in again.items}[not_released.id] == "open"


async def test_a_schedule_full_in_some_slices_is_open_while_one_is_left(
    kit: CatalogKit, world: World
) -> None:
    schedule = await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    kit.booking.set_remaining(schedule, 0)
    kit.booking.schedules[schedule.id].slots[1].remaining = 1
    listed = await kit.service.doctor_schedules(ScheduleQuery(doctor_id=world.doctor_id))
    assert listed.items[0].status == "open"
    assert [s.remaining for s in listed.items[0].slots] == [0, 1]


async def test_schedules_default_to_the_booking_window_in_date_and_session_order(
    kit: CatalogKit, world: World
) -> None:
    for date in (day(7), day(1), day(8)):
        await kit.service.create_schedule(world.admin, am_session(world, date))
    pm = am_session(world, day(1)).model_copy(update={"session": "pm"})
    await kit.service.create_schedule(world.admin, pm)
    evening = am_session(world, day(1)).model_copy(update={"session": "evening"})
    await kit.service.create_schedule(world.admin, evening)
    listed = await kit.service.doctor_schedules(ScheduleQuery(doctor_id=world.doctor_id))
    assert [(s.date, s.session) for s in listed.items] == [
        (day(1), "am"),
        (day(1), "pm"),
        (day(1), "evening"),
        (day(7), "am"),
    ]
    ranged = await kit.service.doctor_schedules(
        ScheduleQuery.model_validate(
            {"doctor_id": world.doctor_id, "from": day(8).isoformat(), "to": day(8).isoformat()}
        )
    )
    assert [s.date for s in ranged.items] == [day(8)]
    with pytest.raises(ValidationFailed):
        await kit.service.doctor_schedules(
            ScheduleQuery.model_validate(
                {"doctor_id": world.doctor_id, "from": day(3), "to": day(2)}
            )
        )


async def test_a_schedule_booking_does_not_know_yet_shows_its_full_capacity(
    kit: CatalogKit, world: World
) -> None:
    await kit.service.create_schedule(world.admin, am_session(world, day(2), capacity=4))
    listed = await kit.service.doctor_schedules(ScheduleQuery(doctor_id=world.doctor_id))
    assert [(s.capacity, s.remaining) for s in listed.items[0].slots] == [(4, 4), (4, 4)]
    assert listed.items[0].status == "open"


async def test_schedules_are_unavailable_rather_than_guessed_when_booking_is_down(
    kit: CatalogKit, world: World
) -> None:
    await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    kit.booking.down = True
    with pytest.raises(ServiceUnavailable):
        await kit.service.doctor_schedules(ScheduleQuery(doctor_id=world.doctor_id))
    with pytest.raises(ServiceUnavailable):
        await kit.service.admin_schedules(
            world.admin, AdminScheduleQuery(hospital_id=world.hospital_id)
        )


async def test_no_schedules_means_no_call_to_booking(kit: CatalogKit, world: World) -> None:
    kit.booking.down = True
    listed = await kit.service.doctor_schedules(ScheduleQuery(doctor_id=world.doctor_id))
    assert listed.items == [] and kit.booking.calls == []


async def test_admin_schedules_filter_by_date_and_doctor(kit: CatalogKit, world: World) -> None:
    second = await kit.service.create_doctor(
        world.admin,
        DoctorCreateParams(
            hospital_id=world.hospital_id,
            name="李四",
            title="主治医师",
            department_id=world.department_id,
            fee_cents=2000,
        ),
    )
    await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    await kit.service.create_schedule(world.admin, am_session(world, day(3)))
    await kit.service.create_schedule(world.admin, am_session(world, day(2), doctor_id=second.id))
    every = await kit.service.admin_schedules(
        world.admin, AdminScheduleQuery(hospital_id=world.hospital_id)
    )
    assert len(every.items) == 3
    on_day = await kit.service.admin_schedules(
        world.admin, AdminScheduleQuery(hospital_id=world.hospital_id, date=day(2))
    )
    assert {s.doctor_id for s in on_day.items} == {world.doctor_id, second.id}
    mine = await kit.service.admin_schedules(
        world.admin,
        AdminScheduleQuery(hospital_id=world.hospital_id, date=day(2), doctor_id=second.id),
    )
    assert [s.doctor_id for s in mine.items] == [second.id]


# next available date


async def test_next_available_date_is_the_earliest_open_date_within_the_window(
    kit: CatalogKit, world: World
) -> None:
    create = kit.service.create_schedule
    await create(world.admin, am_session(world, TODAY))  # closed at 09:00
    full = await create(world.admin, am_session(world, day(1)))
    stopped = await create(world.admin, am_session(world, day(2)))
    await create(world.admin, am_session(world, day(4)))
    kit.booking.set_remaining(full, 0)
    kit.booking.set_remaining(stopped, 3, stopped=True)
    listed = await kit.service.list_doctors(DoctorQuery(hospital_id=world.hospital_id))
    assert listed.items[0].next_available_date == day(4)
    assert (await kit.service.get_doctor(world.doctor_id)).next_available_date == day(4)


async def test_next_available_date_ignores_dates_not_released_yet(
    kit: CatalogKit, world: World
) -> None:
    await kit.service.create_schedule(world.admin, am_session(world, day(8)))
    listed = await kit.service.list_doctors(DoctorQuery(hospital_id=world.hospital_id))
    assert listed.items[0].next_available_date is None
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, window_days=8)
    )
    listed = await kit.service.list_doctors(DoctorQuery(hospital_id=world.hospital_id))
    assert listed.items[0].next_available_date == day(8)


async def test_next_available_date_is_left_empty_when_booking_is_down(
    kit: CatalogKit, world: World
) -> None:
    await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    kit.booking.down = True
    listed = await kit.service.list_doctors(DoctorQuery())
    assert [(d.id, d.next_available_date) for d in listed.items] == [(world.doctor_id, None)]


# hospital scoping


async def test_another_hospitals_admin_gets_not_found_on_every_admin_method(
    kit: CatalogKit, world: World
) -> None:
    intruder = hospital_admin((await add_world(kit, "别的医院")).hospital_id)
    await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    before = await catalog_snapshot(kit)
    for attempt in admin_attempts(kit, world):
        with pytest.raises(NotFound):
            await attempt(intruder)
        with pytest.raises(Forbidden):
            await attempt(PATIENT)
        with pytest.raises(Unauthenticated):
            await attempt(None)
    assert await catalog_snapshot(kit) == before
    doctor = await kit.service.get_doctor(world.doctor_id)
    assert (doctor.name, doctor.published) == ("张三", True)


async def test_the_platform_admin_may_administer_any_hospital(
    kit: CatalogKit, world: World
) -> None:
    for attempt in admin_attempts(kit, world):
        await attempt(PLATFORM_ADMIN)


async def test_admin_methods_on_an_unknown_hospital_are_not_found(kit: CatalogKit) -> None:
    with pytest.raises(NotFound):
        await kit.service.create_department(
            PLATFORM_ADMIN, DepartmentCreateParams(hospital_id="h_nope", name="内科")
        )
    with pytest.raises(NotFound):
        await kit.service.update_rules(
            PLATFORM_ADMIN, RulesPatchParams(hospital_id="h_nope", window_days=3)
        )


def admin_attempts(
    kit: CatalogKit, world: World
) -> list[Callable[[Caller | None], Awaitable[Any]]]:
    """One call of every admin method on `world`'s hospital, parameterised by the caller."""
    hid = world.hospital_id

    def call(method: str, params: Any) -> Callable[[Caller | None], Awaitable[Any]]:
        async def attempt(caller: Caller | None) -> Any:
            return await getattr(kit.service, method)(caller, params)

        return attempt

    return [
        call("create_department", DepartmentCreateParams(hospital_id=hid, name="新科室")),
        call(
            "create_doctor",
            DoctorCreateParams(
                hospital_id=hid,
                name="新医生",
                title="主治医师",
                department_id=world.department_id,
                fee_cents=100,
            ),
        ),
        call(
            "update_doctor",
            DoctorPatchParams(
                hospital_id=hid, doctor_id=world.doctor_id, name="改名", published=False
            ),
        ),
        call("update_rules", RulesPatchParams(hospital_id=hid, window_days=3)),
        call(
            "create_schedule",
            ScheduleCreateParams(
                hospital_id=hid,
                doctor_id=world.doctor_id,
                date=day(5),
                session="pm",
                slots=[SlotSpec(start="14:00", end="14:30", capacity=1)],
            ),
        ),
        call("admin_doctors", AdminDoctorQuery(hospital_id=hid)),
        call("admin_schedules", AdminScheduleQuery(hospital_id=hid)),
    ]


async def catalog_snapshot(kit: CatalogKit) -> dict[str, list[Document]]:
    """Every catalog document: a refused request must leave all of them as they were."""
    return {
        name: [doc async for doc in kit.db[name].find({}).sort("_id", 1)]
        for name in ("hospitals", "departments", "doctors", "schedules")
    }


# rules


async def test_rules_patch_changes_only_the_given_fields(kit: CatalogKit, world: World) -> None:
    patched = await kit.service.update_rules(
        world.admin,
        RulesPatchParams(
            hospital_id=world.hospital_id,
            window_days=14,
            same_day_stop_time=SameDayStop.model_validate({"pm": "15:00"}),
        ),
    )
    assert patched.rules.window_days == 14
    assert patched.rules.same_day_stop_time == SameDayStop(am="11:30", pm="15:00")
    assert patched.rules.max_active == 5
    again = await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, max_active=2)
    )
    assert (again.rules.window_days, again.rules.max_active) == (14, 2)
    assert again.rules.same_day_stop_time.pm == "15:00"
    assert await kit.service.booking_rules(world.hospital_id) == again.rules


# events


async def test_every_change_is_announced_through_the_outbox(kit: CatalogKit, world: World) -> None:
    schedule = await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    await kit.service.update_doctor(
        world.admin,
        DoctorPatchParams(hospital_id=world.hospital_id, doctor_id=world.doctor_id, fee_cents=6000),
    )
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, cancel_before_hours=4)
    )

    assert [(e.type, e.routing_key) for e in kit.events] == [
        ("doctor.updated", f"doctor.updated.{world.hospital_id}"),  # created in add_world
        ("schedule.published", f"schedule.published.{world.hospital_id}"),
        ("doctor.updated", f"doctor.updated.{world.hospital_id}"),
        ("hospital.rules_updated", f"hospital.rules_updated.{world.hospital_id}"),
    ]
    created, published, updated, rules = kit.events
    assert created.data["doctor"]["fee_cents"] == 5000 and created.data["doctor"]["published"]
    assert published.data["schedule"]["id"] == schedule.id
    assert published.data["schedule"]["doctor"] == {
        "id": world.doctor_id,
        "name": "张三",
        "title": "主任医师",
    }
    assert published.data["schedule"]["department"] == {
        "id": world.sub_department_id,
        "name": "心血管内科",
    }
    assert published.data["schedule"]["date"] == day(2).isoformat()
    assert [s["id"] for s in published.data["schedule"]["slots"]] == [s.id for s in schedule.slots]
    assert updated.data["doctor"]["fee_cents"] == 6000
    assert rules.data == {
        "hospital_id": world.hospital_id,
        "rules": BookingRules(cancel_before_hours=4).model_dump(),
    }
    assert all(e.occurred_at.startswith("2026-12-01T09:00:00") for e in kit.events)
    assert await kit.relay.backlog() == 0
    for name in ("hospitals", "doctors", "schedules"):
        async for doc in kit.db[name].find({}):
            assert doc.get("outbox", []) == [] and not doc.get("outbox_pending")


async def test_an_event_the_broker_refused_stays_in_the_outbox_until_the_relay_sweeps(
    kit: CatalogKit, world: World
) -> None:
    kit.publisher.failing = True
    schedule = await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    stored = await kit.db["schedules"].find_one({"_id": schedule.id})
    assert stored is not None and stored["outbox_pending"] is True
    assert [e["type"] for e in stored["outbox"]] == ["schedule.published"]
    kit.publisher.failing = False
    assert await kit.relay.sweep(everything=True) == 1
    assert kit.events[-1].type == "schedule.published"
    assert await kit.relay.backlog() == 0


async def test_a_change_that_changes_nothing_announces_nothing(
    kit: CatalogKit, world: World
) -> None:
    before = len(kit.events)
    await kit.service.update_doctor(
        world.admin,
        DoctorPatchParams(hospital_id=world.hospital_id, doctor_id=world.doctor_id, name="张三"),
    )
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, window_days=7)
    )
    assert len(kit.events) == before


# internal lookups


async def test_schedule_definitions_by_slot_and_by_id(kit: CatalogKit, world: World) -> None:
    first = await kit.service.create_schedule(world.admin, am_session(world, day(2)))
    second = await kit.service.create_schedule(world.admin, am_session(world, day(3)))
    by_slot = await kit.service.schedule_for_slot(second.slots[1].id)
    assert by_slot.id == second.id and by_slot.hospital_id == world.hospital_id
    assert (by_slot.doctor.name, by_slot.department.name) == ("张三", "心血管内科")
    assert [s.capacity for s in by_slot.slots] == [3, 3]
    assert (await kit.service.schedule_definition(first.id)).date == day(2)
    with pytest.raises(NotFound):
        await kit.service.schedule_for_slot("slot_nope")
    with pytest.raises(NotFound):
        await kit.service.schedule_definition("sch_nope")


async def test_hospital_of_a_doctor_or_a_department(kit: CatalogKit, world: World) -> None:
    from shared.contracts.catalog import HospitalOfQuery

    by_doctor = await kit.service.hospital_of(HospitalOfQuery(doctor_id=world.doctor_id))
    by_department = await kit.service.hospital_of(
        HospitalOfQuery(department_id=world.sub_department_id)
    )
    assert by_doctor.hospital_id == by_department.hospital_id == world.hospital_id
    with pytest.raises(NotFound):
        await kit.service.hospital_of(HospitalOfQuery(doctor_id="doc_nope"))
    with pytest.raises(NotFound):
        await kit.service.hospital_of(HospitalOfQuery(department_id="dep_nope"))


async def test_hospital_exists_and_booking_rules_of_an_unknown_hospital(
    kit: CatalogKit, world: World
) -> None:
    assert (await kit.service.hospital_exists(world.hospital_id)).exists is True
    assert (await kit.service.hospital_exists("h_nope")).exists is False
    with pytest.raises(NotFound):
        await kit.service.booking_rules("h_nope")


async def test_doctors_come_in_pages_and_availability_is_asked_for_one_page_only(
    kit: CatalogKit, world: World
) -> None:
    for n in range(6):
        doctor = await kit.service.create_doctor(
            world.admin,
            DoctorCreateParams(
                hospital_id=world.hospital_id,
                name=f"医生{n}",
                title="主治医师",
                department_id=world.department_id,
                fee_cents=100,
                published=True,
            ),
        )
        await kit.service.create_schedule(
            world.admin, am_session(world, day(1), doctor_id=doctor.id)
        )
    seen: list[str] = []
    cursor: str | None = None
    kit.booking.calls.clear()
    for _ in range(10):
        page = await kit.service.list_doctors(
            DoctorQuery.model_validate(
                {
                    "hospital_id": world.hospital_id,
                    "limit": 3,
                    **({"cursor": cursor} if cursor else {}),
                }
            )
        )
        assert len(page.items) <= 3
        seen += [d.id for d in page.items]
        cursor = page.next
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7  # the world's doctor and six more
    assert kit.booking.calls and all(len(c) <= 3 for c in kit.booking.calls)
    searched = await kit.service.list_doctors(
        DoctorQuery.model_validate({"hospital_id": world.hospital_id, "q": "医生", "limit": 4})
    )
    assert len(searched.items) == 4 and searched.next == "4"


@pytest.mark.parametrize("cursor", ["²", "٣", "-1", "9999999", "x"])
async def test_a_crafted_doctor_cursor_is_a_field_error(
    kit: CatalogKit, world: World, cursor: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        query = parse_object(DoctorQuery, {"hospital_id": world.hospital_id, "cursor": cursor})
        await kit.service.list_doctors(query)
    assert "cursor" in refused.value.details["fields"]


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "１９９９-01-01"])
def test_far_dates_in_queries_are_field_errors(value: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_object(ScheduleQuery, {"doctor_id": "d_1", "from": value})
    assert "from" in refused.value.details["fields"]
