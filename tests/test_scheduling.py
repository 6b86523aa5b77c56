"""排班: templates become the booking window's sessions, honouring odd/even weeks, holidays,
调休 workdays and doctor leave; generation is idempotent under races and crashes; a
template change leaves booked sessions alone and says so."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from collections import Counter
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.catalog.repository import CatalogRepository
from services.catalog.scheduling import Scheduler, in_week
from services.catalog.scheduling_repository import SchedulingRepository
from services.catalog.service import CatalogService
from shared.contracts.catalog import RulesPatchParams, ScheduleQuery
from shared.contracts.scheduling import (
    CalendarDayParams,
    CalendarQuery,
    DoctorTemplatesRef,
    LeaveCreateParams,
    PreviewQuery,
    TemplatePatchParams,
    TemplateRef,
)
from shared.errors import NotFound, ValidationFailed
from shared.storage.mongo import Document
from tests.catalog_kit import TODAY, CatalogKit, World, add_world, build_catalog, day
from tests.scheduling_kit import BookingDouble, build_scheduler, weekly

WEEKDAYS = [1, 2, 3, 4, 5]


@pytest.fixture(autouse=True)
def every_log_line_is_built(caplog: pytest.LogCaptureFixture) -> None:
    """Log records are really made (a reserved `extra` key fails only then)."""
    caplog.set_level(logging.DEBUG, logger="guahao")


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> CatalogKit:
    return await build_catalog(mongo_db)


@pytest.fixture
async def world(kit: CatalogKit) -> World:
    return await add_world(kit)


@pytest.fixture
def booking(kit: CatalogKit) -> BookingDouble:
    return BookingDouble(kit.db)


@pytest.fixture
async def scheduler(kit: CatalogKit, booking: BookingDouble) -> Scheduler:
    store = SchedulingRepository(kit.db)
    await store.ensure_indexes()
    return build_scheduler(kit, booking)


async def sessions(kit: CatalogKit, world: World) -> list[Document]:
    return [
        doc
        async for doc in kit.db["schedules"]
        .find({"hospital_id": world.hospital_id})
        .sort([("date", 1), ("session", 1)])
    ]


def dates_of(docs: list[Document], session: str = "am") -> list[str]:
    return [doc["date"] for doc in docs if doc["session"] == session]


def window_dates(weekdays: list[int], days: int = 7) -> list[str]:
    return [day(i).isoformat() for i in range(days + 1) if day(i).isoweekday() in weekdays]


# templates → sessions


async def test_templates_produce_the_sessions_of_the_booking_window(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    created = await scheduler.create_template(world.admin, weekly(world, WEEKDAYS))
    assert created.regeneration is not None
    assert created.regeneration.created == len(window_dates(WEEKDAYS))
    await scheduler.create_template(
        world.admin,
        weekly(
            world,
            [2, 4],
            session="pm",
            start="13:30",
            end="16:30",
            slice_minutes=60,
            capacity=5,
            fee_cents=8000,
        ),
    )
    assert await scheduler.generation_pass() == 1
    docs = await sessions(kit, world)
    assert dates_of(docs, "am") == window_dates(WEEKDAYS)
    assert dates_of(docs, "pm") == window_dates([2, 4])
    am = next(doc for doc in docs if doc["session"] == "am")
    assert [(s["start"], s["end"], s["capacity"]) for s in am["slots"]] == [
        ("08:00", "08:30", 2),
        ("08:30", "09:00", 2),
        ("09:00", "09:30", 2),
        ("09:30", "10:00", 2),
    ]
    assert am["fee_cents"] == 5000 and am["clinic_type"] == "general"  # the doctor's fee
    pm = next(doc for doc in docs if doc["session"] == "pm")
    assert pm["fee_cents"] == 8000 and len(pm["slots"]) == 3
    # nothing past the window, nothing in the past
    assert all(TODAY.isoformat() <= doc["date"] <= day(7).isoformat() for doc in docs)

    # published exactly as a hand-made session: schedule.published with its definition
    await kit.relay.sweep(everything=True)
    published = [e for e in kit.events if e.type == "schedule.published"]
    assert sorted(e.data["schedule"]["id"] for e in published) == sorted(d["_id"] for d in docs)
    # and the patient listing shows them
    listed = await kit.service.doctor_schedules(ScheduleQuery(doctor_id=world.doctor_id))
    assert len(listed.items) == len(docs)


async def test_generation_again_changes_nothing(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    await scheduler.create_template(world.admin, weekly(world, WEEKDAYS))
    before = await sessions(kit, world)
    report = await scheduler.generate(world.hospital_id, TODAY, day(7))
    assert (report.created, report.replaced, report.removed, report.kept) == (0, 0, 0, [])
    assert await sessions(kit, world) == before


async def test_the_window_follows_the_hospital_rules_and_the_days(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    await scheduler.create_template(world.admin, weekly(world, [1, 2, 3, 4, 5, 6, 7]))
    assert len(await sessions(kit, world)) == 8
    await scheduler.generation_pass()
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, window_days=14)
    )
    await scheduler.generation_pass()  # a longer window is generated at the next pass
    assert len(await sessions(kit, world)) == 15
    kit.clock.set_local(day(1), "00:05")  # the next day: one more date enters the window
    await scheduler.generation_pass()
    assert dates_of(await sessions(kit, world))[-1] == day(15).isoformat()


async def test_odd_and_even_weeks_alternate_by_iso_week_number(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, window_days=28)
    )
    await scheduler.create_template(world.admin, weekly(world, [1, 3], weeks="odd", capacity=1))
    # the complementary even-week template is no overlap
    await scheduler.create_template(world.admin, weekly(world, [1], weeks="even", capacity=4))
    docs = await sessions(kit, world)
    for doc in docs:
        date = dt.date.fromisoformat(doc["date"])
        week = date.isocalendar().week
        if date.isoweekday() == 3:
            assert week % 2 == 1
        assert doc["slots"][0]["capacity"] == (1 if week % 2 == 1 else 4)
    mondays = [d for d in dates_of(docs) if dt.date.fromisoformat(d).isoweekday() == 1]
    assert len(mondays) == 4  # every Monday: odd weeks from one, even from the other
    wednesdays = [d for d in dates_of(docs) if dt.date.fromisoformat(d).isoweekday() == 3]
    assert wednesdays and all(in_week("odd", dt.date.fromisoformat(d)) for d in wednesdays)
    assert len(wednesdays) == 2


async def test_a_holiday_produces_nothing_and_a_tiaoxiu_saturday_works_as_its_weekday(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    wednesday, saturday = day(1), day(4)
    assert (wednesday.isoweekday(), saturday.isoweekday()) == (3, 6)
    await scheduler.set_calendar_day(
        world.admin,
        CalendarDayParams(
            hospital_id=world.hospital_id, date=wednesday, closed=True, reason="元旦"
        ),
    )
    await scheduler.set_calendar_day(
        world.admin,
        CalendarDayParams(
            hospital_id=world.hospital_id, date=saturday, closed=False, workday_as=3, reason="调休"
        ),
    )
    await scheduler.create_template(world.admin, weekly(world, [3], capacity=7))
    docs = await sessions(kit, world)
    assert dates_of(docs) == [saturday.isoformat()]
    assert docs[0]["slots"][0]["capacity"] == 7
    calendar = await scheduler.calendar(
        world.admin, CalendarQuery(hospital_id=world.hospital_id, **{"from": TODAY}, to=day(30))
    )
    assert [(c.date, c.closed, c.workday_as) for c in calendar.items] == [
        (wednesday, True, None),
        (saturday, False, 3),
    ]


async def test_a_holiday_declared_later_removes_unbooked_sessions_and_keeps_booked_ones(
    kit: CatalogKit, world: World, scheduler: Scheduler, booking: BookingDouble
) -> None:
    await scheduler.create_template(world.admin, weekly(world, [3, 4]))
    docs = {doc["date"]: doc for doc in await sessions(kit, world)}
    await booking.book(docs[day(2).isoformat()]["_id"])
    free = await scheduler.set_calendar_day(
        world.admin,
        CalendarDayParams(hospital_id=world.hospital_id, date=day(1), closed=True, reason="院庆"),
    )
    assert free.regeneration is not None and free.regeneration.removed == 1
    busy = await scheduler.set_calendar_day(
        world.admin,
        CalendarDayParams(hospital_id=world.hospital_id, date=day(2), closed=True, reason="院庆"),
    )
    assert busy.regeneration is not None and busy.regeneration.removed == 0
    assert [(k.date, k.why) for k in busy.regeneration.kept] == [(day(2), "booked")]
    left = {doc["date"] for doc in await sessions(kit, world)}
    assert day(1).isoformat() not in left and day(2).isoformat() in left
    assert booking.stopped[docs[day(1).isoformat()]["_id"]]  # closed in booking first


# validation


async def test_overlapping_templates_of_one_doctor_are_refused(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    first = await scheduler.create_template(
        world.admin,
        weekly(world, [1, 2], valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 12, 31)),
    )
    with pytest.raises(ValidationFailed) as refused:
        await scheduler.create_template(
            world.admin, weekly(world, [2, 5], valid_from=dt.date(2026, 12, 1))
        )
    assert first.id in refused.value.details["fields"]["weekdays"]
    # another session, other weekdays, or validity after it ends: all fine
    await scheduler.create_template(
        world.admin, weekly(world, [2], session="pm", start="13:00", end="15:00")
    )
    await scheduler.create_template(world.admin, weekly(world, [3]))
    await scheduler.create_template(world.admin, weekly(world, [1], valid_from=dt.date(2027, 1, 1)))
    listed = await scheduler.list_templates(
        world.admin, DoctorTemplatesRef(hospital_id=world.hospital_id, doctor_id=world.doctor_id)
    )
    assert len(listed.items) == 4
    # a patch that would overlap is refused too
    with pytest.raises(ValidationFailed):
        await scheduler.update_template(
            world.admin,
            TemplatePatchParams(
                hospital_id=world.hospital_id,
                doctor_id=world.doctor_id,
                template_id=listed.items[2].id,
                weekdays=[1, 3],
            ),
        )


async def test_slices_must_divide_the_session_and_capacity_must_be_positive(
    world: World, scheduler: Scheduler
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await scheduler.create_template(
            world.admin, weekly(world, [1], end="09:45", slice_minutes=30)
        )
    assert "slice_minutes" in refused.value.details["fields"]
    with pytest.raises(ValidationFailed) as refused:
        await scheduler.create_template(world.admin, weekly(world, [1], start="10:00", end="09:00"))
    assert "end" in refused.value.details["fields"]
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        weekly(world, [1], capacity=0)
    with pytest.raises(ValidationError):
        weekly(world, [1, 1])
    with pytest.raises(ValidationError):
        weekly(world, [8])


async def test_templates_of_another_hospital_are_not_found(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    other = await add_world(kit, "别的医院")
    with pytest.raises(NotFound):
        await scheduler.create_template(other.admin, weekly(world, [1]))
    with pytest.raises(NotFound):
        await scheduler.list_templates(
            other.admin,
            DoctorTemplatesRef(hospital_id=other.hospital_id, doctor_id=world.doctor_id),
        )


# idempotence: races and crashes


async def test_two_generation_runs_racing_on_two_store_clients_make_each_session_once(
    kit: CatalogKit, world: World, mongo_url: str
) -> None:
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, window_days=30)
    )
    for i in range(3):
        doctor = (await kit.db["doctors"].find_one({"_id": world.doctor_id})) or {}
        if i:
            doctor = {**doctor, "_id": f"doc_race_{i}", "outbox": [], "outbox_pending": False}
            await kit.db["doctors"].insert_one(doctor)
        store = SchedulingRepository(kit.db)
        await store.save_templates(
            doctor["_id"],
            world.hospital_id,
            0,
            [
                {
                    "id": f"tpl_race_{i}",
                    "weekdays": [1, 2, 3, 4, 5, 6, 7],
                    "session": "am",
                    "start": "08:00",
                    "end": "12:00",
                    "slice_minutes": 15,
                    "capacity_per_slice": 1,
                    "clinic_type": "general",
                    "weeks": "every",
                    "valid_from": "2026-01-01",
                }
            ],
            kit.clock(),
        )
    clients: list[AsyncMongoClient[Document]] = [
        AsyncMongoClient(mongo_url, tz_aware=True) for _ in range(2)
    ]
    try:
        runners = []
        for client in clients:
            db = client[kit.db.name]
            repo = CatalogRepository(db)
            service = CatalogService(repo, kit.relay, kit.booking, kit.clock)
            runners.append(
                Scheduler(repo, SchedulingRepository(db), service, BookingDouble(db), batch=7)
            )
        for _ in range(2):
            await asyncio.gather(*(r.generate(world.hospital_id, TODAY, day(30)) for r in runners))
    finally:
        for client in clients:
            await client.close()
    docs = await sessions(kit, world)
    assert len(docs) == 3 * 31
    keys = Counter((d["doctor_id"], d["date"], d["session"]) for d in docs)
    assert max(keys.values()) == 1
    await kit.relay.sweep(everything=True)
    published = Counter(
        e.data["schedule"]["id"] for e in kit.events if e.type == "schedule.published"
    )
    assert set(published) == {d["_id"] for d in docs}


async def test_a_crash_mid_generation_is_completed_by_the_next_run(
    kit: CatalogKit, world: World, booking: BookingDouble
) -> None:
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, window_days=20)
    )
    batches = 0

    def crash_after_two_batches(point: str) -> None:
        nonlocal batches
        if point == "published_batch":
            batches += 1
            if batches == 2:
                raise RuntimeError("process killed")

    crashing = build_scheduler(kit, booking, fault=crash_after_two_batches, batch=4)
    await crashing.store.save_templates(
        world.doctor_id,
        world.hospital_id,
        0,
        [
            {
                "id": "tpl_crash",
                "weekdays": [1, 2, 3, 4, 5, 6, 7],
                "session": "am",
                "start": "08:00",
                "end": "10:00",
                "slice_minutes": 30,
                "capacity_per_slice": 2,
                "clinic_type": "general",
                "weeks": "every",
                "valid_from": "2026-01-01",
            }
        ],
        kit.clock(),
    )
    await crashing.store.bump_inputs(world.hospital_id)
    with pytest.raises(RuntimeError):
        await crashing.generation_pass()
    assert len(await sessions(kit, world)) == 8  # two batches of four made it
    state = await crashing.store.generation_state(world.hospital_id)
    assert state.get("done") != state.get("wanted")  # not marked done: the job retries

    await build_scheduler(kit, booking, batch=4).generation_pass()
    docs = await sessions(kit, world)
    assert dates_of(docs) == [day(i).isoformat() for i in range(21)]
    await kit.relay.sweep(everything=True)
    published = Counter(
        e.data["schedule"]["id"] for e in kit.events if e.type == "schedule.published"
    )
    assert set(published) == {d["_id"] for d in docs} and max(published.values()) == 1


# changes


async def test_a_template_change_leaves_booked_sessions_untouched_and_reports_them(
    kit: CatalogKit, world: World, scheduler: Scheduler, booking: BookingDouble
) -> None:
    template = await scheduler.create_template(world.admin, weekly(world, WEEKDAYS))
    before = {doc["date"]: doc for doc in await sessions(kit, world)}
    booked_date = day(1).isoformat()
    await booking.book(before[booked_date]["_id"], units=2)
    # booking knows a second session but nobody booked it
    await booking.book(before[day(2).isoformat()]["_id"], units=0)

    changed = await scheduler.update_template(
        world.admin,
        TemplatePatchParams(
            hospital_id=world.hospital_id,
            doctor_id=world.doctor_id,
            template_id=template.id,
            capacity_per_slice=5,
        ),
    )
    report = changed.regeneration
    assert report is not None
    assert [(k.schedule_id, k.date, k.booked, k.why) for k in report.kept] == [
        (before[booked_date]["_id"], day(1), 2, "booked")
    ]
    assert report.replaced == len(before) - 1 and report.created == 0
    after = {doc["date"]: doc for doc in await sessions(kit, world)}
    assert after[booked_date] == before[booked_date]  # untouched, same id, same slots
    for date, doc in after.items():
        if date != booked_date:
            assert doc["_id"] != before[date]["_id"]
            assert {s["capacity"] for s in doc["slots"]} == {5}
            old = before[date]["_id"]
            assert booking.stopped[old] == "排班调整 / schedule regenerated"
            assert all(booking.slots[s["id"]][0] == 0 for s in before[date]["slots"])
    # the job, running again, keeps reporting the booked one and changes nothing else
    again = await scheduler.generate(world.hospital_id, TODAY, day(7))
    assert [k.schedule_id for k in again.kept] == [before[booked_date]["_id"]]
    assert (again.created, again.replaced) == (0, 0)


async def test_a_session_booked_while_it_is_being_replaced_is_kept(
    kit: CatalogKit, world: World, scheduler: Scheduler, booking: BookingDouble
) -> None:
    template = await scheduler.create_template(world.admin, weekly(world, [3]))
    (doc,) = await sessions(kit, world)
    original = booking.change_capacity

    async def booked_just_before(hospital_id: str, slot_id: str, delta: int) -> None:
        if delta < 0 and slot_id == doc["slots"][1]["id"]:
            booking.slots[slot_id][1] = 1  # a patient got in after the availability check
        await original(hospital_id, slot_id, delta)

    booking.change_capacity = booked_just_before  # type: ignore[method-assign]
    changed = await scheduler.update_template(
        world.admin,
        TemplatePatchParams(
            hospital_id=world.hospital_id,
            doctor_id=world.doctor_id,
            template_id=template.id,
            capacity_per_slice=9,
        ),
    )
    assert changed.regeneration is not None and changed.regeneration.replaced == 0
    assert [k.schedule_id for k in changed.regeneration.kept] == [doc["_id"]]
    assert (await sessions(kit, world)) == [doc]
    assert doc["_id"] not in booking.stopped
    assert booking.slots[doc["slots"][0]["id"]][0] == 2  # the first slot got its capacity back


async def test_deleting_a_template_removes_its_unbooked_sessions_and_hand_made_ones_stay(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    from tests.catalog_kit import am_session

    await kit.service.create_schedule(world.admin, am_session(world, day(1)))  # Wednesday
    template = await scheduler.create_template(world.admin, weekly(world, [3, 4]))
    assert template.regeneration is not None
    assert [(k.date, k.why) for k in template.regeneration.kept] == [(day(1), "manual")]
    deleted = await scheduler.delete_template(
        world.admin,
        TemplateRef(
            hospital_id=world.hospital_id, doctor_id=world.doctor_id, template_id=template.id
        ),
    )
    assert deleted.regeneration is not None and deleted.regeneration.removed == 1
    docs = await sessions(kit, world)
    assert len(docs) == 1 and "template_id" not in docs[0]


async def test_preview_shows_what_generation_would_do_without_doing_it(
    kit: CatalogKit, world: World, scheduler: Scheduler, booking: BookingDouble
) -> None:
    template = await scheduler.create_template(world.admin, weekly(world, [3, 4]))
    docs = await sessions(kit, world)
    await booking.book(docs[0]["_id"])
    await scheduler.store.save_templates(
        world.doctor_id,
        world.hospital_id,
        1,
        [
            {
                **template.model_dump(
                    mode="json", exclude_none=True, exclude={"regeneration", "doctor_id"}
                ),
                "capacity_per_slice": 3,
            }
        ],
        kit.clock(),
    )
    await scheduler.set_calendar_day(
        world.admin,
        CalendarDayParams(hospital_id=world.hospital_id, date=day(9), closed=True, reason="元旦"),
    )
    preview = await scheduler.preview(
        world.admin, PreviewQuery(hospital_id=world.hospital_id, **{"from": TODAY}, to=day(14))
    )
    actions = {(item.date.isoformat(), item.action) for item in preview.items}
    assert (docs[0]["date"], "kept_booked") in actions
    assert (docs[1]["date"], "replace") in actions
    assert (day(8).isoformat(), "create") in actions  # Wednesday beyond the window
    assert all(item.date != day(9) for item in preview.items)  # the holiday
    assert next(d for d in preview.days if d.date == day(9)).closed
    assert await sessions(kit, world) == docs  # nothing written


# leave


async def test_leave_stops_the_sessions_in_range_with_its_reason_and_generation_skips_them(
    kit: CatalogKit, world: World, scheduler: Scheduler, booking: BookingDouble
) -> None:
    await scheduler.create_template(world.admin, weekly(world, [1, 2, 3, 4, 5, 6, 7]))
    docs = {doc["date"]: doc for doc in await sessions(kit, world)}
    await booking.book(docs[day(2).isoformat()]["_id"], units=3)
    leave = await scheduler.add_leave(
        world.admin,
        LeaveCreateParams(
            hospital_id=world.hospital_id,
            doctor_id=world.doctor_id,
            **{"from": day(2)},
            to=day(3),
            reason="外出会诊",
        ),
    )
    on_leave = {docs[day(2).isoformat()]["_id"], docs[day(3).isoformat()]["_id"]}
    assert set(leave.stopped) == on_leave and leave.cancelled == 3
    assert {sid: booking.stopped[sid] for sid in on_leave} == dict.fromkeys(on_leave, "外出会诊")
    assert booking.cancelled[docs[day(2).isoformat()]["_id"]] == 3
    assert set(booking.stopped) == on_leave  # nothing else stopped

    # the stopped sessions stay (patients see 停诊), regeneration neither replaces nor
    # re-creates anything on those dates, also after a template change
    await scheduler.generation_pass()
    template = (
        await scheduler.list_templates(
            world.admin,
            DoctorTemplatesRef(hospital_id=world.hospital_id, doctor_id=world.doctor_id),
        )
    ).items[0]
    await scheduler.update_template(
        world.admin,
        TemplatePatchParams(
            hospital_id=world.hospital_id,
            doctor_id=world.doctor_id,
            template_id=template.id,
            capacity_per_slice=4,
        ),
    )
    after = {doc["date"]: doc for doc in await sessions(kit, world)}
    assert {after[day(2).isoformat()]["_id"], after[day(3).isoformat()]["_id"]} == on_leave
    assert leave.model_dump(mode="json")["from"] == day(2).isoformat()


async def test_a_leave_interrupted_by_booking_is_finished_by_the_job(
    kit: CatalogKit, world: World, scheduler: Scheduler, booking: BookingDouble
) -> None:
    from shared.errors import ServiceUnavailable

    await scheduler.create_template(world.admin, weekly(world, [1, 2, 3, 4, 5, 6, 7]))
    original = booking.stop_schedule

    async def down(hospital_id: str, schedule_id: str, reason: str) -> int:
        raise ServiceUnavailable(service="booking")

    booking.stop_schedule = down  # type: ignore[method-assign]
    with pytest.raises(ServiceUnavailable):
        await scheduler.add_leave(
            world.admin,
            LeaveCreateParams(
                hospital_id=world.hospital_id,
                doctor_id=world.doctor_id,
                **{"from": day(1)},
                to=day(1),
                reason="病假",
            ),
        )
    booking.stop_schedule = original  # type: ignore[method-assign]
    await scheduler.generation_pass()
    assert list(booking.stopped.values()) == ["病假"]


async def test_the_rpc_methods_speak_json_with_the_contract_field_names(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    import json

    from services.catalog.handlers import register_scheduling
    from services.catalog.stats import StatsRepository, StatsService
    from shared.context import CallContext
    from shared.messaging.rpc import RpcServer

    server = RpcServer("catalog", connection=None)  # type: ignore[arg-type]  # never started
    register_scheduling(
        server, scheduler, StatsService(StatsRepository(kit.db), kit.repo, kit.clock)
    )
    call = CallContext("r1", caller=world.admin)
    created = await server._dispatch(
        "create_template",
        json.dumps(
            {
                "hospital_id": world.hospital_id,
                "doctor_id": world.doctor_id,
                "weekdays": [2],
                "session": "pm",
                "start": "13:00",
                "end": "15:00",
                "slice_minutes": 20,
                "capacity_per_slice": 2,
                "valid_from": "2026-11-01",
            }
        ).encode(),
        call,
    )
    assert created["ok"]["regeneration"]["created"] == 2  # the two Tuesdays of the window
    leave = await server._dispatch(
        "doctor_leave",
        json.dumps(
            {
                "hospital_id": world.hospital_id,
                "doctor_id": world.doctor_id,
                "from": "2026-12-08",
                "to": "2026-12-08",
                "reason": "年假",
            }
        ).encode(),
        call,
    )
    assert leave["ok"]["from"] == "2026-12-08" and len(leave["ok"]["stopped"]) == 1
    refused = await server._dispatch(
        "create_template",
        json.dumps(
            {
                "hospital_id": world.hospital_id,
                "doctor_id": world.doctor_id,
                "weekdays": [2],
                "session": "pm",
                "start": "13:00",
                "end": "15:00",
                "slice_minutes": 20,
                "capacity_per_slice": 2,
                "valid_from": "2026-11-01",
            }
        ).encode(),
        call,
    )
    assert refused["error"]["code"] == "VALIDATION_FAILED"
    assert "weekdays" in refused["error"]["details"]["fields"]


async def test_the_shipped_2026_holidays_close_national_day_and_open_its_tiaoxiu_saturday(
    kit: CatalogKit, world: World, scheduler: Scheduler
) -> None:
    from services.catalog import holidays

    days = holidays.read_file(holidays.shipped(2026))
    closed = {d.date for d in days if d.closed}
    assert dt.date(2026, 10, 1) in closed and dt.date(2026, 10, 7) in closed
    assert dt.date(2026, 2, 15) in closed and dt.date(2026, 2, 23) in closed
    assert len(closed) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert {d.date: d.workday_as for d in days if not d.closed}[dt.date(2026, 10, 10)] == 3
    assert await holidays.load(kit.repo, scheduler.store, world.hospital_id, days) == len(days)

    kit.clock.set_local(dt.date(2026, 9, 28), "09:00")
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, window_days=14)
    )
    await scheduler.store.save_templates(
        world.doctor_id,
        world.hospital_id,
        0,
        [
            {
                "id": "tpl_wed",
                "weekdays": [3],
                "session": "am",
                "start": "08:00",
                "end": "09:00",
                "slice_minutes": 30,
                "capacity_per_slice": 2,
                "clinic_type": "general",
                "weeks": "every",
                "valid_from": "2026-01-01",
            }
        ],
        kit.clock(),
    )
    await scheduler.generation_pass()
    # Wednesday 9-30 as usual, Wednesday 10-7 a holiday, Saturday 10-10 works as Wednesday
    assert dates_of(await sessions(kit, world)) == ["2026-09-30", "2026-10-10"]


RACER = """
import asyncio, datetime as dt, sys
from pymongo import AsyncMongoClient
from services.catalog.repository import CatalogRepository
from services.catalog.scheduling import Scheduler
from services.catalog.scheduling_repository import SchedulingRepository
from services.catalog.service import CatalogService
from tests.catalog_kit import START, StubBooking
from tests.scheduling_kit import BookingDouble

