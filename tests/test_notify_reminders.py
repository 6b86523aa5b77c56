"""Visit reminders: planned from appointment events, sent the evening before, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.storage.lease import Lease, run_leased
from shared.storage.mongo import Document
from shared.wechat.fake import DEFAULT_TEMPLATES
from tests.notify_kit import (
    Clock,
    Fake,
    Notify,
    StubOpenids,
    appointment,
    build_notify,
    event,
    grant,
    local,
    new_patient,
)

REMINDER = DEFAULT_TEMPLATES["visit_reminder"].template_id
BOOKED_AT = local(2026, 11, 30, 10)
EVENING_BEFORE = local(2026, 12, 1, 18, 0)

pytest_plugins = ["tests.notify_fixtures"]


async def reminder(mongo_db: AsyncDatabase[Document], appointment_id: str) -> Document:
    doc = await mongo_db.reminders.find_one({"_id": appointment_id})
    assert doc is not None
    return doc


async def test_a_booking_plans_its_reminder_for_the_evening_before(
    notify: Notify, mongo_db: AsyncDatabase[Document]
) -> None:
    booked = appointment("u_1", date="2026-12-02")
    await notify.reminders.on_event(event("appointment.booked", booked, at=BOOKED_AT))
    doc = await reminder(mongo_db, booked["id"])
    assert doc["status"] == "scheduled"
    assert doc["due_at"] == EVENING_BEFORE


async def test_a_booking_after_the_reminder_time_gets_no_reminder(
    notify: Notify, mongo_db: AsyncDatabase[Document]
) -> None:
    booked = appointment("u_1", date="2026-12-02")
    await notify.reminders.on_event(
        event("appointment.booked", booked, at=local(2026, 12, 1, 19, 30))
    )
    assert (await reminder(mongo_db, booked["id"]))["status"] == "skipped"


@pytest.mark.parametrize(
    "ending", ["appointment.cancelled", "appointment.no_show", "appointment.checked_in"]
)
async def test_an_ended_appointment_drops_its_reminder_even_out_of_order(
    notify: Notify, mongo_db: AsyncDatabase[Document], ending: str
) -> None:
    booked = appointment("u_1")
    await notify.reminders.on_event(event("appointment.booked", booked, at=BOOKED_AT))
    await notify.reminders.on_event(event(ending, booked, at=BOOKED_AT + dt.timedelta(hours=1)))
    assert (await reminder(mongo_db, booked["id"]))["status"] == "cancelled"
    other = appointment("u_1")  # the cancellation overtakes the booking event
    await notify.reminders.on_event(event(ending, other, at=BOOKED_AT + dt.timedelta(hours=1)))
    await notify.reminders.on_event(event("appointment.booked", other, at=BOOKED_AT))
    assert (await reminder(mongo_db, other["id"]))["status"] == "cancelled"


async def test_a_move_moves_the_reminder(notify: Notify, mongo_db: AsyncDatabase[Document]) -> None:
    booked = appointment("u_1", date="2026-12-02")
    await notify.reminders.on_event(event("appointment.booked", booked, at=BOOKED_AT))
    moved = {**booked, "date": "2026-12-05"}
    await notify.reminders.on_event(
        event("appointment.rescheduled", moved, at=BOOKED_AT + dt.timedelta(minutes=5))
    )
    assert (await reminder(mongo_db, booked["id"]))["due_at"] == local(2026, 12, 4, 18)


async def test_reminders_go_out_once_each_even_with_two_sweepers(
    mongo_db: AsyncDatabase[Document],
    http: aiohttp.ClientSession,
    fake: Fake,
    clock: Clock,
    openids: StubOpenids,
) -> None:
    first = await build_notify(mongo_db, http, fake, clock, openids)
    second = await build_notify(mongo_db, http, fake, clock, openids)
    patients = [await new_patient(fake, openids) for _ in range(6)]
    for p in patients:
        await grant(first, fake, p, "visit_reminder", 3)  # a double send would show
        await first.reminders.on_event(
            event("appointment.booked", appointment(p.user_id, date="2026-12-02"), at=BOOKED_AT)
        )
    assert await first.reminders.run_once("a") == 0  # not due yet
    clock.now = EVENING_BEFORE + dt.timedelta(seconds=30)
    handled = await asyncio.gather(
        *[n.reminders.run_once(owner) for n, owner in ((first, "a"), (second, "b")) * 3]
    )
    assert sum(handled) == 6
    for p in patients:
        [message] = (await fake.control("GET", "messages", touser=p.openid))["items"]
        assert message["template_id"] == REMINDER
        assert message["data"]["thing4"]["value"] == "明天就诊，第7号，请按时到院"


async def test_leased_sweep_loops_of_two_processes_send_each_reminder_once(
    mongo_db: AsyncDatabase[Document],
    http: aiohttp.ClientSession,
    fake: Fake,
    clock: Clock,
    openids: StubOpenids,
) -> None:
    processes = [await build_notify(mongo_db, http, fake, clock, openids) for _ in range(2)]
    patients = [await new_patient(fake, openids) for _ in range(4)]
    for p in patients:
        await grant(processes[0], fake, p, "visit_reminder", 2)
        await processes[0].reminders.on_event(
            event("appointment.booked", appointment(p.user_id, date="2026-12-02"), at=BOOKED_AT)
        )
    clock.now = EVENING_BEFORE

    def sweeper(i: int, process: Any) -> asyncio.Task[None]:
        lease = Lease(mongo_db.leases, "notify.reminders", f"p{i}", dt.timedelta(seconds=1))
        return asyncio.create_task(
            run_leased(lease, lambda term: process.reminders.run_once(lease.owner, term), 0.05)
        )

    loops = [sweeper(i, process) for i, process in enumerate(processes)]
    try:
        async with asyncio.timeout(10):
            while len((await fake.control("GET", "messages"))["items"]) < len(patients):
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # room for a wrong second send
    finally:
        for loop in loops:
            loop.cancel()
        for loop in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    assert len((await fake.control("GET", "messages"))["items"]) == len(patients)


async def test_a_reminder_found_after_the_visit_is_not_sent(
    notify: Notify,
    fake: Fake,
    clock: Clock,
    openids: StubOpenids,
    mongo_db: AsyncDatabase[Document],
) -> None:
    patient = await new_patient(fake, openids)
    await grant(notify, fake, patient, "visit_reminder", 1)
    booked = appointment(patient.user_id, date="2026-12-02")
    await notify.reminders.on_event(event("appointment.booked", booked, at=BOOKED_AT))
    clock.now = local(2026, 12, 2, 10)  # notify was down all evening
    assert await notify.reminders.run_once("a") == 1
    assert (await reminder(mongo_db, booked["id"]))["status"] == "expired"
    assert (await fake.control("GET", "messages"))["items"] == []
