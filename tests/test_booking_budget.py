"""The store-operation budget of a booking decision (bench/README.md), counted from the
driver's own command monitoring on the real store: a regression that adds a read or a
write to the hot path fails here.

  refusal of a slot this process saw sold out   0
  success                                        ≤ 4
  lost race (the unit went to someone else)      ≤ 3
  replay of an Idempotency-Key                   1
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.contracts.booking import BookParams
from shared.errors import DomainError, SlotFull
from shared.messaging.events import PLATFORM, new_event
from shared.storage.mongo import Document
from shared.storage.opcount import counting
from tests.booking_kit import Kit, local

NOW = local(2026, 12, 1, 9, 0)
TOMORROW = dt.date(2026, 12, 2)


@pytest.fixture
async def kit(counted_db: AsyncDatabase[Document]) -> Kit:
    return await Kit(counted_db, NOW).setup()


async def registered(kit: Kit, user: str) -> str:
    """A profile booking heard of the way it does in production: auth's events."""
    pid = kit.patients.add(user)
    ref = await kit.patients.resolve(user, pid)
    event = new_event(
        "patient.registered",
        PLATFORM,
        {
            "patient": {
                "id": ref.id,
                "user_id": user,
                "id_hash": ref.id_hash,
                "name": ref.name,
                "id_number_masked": ref.id_number_masked,
            }
        },
    )
    await kit.booking.events.patient_changed(event)  # the projection (one replica)
    await kit.booking.events.refresh_views(event)  # every replica's memory
    return pid


def params(slot: str, patient: str, key: str | None = None) -> BookParams:
    return BookParams(slot_id=slot, patient_id=patient, idempotency_key=key or uuid.uuid4().hex)


async def warm(kit: Kit, slot: str) -> None:
    """Booking has seen the slot and the hospital's rules once (every process does)."""
    await kit.booking.session_book.slot(slot)
    await kit.booking.rules.rules(kit.hospital_id)


async def test_a_success_costs_at_most_four_store_operations(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=5).slots[0].id
    await warm(kit, slot)
    for n in range(3):
        user = f"u_{n}"
        patient = await registered(kit, user)
        with counting() as ops:
            appointment, created = await kit.booker.book(user, params(slot, patient))
        assert created and appointment.status == "booked"
        assert len(ops) <= 4, ops
        assert ops == ["find", "findAndModify", "findAndModify", "insert"]


async def test_refusing_a_slot_seen_sold_out_costs_nothing(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=1).slots[0].id
    await warm(kit, slot)
    await kit.booker.book("u_a", params(slot, await registered(kit, "u_a")))
    late = [(f"u_l{n}", await registered(kit, f"u_l{n}")) for n in range(5)]
    with pytest.raises(SlotFull):  # the first refusal learns it is sold out
        await kit.booker.book(late[0][0], params(slot, late[0][1]))
    for user, patient in late[1:]:
        with counting() as ops, pytest.raises(SlotFull):
            await kit.booker.book(user, params(slot, patient))
        assert ops == []


async def test_a_lost_race_costs_at_most_three(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=1).slots[0].id
    await warm(kit, slot)
    racers = [(f"u_r{n}", await registered(kit, f"u_r{n}")) for n in range(8)]
    tallies: list[list[str]] = []
    outcomes: list[object] = []

    async def attempt(user: str, patient: str) -> None:
        with counting() as ops:
            try:
                outcomes.append(await kit.booker.book(user, params(slot, patient)))
            except DomainError as exc:
                outcomes.append(exc)
        tallies.append(ops)

    await asyncio.gather(*(attempt(u, p) for u, p in racers))
    lost = [ops for ops, out in zip(tallies, outcomes, strict=True) if isinstance(out, SlotFull)]
    won = [
        ops for ops, out in zip(tallies, outcomes, strict=True) if not isinstance(out, Exception)
    ]
    assert len(won) == 1 and len(lost) == 7
    assert all(len(ops) <= 4 for ops in won)
    assert all(len(ops) <= 3 for ops in lost), lost


async def test_a_replay_costs_one_read_and_books_nothing(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=1).slots[0].id
    await warm(kit, slot)
    patient = await registered(kit, "u_p")
    key = uuid.uuid4().hex
    first, _ = await kit.booker.book("u_p", params(slot, patient, key))
    for _ in range(2):  # the slot is sold out now: a replay still gets its appointment
        with counting() as ops:
            again, created = await kit.booker.book("u_p", params(slot, patient, key))
        assert ops == ["find"] and not created and again == first


async def test_a_profile_booking_never_heard_of_is_read_through_once(kit: Kit) -> None:
    first_slot = kit.schedule(TOMORROW, capacity=5, department="d1").slots[0].id
    second_slot = kit.schedule(TOMORROW, capacity=5, department="d2").slots[0].id
    for slot in (first_slot, second_slot):
        await warm(kit, slot)
    patient = kit.patients.add("u_new")  # no event reached booking
    with counting() as cold:
        first, _ = await kit.booker.book("u_new", params(first_slot, patient))
    with counting() as warm_ops:
        second, _ = await kit.booker.book("u_new", params(second_slot, patient))
    assert first.status == second.status == "booked"
    assert len(cold) > 4 and len(warm_ops) <= 4, (cold, warm_ops)
