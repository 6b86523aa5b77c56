"""Fair release: requests in the first seconds after release are drawn, not raced."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.booking.lottery import NOT_DRAWN
from shared.contracts.booking import BookParams
from shared.contracts.catalog import BookingRules
from shared.errors import AlreadyBooked
from shared.storage.mongo import Document
from tests.booking_kit import Kit, local

RULES = BookingRules(release_mode="lottery", lottery_window_seconds=10)
RELEASE = local(2026, 12, 1, 8, 0)  # 2026-12-08 opens on 2026-12-01 at 08:00
DAY = dt.date(2026, 12, 8)


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> Kit:
    kit = await Kit(mongo_db, RELEASE + dt.timedelta(seconds=1), RULES).setup()
    kit.booking.lottery.random = random.Random(7)
    return kit


async def request(
    kit: Kit, slot: str, user: str | None = None, patient: str | None = None
) -> tuple[str, str, str]:
    user = user or f"u_{uuid.uuid4().hex[:8]}"
    patient = patient or kit.patients.add(user)
    appointment, created = await kit.booker.book(
        user, BookParams(slot_id=slot, patient_id=patient, idempotency_key=uuid.uuid4().hex)
    )
    assert created
    return user, appointment.id, appointment.status


async def test_requests_in_the_window_wait_for_a_random_draw(kit: Kit) -> None:
    slot = kit.schedule(DAY, capacity=5, starts=("08:00",)).slots[0].id
    entries = []
    for _ in range(20):
        entries.append(await request(kit, slot))
        kit.clock.advance(seconds=0.4)
    assert {status for _, _, status in entries} == {"pending"}
    doc = await kit.stock(slot)
    assert doc is not None and doc["booked"] == 0  # nothing served during the window
    pending = await kit.queries.get_for_user(entries[0][0], entries[0][1])
    assert pending.status == "pending" and pending.lottery_draw_at == "2026-12-01T08:00:10+08:00"
    kit.clock.now = RELEASE + dt.timedelta(seconds=11)
    assert await kit.booking.lottery.draw_due(kit.booker.complete_pending) == 5
    outcomes = [(await kit.queries.get_for_user(user, aid)) for user, aid, _ in entries]
    winners = [i for i, a in enumerate(outcomes) if a.status == "booked"]
    losers = [a for a in outcomes if a.status == "cancelled"]
    assert len(winners) == 5 and len(losers) == 15
    assert winners != [0, 1, 2, 3, 4]  # arrival order does not decide
    assert {a.reason for a in losers} == {NOT_DRAWN} and {a.cancelled_by for a in losers} == {
        "system"
    }
    assert sorted(a.seq_no for a in outcomes if a.status == "booked") == [1, 2, 3, 4, 5]
    doc = await kit.stock(slot)
    assert doc is not None and doc["booked"] == 5
    assert kit.publisher.types().count("appointment.booked") == 5
    assert kit.publisher.types().count("appointment.cancelled") == 15  # losers are told


async def test_one_person_enters_once(kit: Kit) -> None:
    slot = kit.schedule(DAY, capacity=5, starts=("08:00",)).slots[0].id
    user, patient = "u_twice", kit.patients.add("u_twice")
    await request(kit, slot, user, patient)
    with pytest.raises(AlreadyBooked):
        await request(kit, slot, user, patient)


async def test_first_come_after_the_window_is_served_after_the_draw(kit: Kit) -> None:
    slot = kit.schedule(DAY, capacity=3, starts=("08:00",)).slots[0].id
    early = [await request(kit, slot) for _ in range(2)]
    kit.clock.now = RELEASE + dt.timedelta(seconds=30)
    late_user, late_aid, late_status = await request(kit, slot)
    assert late_status == "booked"
    for user, aid, _ in early:
        assert (await kit.queries.get_for_user(user, aid)).status == "booked"
    assert (await kit.queries.get_for_user(late_user, late_aid)).seq_no == 3


async def test_concurrent_drawers_never_oversell(kit: Kit) -> None:
    slot = kit.schedule(DAY, capacity=4, starts=("08:00",)).slots[0].id
    for _ in range(12):
        await request(kit, slot)
    kit.clock.now = RELEASE + dt.timedelta(seconds=11)
    complete = kit.booker.complete_pending
    await asyncio.gather(
        *(kit.booking.lottery.draw_due(complete) for _ in range(4)),
        *(kit.booking.lottery.draw(slot, complete) for _ in range(4)),
    )
    await kit.booking.lottery.draw_due(kit.booker.complete_pending)
    doc = await kit.stock(slot)
    assert doc is not None and doc["booked"] == len(doc["holders"]) == 4
    assert await kit.active_count(slot_id=slot) == 4
    assert (
        await kit.appointments.collection.count_documents({"slot_id": slot, "status": "cancelled"})
        == 8
    )


async def test_first_come_mode_is_unchanged(mongo_db: AsyncDatabase[Document]) -> None:
    kit = await Kit(mongo_db, RELEASE + dt.timedelta(seconds=1)).setup()
    slot = kit.schedule(DAY, capacity=1, starts=("08:00",)).slots[0].id
    _, _, status = await request(kit, slot)
    assert status == "booked"
