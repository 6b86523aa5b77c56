"""Kill the process between every pair of writes of 改约, 停诊, 加号, cancel and book, then
let the reconciler run as the next process would: every slot's `booked` equals its holders
and its active appointments, every person's counters equal their active appointments, and
a stopped session takes no booking.

A fault point armed in-process raises `Crash` (a BaseException no clean-up path catches),
so nothing after the point runs — as with `kill -9`. The process's memory is dropped too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.contracts.booking import BookParams, WaitlistJoin
from shared.errors import DomainError, ScheduleStopped
from shared.faults import Crash
from shared.storage.mongo import Document
from tests.booking_kit import Kit, local

NOW = local(2026, 12, 1, 9, 0)
TOMORROW = dt.date(2026, 12, 2)
LATER = dt.date(2026, 12, 3)


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> Kit:
    return await Kit(mongo_db, NOW).setup()


async def book(kit: Kit, slot: str, user: str | None = None) -> tuple[str, str]:
    user = user or f"u_{uuid.uuid4().hex[:8]}"
    appointment, _ = await kit.booker.book(
        user,
        BookParams(
            slot_id=slot, patient_id=kit.patients.add(user), idempotency_key=uuid.uuid4().hex
        ),
    )
    return user, appointment.id


async def recover(kit: Kit) -> None:
    """What the next process does: fresh memory, the reconciler after its grace periods."""
    kit.faults.disarm()
    kit.booking.sold_out._slots.clear()
    kit.clock.advance(seconds=120)
    await kit.booking.reconciler.run_once()
    await kit.booking.reconciler.run_once()


async def assert_consistent(kit: Kit) -> None:
    active = {"pending", "pending_payment", "booked"}
    holding: Counter[str] = Counter()
    per_person: Counter[tuple[str, str]] = Counter()
    per_day: Counter[tuple[str, str]] = Counter()
    async for doc in kit.appointments.collection.find({}):
        if doc["status"] in active:
            holding[doc["slot_id"]] += 1
            per_person[(doc["id_hash"], doc["hospital_id"])] += 1
            per_day[(doc["id_hash"], doc["person_key"])] += 1
        assert "move" not in doc and "owed" not in doc, doc["_id"]
    async for doc in kit.sessions.collection.find({}):
        for slot_id, stock in doc["slots"].items():
            assert stock["booked"] == len(stock["holders"]) == holding[slot_id], (
                slot_id,
                stock,
                holding[slot_id],
            )
            assert stock["booked"] <= stock["capacity"]
        if doc["stopped"]:
            assert sum(holding[s] for s in doc["slots"]) == 0, "a stopped session holds"
    async for person in kit.persons.collection.find({}):
        for hospital_id, n in (person.get("active") or {}).items():
            assert n == per_person[(person["_id"], hospital_id)], (person, per_person)
        for key, n in (person.get("day") or {}).items():
            assert n == per_day[(person["_id"], key)], (person, key)
        assert len(person.get("holds", {})) == sum(
            v for (h, _), v in per_person.items() if h == person["_id"]
        )


BOOK_POINTS = ["book.after_reserve", "book.after_hold", "book.after_insert"]
CANCEL_POINTS = ["cancelled.after_write", "settle.after_unit", "settle.after_person"]
MOVE_POINTS = [
    "move.after_mark",
    "move.after_reserve",
    "move.after_person",
    "move.after_final_write",
    "settle.after_old_unit",
]
STOP_POINTS = ["stop.after_write", "cancelled.after_write", "settle.after_unit"]


@pytest.mark.parametrize("point", BOOK_POINTS)
async def test_book_killed_between_writes(kit: Kit, point: str) -> None:
    slot = kit.schedule(TOMORROW, capacity=2).slots[0].id
    await book(kit, slot)
    kit.faults.arm(point)
    with pytest.raises(Crash):
        await book(kit, slot)
    await recover(kit)
    await assert_consistent(kit)
    stock = await kit.stock(slot)
    if point != "book.after_insert":
        assert stock["booked"] == 1  # the unit of the booking that never came is back
        await book(kit, slot)


@pytest.mark.parametrize("point", CANCEL_POINTS)
async def test_cancel_killed_between_writes(kit: Kit, point: str) -> None:
    slot = kit.schedule(TOMORROW, capacity=1).slots[0].id
    user, aid = await book(kit, slot)
    kit.faults.arm(point)
    with pytest.raises(Crash):
        await kit.lifecycle.cancel_by_patient(user, aid)
    await recover(kit)
    await assert_consistent(kit)
    assert (await kit.stock(slot))["booked"] == 0
    await book(kit, slot, user)  # the person's hold came back too


@pytest.mark.parametrize("point", MOVE_POINTS)
@pytest.mark.parametrize("target_day", [TOMORROW, LATER])
async def test_move_killed_between_writes(kit: Kit, point: str, target_day: dt.date) -> None:
    source = kit.schedule(TOMORROW, capacity=1, starts=("08:00",)).slots[0].id
    target = kit.schedule(target_day, capacity=1, starts=("09:00",)).slots[0].id
    user, aid = await book(kit, source)
    kit.faults.arm(point)
    with pytest.raises(Crash):
        await kit.lifecycle.move_by_hospital(kit.hospital_id, aid, target)
    await recover(kit)
    await assert_consistent(kit)
    doc = await kit.appointments.get(aid)
    assert doc is not None and doc["status"] == "booked"
    on = {
        "source": (await kit.stock(source))["booked"],
        "target": (await kit.stock(target))["booked"],
    }
    assert sorted(on.values()) == [0, 1]
    moved = point in ("move.after_final_write", "settle.after_old_unit")
    assert doc["slot_id"] == (target if moved else source)


@pytest.mark.parametrize("point", STOP_POINTS)
async def test_stop_killed_between_writes(kit: Kit, point: str) -> None:
    schedule = kit.schedule(TOMORROW, capacity=3, starts=("08:00", "08:30"))
    for slot in schedule.slots:
        await book(kit, slot.id)
    kit.faults.arm(point)
    with pytest.raises(Crash):
        await kit.admin.stop(kit.hospital_id, schedule.id, "医生外出")
    await recover(kit)
    await assert_consistent(kit)
    booked = await kit.appointments.booked_of_schedule(schedule.id)
    assert booked == []
    with pytest.raises(ScheduleStopped):
        await book(kit, schedule.slots[0].id)


async def test_capacity_added_to_the_waitlist_killed_after_the_hand_over(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=1, starts=("08:00",)).slots[0].id
    await book(kit, slot)
    user = "u_waiting"
    await kit.waitlist.join(
        user,
        WaitlistJoin.model_validate(
            {
                "hospital_id": kit.hospital_id,
                "doctor_id": "doc_1",
                "date_from": TOMORROW,
                "date_to": TOMORROW,
                "patient_id": kit.patients.add(user),
            }
        ),
    )
    kit.faults.arm("book.after_hold")
    with pytest.raises(Crash):
        await kit.admin.change_capacity(kit.hospital_id, slot, 1)
    await recover(kit)
    await assert_consistent(kit)
    try:  # the entry is waiting again: the next 加号 serves it
        await kit.admin.change_capacity(kit.hospital_id, slot, 1)
    except DomainError:
        pass
    await assert_consistent(kit)