class NoRelay:
    async def flush_quietly(self, collection, doc_id):
        return None

async def main(url, name, hospital_id):
    client = AsyncMongoClient(url, tz_aware=True)
    db = client[name]
    repo = CatalogRepository(db)
    service = CatalogService(repo, NoRelay(), StubBooking(), lambda: START)
    scheduler = Scheduler(repo, SchedulingRepository(db), service, BookingDouble(db), batch=5)
    for _ in range(3):
        await scheduler.generation_pass()
        await scheduler.store.bump_inputs(hospital_id)
    await client.close()

asyncio.run(main(*sys.argv[1:]))
"""


ROOT = str(Path(__file__).resolve().parent.parent)


@pytest.mark.slow
async def test_two_generation_processes_racing_make_each_session_once(
    kit: CatalogKit, world: World, mongo_url: str
) -> None:
    await kit.service.update_rules(
        world.admin, RulesPatchParams(hospital_id=world.hospital_id, window_days=40)
    )
    await SchedulingRepository(kit.db).save_templates(
        world.doctor_id,
        world.hospital_id,
        0,
        [
            {
                "id": f"tpl_{session}",
                "weekdays": [1, 2, 3, 4, 5, 6, 7],
                "session": session,
                "start": start,
                "end": end,
                "slice_minutes": 30,
                "capacity_per_slice": 1,
                "clinic_type": "general",
                "weeks": "every",
                "valid_from": "2026-01-01",
            }
            for session, start, end in (("am", "08:00", "11:00"), ("pm", "13:00", "16:00"))
        ],
        kit.clock(),
    )
    racers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", RACER, mongo_url, kit.db.name, world.hospital_id, cwd=ROOT
        )
        for _ in range(2)
    ]
    codes = await asyncio.wait_for(asyncio.gather(*(r.wait() for r in racers)), 120)
    assert codes == [0, 0]
    docs = await sessions(kit, world)
    assert len(docs) == 2 * 41
    assert len({(d["doctor_id"], d["date"], d["session"]) for d in docs}) == len(docs)
    assert len({d["_id"] for d in docs}) == len(docs)
