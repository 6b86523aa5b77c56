"""候补: freed capacity goes to waiting patients in order, atomically, never oversold."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.contracts.booking import BookParams, WaitlistJoin
from shared.contracts.catalog import BookingRules
from shared.errors import LimitReached, NotFound, SlotFull
from shared.faults import Crash
from shared.storage.mongo import Document
from tests.booking_kit import Kit, local

NOW = local(2026, 12, 1, 9, 0)
TOMORROW = dt.date(2026, 12, 2)


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> Kit:
    return await Kit(mongo_db, NOW).setup()


async def book(kit: Kit, slot_id: str, user: str, patient: str) -> str:
    appointment, _ = await kit.booker.book(
        user, BookParams(slot_id=slot_id, patient_id=patient, idempotency_key=uuid.uuid4().hex)
    )
    return appointment.id


async def wait(kit: Kit, doctor: str = "doc_1", **extra: object) -> tuple[str, str, str]:
    user = f"u_{uuid.uuid4().hex[:8]}"
    patient = kit.patients.add(user)
    entry = await kit.waitlist.join(
        user,
        WaitlistJoin.model_validate(
            {
                "hospital_id": kit.hospital_id,
                "doctor_id": doctor,
                "date_from": TOMORROW,
                "date_to": TOMORROW,
                "patient_id": patient,
                **extra,
            }
        ),
    )
    kit.clock.advance(seconds=1)  # joining order is the promotion order
    return user, patient, entry.id


async def full_slot(kit: Kit, capacity: int) -> tuple[str, list[tuple[str, str]]]:
    slot = kit.schedule(TOMORROW, capacity=capacity, starts=("08:00",)).slots[0].id
    holders = []
    for _ in range(capacity):
        user = f"u_{uuid.uuid4().hex[:8]}"
        holders.append((user, await book(kit, slot, user, kit.patients.add(user))))
    return slot, holders


async def test_three_cancellations_promote_the_first_three_waiting_in_order(kit: Kit) -> None:
    slot, holders = await full_slot(kit, 3)
    waiting = [await wait(kit) for _ in range(5)]
    for user, aid in holders:
        await kit.lifecycle.cancel_by_patient(user, aid)
    states = [await kit.entries.get(entry) for _, _, entry in waiting]
    assert [s["status"] for s in states] == ["promoted"] * 3 + ["waiting"] * 2  # type: ignore[index]
    doc = await kit.stock(slot)
    assert doc is not None and doc["booked"] == 3 and doc["capacity"] == 3
    for state in states[:3]:
        appointment = await kit.appointments.get(state["appointment_id"])  # type: ignore[index]
        assert appointment is not None and appointment["status"] == "booked"
        assert appointment["slot_id"] == slot
    assert kit.publisher.types().count("waitlist.promoted") == 3


async def test_capacity_added_goes_to_the_waiting_first(kit: Kit) -> None:
    slot, _ = await full_slot(kit, 1)
    _, _, first = await wait(kit)
    state = await kit.admin.change_capacity(kit.hospital_id, slot, 2)
    assert (state.capacity, state.remaining) == (3, 1)
    entry = await kit.entries.get(first)
    assert entry is not None and entry["status"] == "promoted"


async def test_an_ineligible_entry_is_skipped_not_lost(mongo_db: AsyncDatabase[Document]) -> None:
    kit = await Kit(mongo_db, NOW, BookingRules(max_active=1)).setup()
    slot, holders = await full_slot(kit, 1)
    busy_user, busy_patient, busy_entry = await wait(kit)
    other = kit.schedule(TOMORROW, department="dep_2", doctor="doc_2").slots[0].id
    await book(kit, other, busy_user, busy_patient)  # now at max_active
    _, _, next_entry = await wait(kit)
    await kit.lifecycle.cancel_by_patient(*holders[0])
    assert (await kit.entries.get(busy_entry))["status"] == "waiting"  # type: ignore[index]
    assert (await kit.entries.get(next_entry))["status"] == "promoted"  # type: ignore[index]


async def test_a_banned_or_full_waiter_cannot_join_beyond_the_limit(kit: Kit) -> None:
    user = "u_many"
    patient = kit.patients.add(user)
    for _ in range(3):
        await kit.waitlist.join(
            user,
            WaitlistJoin(
                hospital_id=kit.hospital_id,
                doctor_id="doc_1",
                date_from=TOMORROW,
                date_to=TOMORROW,
                patient_id=patient,
            ),
        )
    with pytest.raises(LimitReached):
        await kit.waitlist.join(
            user,
            WaitlistJoin(
                hospital_id=kit.hospital_id,
                doctor_id="doc_1",
                date_from=TOMORROW,
                date_to=TOMORROW,
                patient_id=patient,
            ),
        )


async def test_racing_cancellations_and_bookings_never_oversell_nor_skip_the_waiting(
    kit: Kit,
) -> None:
    slot, holders = await full_slot(kit, 6)
    waiting = [await wait(kit) for _ in range(4)]
    outsiders = [(f"u_o{i}", kit.patients.add(f"u_o{i}")) for i in range(10)]
    cancels = [kit.lifecycle.cancel_by_patient(user, aid) for user, aid in holders[:4]]
    grabs = [
        kit.booker.book(u, BookParams(slot_id=slot, patient_id=p, idempotency_key=uuid.uuid4().hex))
        for u, p in outsiders
    ]
    results = await asyncio.gather(*cancels, *grabs, return_exceptions=True)
    grabbed = [r for r in results[4:] if not isinstance(r, Exception)]
    assert all(isinstance(r, SlotFull) for r in results[4:] if isinstance(r, Exception))
    assert grabbed == []  # every freed unit went to a waiting patient
    states = [await kit.entries.get(e) for _, _, e in waiting]
    assert [s["status"] for s in states] == ["promoted"] * 4  # type: ignore[index]
    doc = await kit.stock(slot)
    active = await kit.active_count(slot_id=slot)
    assert doc is not None and doc["booked"] == len(doc["holders"]) == active == 6


async def test_a_crash_after_the_hand_over_leaves_the_slot_free_and_the_entry_waiting(
    kit: Kit,
) -> None:
    slot, holders = await full_slot(kit, 1)
    _, _, entry = await wait(kit)
    user, aid = holders[0]

    kit.faults.arm("book.after_hold")  # the process dies right after the hand-over
    with pytest.raises(Crash):
        await kit.lifecycle.cancel_by_patient(user, aid)
    kit.faults.disarm()
    kit.clock.advance(seconds=61)
    await kit.booking.reconciler.run_once()
    doc = await kit.stock(slot)
    state = await kit.entries.get(entry)
    assert doc is not None and state is not None
    promoted = state["status"] == "promoted" and doc["booked"] == 1
    free_and_waiting = state["status"] == "waiting" and doc["booked"] == 0
    assert promoted or free_and_waiting, (state["status"], doc["booked"], doc["holders"])
    assert doc["booked"] == len(doc["holders"]) == await kit.active_count(slot_id=slot)


async def test_joining_without_hospital_id_derives_it_from_the_doctor_or_department(
    kit: Kit,
) -> None:
    kit.schedule(TOMORROW, doctor="doc_derived", department="dep_derived")
    for target in ({"doctor_id": "doc_derived"}, {"department_id": "dep_derived"}):
        user = f"u_{uuid.uuid4().hex[:8]}"
        entry = await kit.waitlist.join(
            user,
            WaitlistJoin.model_validate(
                {
                    **target,
                    "date_from": TOMORROW,
                    "date_to": TOMORROW,
                    "patient_id": kit.patients.add(user),
                }
            ),
        )
        assert entry.hospital_id == kit.hospital_id
    with pytest.raises(NotFound):
        await kit.waitlist.join(
            "u_x",
            WaitlistJoin.model_validate(
                {
                    "doctor_id": "doc_unknown",
                    "date_from": TOMORROW,
                    "date_to": TOMORROW,
                    "patient_id": kit.patients.add("u_x"),
                }
            ),
        )


async def test_waiting_count_counts_only_waiting_entries_of_the_user(kit: Kit) -> None:
    user, _, entry = await wait(kit)
    await wait(kit)  # someone else
    assert await kit.waitlist.waiting_count(user) == 1
    await kit.waitlist.cancel(user, entry)
    assert await kit.waitlist.waiting_count(user) == 0
