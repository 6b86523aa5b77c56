"""Booking rules and invariants on the real store (no broker: neighbours are stubs)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.contracts.booking import BookParams
from shared.contracts.catalog import BookingRules
from shared.errors import (
    AlreadyBooked,
    BookingClosed,
    BookingNotOpen,
    CancelDeadlinePassed,
    DomainError,
    IdempotencyKeyReused,
    InvalidState,
    LimitReached,
    NotFound,
    PatientBanned,
    ScheduleStopped,
    SlotFull,
)
from shared.faults import Crash
from shared.storage.mongo import Document
from tests.booking_kit import Kit, local

TODAY = dt.date(2026, 12, 1)
NOW = local(2026, 12, 1, 9, 0)
TOMORROW = TODAY + dt.timedelta(days=1)
LATER = TODAY + dt.timedelta(days=2)


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> Kit:
    return await Kit(mongo_db, NOW).setup()


def key() -> str:
    return uuid.uuid4().hex


async def book(
    kit: Kit,
    slot_id: str,
    user: str | None = None,
    patient: str | None = None,
    idem: str | None = None,
) -> dict[str, Any]:
    user = user or f"u_{uuid.uuid4().hex[:8]}"
    patient = patient or kit.patients.add(user)
    appointment, _ = await kit.booker.book(
        user, BookParams(slot_id=slot_id, patient_id=patient, idempotency_key=idem or key())
    )
    return appointment.model_dump(mode="json")


async def test_booking_takes_a_unit_and_numbers_the_visit(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=2)
    slot = schedule.slots[0].id
    first = await book(kit, slot)
    second = await book(kit, slot)
    assert (first["seq_no"], second["seq_no"]) == (1, 2)
    assert first["status"] == "booked" and first["cancel_deadline"].endswith("+08:00")
    availability = await kit.admin.availability([schedule.id])
    assert availability.items[0].slots[0].remaining == 0
    assert kit.publisher.types() == ["appointment.booked", "appointment.booked"]
    event = kit.publisher.events[0]
    assert event.routing_key == f"appointment.booked.{kit.hospital_id}"
    assert event.data["appointment"]["patient"]["id_number_masked"] == "1101**********002X"


async def test_full_slot_is_refused(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=1).slots[0].id
    await book(kit, slot)
    with pytest.raises(SlotFull):
        await book(kit, slot)


async def test_many_concurrent_bookings_never_oversell(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=7)
    slot = schedule.slots[0].id
    results = await asyncio.gather(*(book(kit, slot) for _ in range(40)), return_exceptions=True)
    booked = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, SlotFull)]
    assert len(booked) == 7 and len(refused) == 33
    assert sorted(b["seq_no"] for b in booked) == list(range(1, 8))
    doc = await kit.stock(slot)
    assert doc is not None and doc["booked"] == 7 and len(set(doc["holders"])) == 7


async def test_one_person_one_department_one_day_even_when_racing(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=50, starts=("08:00", "08:30", "09:00"))
    user = "u_racer"
    patient = kit.patients.add(user)
    attempts = [book(kit, schedule.slots[i % 3].id, user, patient) for i in range(20)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, AlreadyBooked) for r in results if not isinstance(r, dict))


async def test_the_rule_follows_the_person_not_the_account(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=5).slots[0].id
    await book(kit, slot, "u_a", kit.patients.add("u_a", "same-person"))
    with pytest.raises(AlreadyBooked):
        await book(kit, slot, "u_b", kit.patients.add("u_b", "same-person"))


async def test_same_idempotency_key_concurrently_books_once(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=5).slots[0].id
    user, patient, idem = "u_idem", kit.patients.add("u_idem"), key()
    params = BookParams(slot_id=slot, patient_id=patient, idempotency_key=idem)
    results = await asyncio.gather(*(kit.booker.book(user, params) for _ in range(10)))
    assert len({a.id for a, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    doc = await kit.stock(slot)
    assert doc is not None and doc["booked"] == 1


async def test_same_key_with_another_body_is_refused(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=5)
    user, patient, idem = "u_k", kit.patients.add("u_k"), key()
    await kit.booker.book(
        user, BookParams(slot_id=schedule.slots[0].id, patient_id=patient, idempotency_key=idem)
    )
    with pytest.raises(IdempotencyKeyReused):
        await kit.booker.book(
            user, BookParams(slot_id=schedule.slots[1].id, patient_id=patient, idempotency_key=idem)
        )


async def test_cancel_returns_capacity_exactly_once(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=1)
    slot = schedule.slots[0].id
    user = "u_c"
    appointment = await book(kit, slot, user)
    results = await asyncio.gather(
        *(kit.lifecycle.cancel_by_patient(user, str(appointment["id"])) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, InvalidState) for r in results if isinstance(r, Exception))
    doc = await kit.stock(slot)
    assert doc is not None and doc["booked"] == 0 and doc["holders"] == []
    await book(kit, slot)  # the unit is bookable again
    assert kit.publisher.types().count("appointment.cancelled") == 1


async def test_cancel_after_the_deadline_is_refused(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=1, starts=("08:00",)).slots[0].id
    appointment = await book(kit, slot, "u_d")
    kit.clock.now = local(2026, 12, 2, 6, 1)  # 08:00 minus 2 h has passed
    with pytest.raises(CancelDeadlinePassed):
        await kit.lifecycle.cancel_by_patient("u_d", str(appointment["id"]))


async def test_release_time_and_window(kit: Kit) -> None:
    far = TODAY + dt.timedelta(days=7)
    slot = kit.schedule(far, capacity=1).slots[0].id
    kit.clock.now = local(2026, 12, 1, 7, 59)
    with pytest.raises(BookingNotOpen) as exc:
        await book(kit, slot)
    assert exc.value.details["until"] == "2026-12-01T08:00:00+08:00"
    kit.clock.now = local(2026, 12, 1, 8, 0)
    await book(kit, slot)


async def test_same_day_booking_stops_at_the_stop_time(kit: Kit) -> None:
    slot = kit.schedule(TODAY, "pm", capacity=3, starts=("16:00",)).slots[0].id
    kit.clock.now = local(2026, 12, 1, 15, 59)
    await book(kit, slot)
    kit.clock.now = local(2026, 12, 1, 16, 0)
    with pytest.raises(BookingClosed):
        await book(kit, slot)


async def test_max_active_appointments(mongo_db: AsyncDatabase[Document]) -> None:
    kit = await Kit(mongo_db, NOW, BookingRules(max_active=2)).setup()
    user, patient = "u_m", kit.patients.add("u_m")
    for dep in ("d1", "d2"):
        await book(kit, kit.schedule(TOMORROW, department=dep).slots[0].id, user, patient)
    with pytest.raises(LimitReached):
        await book(kit, kit.schedule(TOMORROW, department="d3").slots[0].id, user, patient)
    eligibility = await kit.queries.eligibility(
        user, kit.schedule(TOMORROW, department="d4").slots[0].id, patient
    )
    assert not eligibility.eligible and [r.code for r in eligibility.reasons] == ["LIMIT_REACHED"]


async def test_no_shows_ban_the_person(mongo_db: AsyncDatabase[Document]) -> None:
    kit = await Kit(mongo_db, NOW, BookingRules(no_show_limit=2, ban_days=30)).setup()
    user, patient = "u_n", kit.patients.add("u_n", "banned-person")
    missed = [
        await book(kit, kit.schedule(TOMORROW, department=dep).slots[0].id, user, patient)
        for dep in ("d1", "d2")
    ]
    with pytest.raises(InvalidState):  # not before the slot has ended
        await kit.lifecycle.mark_no_show(kit.hospital_id, str(missed[0]["id"]))
    kit.clock.now = local(2026, 12, 2, 12, 0)
    for a in missed:
        await kit.lifecycle.mark_no_show(kit.hospital_id, str(a["id"]))
    slot = kit.schedule(TOMORROW + dt.timedelta(days=1), department="d3").slots[0].id
    with pytest.raises(PatientBanned) as exc:
        await book(kit, slot, user, patient)
    assert exc.value.details["until"] == "2027-01-02T00:00:00+08:00"
    other_account = kit.patients.add("u_other", "banned-person")
    eligibility = await kit.queries.eligibility("u_other", slot, other_account)
    assert "PATIENT_BANNED" in [r.code for r in eligibility.reasons]


async def test_eligibility_lists_every_blocking_rule(kit: Kit) -> None:
    schedule = kit.schedule(TODAY + dt.timedelta(days=8), capacity=0)
    user, patient = "u_e", kit.patients.add("u_e")
    result = await kit.queries.eligibility(user, schedule.slots[0].id, patient)
    codes = {r.code: r.until for r in result.reasons}
    assert codes.keys() == {"BOOKING_NOT_OPEN", "SLOT_FULL"}
    assert codes["BOOKING_NOT_OPEN"] == "2026-12-02T08:00:00+08:00"


async def test_stop_cancels_everything_and_refuses_new_bookings(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=10)
    booked = [await book(kit, schedule.slots[0].id) for _ in range(3)]
    result = await kit.admin.stop(kit.hospital_id, schedule.id, "医生出差")
    assert result.cancelled == 3
    for a in booked:
        doc = await kit.appointments.get(str(a["id"]))
        assert doc is not None and doc["status"] == "cancelled"
        assert doc["cancelled_by"] == "hospital" and "医生出差" in doc["reason"]
    with pytest.raises(ScheduleStopped):
        await book(kit, schedule.slots[1].id)
    assert kit.publisher.types().count("schedule.stopped") == 1


async def test_stop_racing_bookings_leaves_nothing_booked(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=30, starts=("08:00",))
    slot = schedule.slots[0].id
    bookings = [book(kit, slot) for _ in range(30)]
    stop = kit.admin.stop(kit.hospital_id, schedule.id, "停诊")
    await asyncio.gather(*bookings[:10], stop, *bookings[10:], return_exceptions=True)
    await asyncio.sleep(0)
    left = await kit.active_count(schedule_id=schedule.id)
    assert left == 0


async def test_capacity_change_never_below_booked(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=2)
    slot = schedule.slots[0].id
    await book(kit, slot)
    await book(kit, slot)
    with pytest.raises(DomainError) as exc:
        await kit.admin.change_capacity(kit.hospital_id, slot, -1)
    assert exc.value.code == "INVALID_STATE"
    state = await kit.admin.change_capacity(kit.hospital_id, slot, 3)
    assert (state.capacity, state.remaining) == (5, 3)
    await book(kit, slot)


async def test_move_takes_the_new_slot_before_releasing_the_old(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=1, starts=("08:00", "08:30"))
    old, new = schedule.slots[0].id, schedule.slots[1].id
    moving = await book(kit, old)
    blocker = await book(kit, new)
    with pytest.raises(SlotFull):
        await kit.lifecycle.move_by_hospital(kit.hospital_id, str(moving["id"]), new)
    assert (await kit.appointments.get(str(moving["id"])))["slot_id"] == old  # type: ignore[index]
    await kit.lifecycle.cancel_by_hospital(kit.hospital_id, str(blocker["id"]), "换人")
    moved = await kit.lifecycle.move_by_hospital(kit.hospital_id, str(moving["id"]), new)
    assert moved.slot_id == new and moved.start == "08:30" and moved.seq_no == 3
    old_doc, new_doc = await kit.stock(old), await kit.stock(new)
    assert old_doc["booked"] == 0 and new_doc["booked"] == 1
    assert "appointment.rescheduled" in kit.publisher.types()


async def test_other_hospital_and_other_user_see_not_found(kit: Kit) -> None:
    a = await book(kit, kit.schedule(TOMORROW).slots[0].id, "u_owner")
    with pytest.raises(NotFound):
        await kit.queries.get_for_user("u_stranger", str(a["id"]))
    with pytest.raises(NotFound):
        await kit.lifecycle.cancel_by_hospital("h_other", str(a["id"]), None)


async def test_a_booking_that_died_after_its_reservation_is_returned_by_the_reconciler(
    kit: Kit,
) -> None:
    slot = kit.schedule(TOMORROW, capacity=1).slots[0].id
    kit.faults.arm("book.after_reserve")  # the process dies holding the unit, nothing else
    with pytest.raises(Crash):
        await book(kit, slot)
    kit.faults.disarm()
    with pytest.raises(SlotFull):
        await book(kit, slot)
    kit.clock.advance(seconds=61)
    assert await kit.booking.reconciler.run_once() >= 1
    kit.booking.sold_out.freed(slot)  # another process would not have seen it sold out
    await book(kit, slot)


async def test_end_of_day_marks_past_booked_as_no_show(kit: Kit) -> None:
    a = await book(kit, kit.schedule(TOMORROW).slots[0].id)
    kit.clock.now = local(2026, 12, 3, 0, 5)
    assert await kit.booking.end_of_day.run_once() == 1
    doc = await kit.appointments.get(str(a["id"]))
    assert doc is not None and doc["status"] == "no_show"
    assert "appointment.no_show" in kit.publisher.types()


async def test_eligibility_explains_closed_stopped_and_already_booked(kit: Kit) -> None:
    user, patient = "u_x", kit.patients.add("u_x")
    today = kit.schedule(TODAY, "am", starts=("08:30",))
    closed = await kit.queries.eligibility(user, today.slots[0].id, patient)
    assert [r.code for r in closed.reasons] == ["BOOKING_CLOSED"]
    schedule = kit.schedule(TOMORROW, starts=("08:00", "08:30"))
    await book(kit, schedule.slots[0].id, user, patient)
    again = await kit.queries.eligibility(user, schedule.slots[1].id, patient)
    assert [r.code for r in again.reasons] == ["ALREADY_BOOKED"]
    await kit.admin.stop(kit.hospital_id, schedule.id, "停诊")
    stopped = await kit.queries.eligibility(user, schedule.slots[1].id, patient)
    assert [r.code for r in stopped.reasons] == ["SCHEDULE_STOPPED"]


async def test_a_deleted_profile_can_never_book_even_from_a_warm_memory(kit: Kit) -> None:
    schedule = kit.schedule(TOMORROW, capacity=5, starts=("08:00", "08:30"))
    user, patient = "u_del", kit.patients.add("u_del")
    first = await book(kit, schedule.slots[0].id, user, patient)  # memory and projection warm
    await kit.lifecycle.cancel_by_patient(user, str(first["id"]))
    ref = await kit.patients.resolve(user, patient)
    other_replica = kit.booking.patients  # keeps its memory: only the store knows
    await kit.booking.patient_projection.delete(patient)
    await kit.persons.forget_profile(ref.id_hash, patient)  # what forget_patient does
    with pytest.raises(NotFound):
        await kit.booker.book(
            user,
            BookParams(slot_id=schedule.slots[1].id, patient_id=patient, idempotency_key=key()),
        )
    assert not other_replica.knows(patient)  # and it learnt
    assert await kit.persons.add_profile(ref.id_hash, patient, user) is False  # for good


async def test_active_count_for_user_counts_booked_visits_from_today_on(kit: Kit) -> None:
    user = "u_active"
    kept = await book(kit, kit.schedule(TOMORROW, department="d_a").slots[0].id, user)
    cancelled = await book(kit, kit.schedule(TOMORROW, department="d_b").slots[0].id, user)
    await kit.lifecycle.cancel_by_patient(user, str(cancelled["id"]))
    await book(kit, kit.schedule(TOMORROW, department="d_c").slots[0].id, "u_someone_else")
    assert await kit.queries.active_count_for_user(user) == 1
    kit.clock.now = local(2026, 12, 3, 9, 0)  # the visit day is over
    assert await kit.queries.active_count_for_user(user) == 0
    assert kept["status"] == "booked"


async def test_check_in_only_on_the_visit_day(kit: Kit) -> None:
    a = await book(kit, kit.schedule(TOMORROW).slots[0].id)
    with pytest.raises(InvalidState) as early:
        await kit.lifecycle.check_in(kit.hospital_id, str(a["id"]))
    assert early.value.details == {"date": "2026-12-02"}
    kit.clock.now = local(2026, 12, 2, 0, 1)
    checked = await kit.lifecycle.check_in(kit.hospital_id, str(a["id"]))
    assert checked.status == "checked_in"
    late = await book(kit, kit.schedule(LATER, department="d_late").slots[0].id)
    kit.clock.now = local(2026, 12, 4, 7, 0)  # the day after: too late to check in
    with pytest.raises(InvalidState):
        await kit.lifecycle.check_in(kit.hospital_id, str(late["id"]))


async def test_no_show_only_after_the_booked_slice_ended(kit: Kit) -> None:
    a = await book(kit, kit.schedule(TOMORROW, starts=("08:00",)).slots[0].id)
    kit.clock.now = local(2026, 12, 2, 8, 29)
    with pytest.raises(InvalidState) as early:
        await kit.lifecycle.mark_no_show(kit.hospital_id, str(a["id"]))
    assert early.value.details == {"ends_at": "2026-12-02T08:30:00+08:00"}
    assert kit.publisher.types().count("appointment.no_show") == 0
    kit.clock.now = local(2026, 12, 2, 8, 30)
    assert (await kit.lifecycle.mark_no_show(kit.hospital_id, str(a["id"]))).status == "no_show"


async def test_patient_moves_own_appointment_new_slot_taken_before_the_old_is_freed(
    kit: Kit,
) -> None:
    user = "u_move"
    patient = kit.patients.add(user)
    first = kit.schedule(TOMORROW, capacity=1)
    later = kit.schedule(LATER, capacity=1)
    a = await book(kit, first.slots[0].id, user, patient)
    moved = await kit.lifecycle.move_by_patient(user, str(a["id"]), later.slots[0].id)
    assert (moved.slot_id, str(moved.date), moved.status) == (
        later.slots[0].id,
        "2026-12-03",
        "booked",
    )
    assert (await kit.stock(first.slots[0].id))["booked"] == 0
    assert (await kit.stock(later.slots[0].id))["booked"] == 1
    assert "appointment.rescheduled" in kit.publisher.types()
    # the freed day is bookable again in that department for the same person
    await book(kit, kit.schedule(TOMORROW, capacity=1).slots[0].id, user, patient)


async def test_patient_move_follows_the_booking_rules(kit: Kit) -> None:
    user = "u_move2"
    a = await book(kit, kit.schedule(TOMORROW, capacity=1).slots[0].id, user)
    full = kit.schedule(TOMORROW, capacity=1, starts=("10:00",))
    await book(kit, full.slots[0].id)
    with pytest.raises(SlotFull):
        await kit.lifecycle.move_by_patient(user, str(a["id"]), full.slots[0].id)
    far = kit.schedule(TODAY + dt.timedelta(days=9), capacity=1)  # beyond the 7-day window
    with pytest.raises(BookingNotOpen):
        await kit.lifecycle.move_by_patient(user, str(a["id"]), far.slots[0].id)
    other = kit.schedule(TOMORROW, capacity=1, department="d_other", doctor="doc_other")
    with pytest.raises(DomainError) as wrong:
        await kit.lifecycle.move_by_patient(user, str(a["id"]), other.slots[0].id)
    assert wrong.value.code == "VALIDATION_FAILED"
    with pytest.raises(NotFound):
        await kit.lifecycle.move_by_patient("u_stranger", str(a["id"]), full.slots[0].id)
    kit.clock.now = local(2026, 12, 2, 6, 1)  # past the cancel deadline
    with pytest.raises(CancelDeadlinePassed):
        await kit.lifecycle.move_by_patient(user, str(a["id"]), full.slots[0].id)
    doc = await kit.appointments.get(str(a["id"]))
    assert doc is not None and doc["slot_id"] != full.slots[0].id and "move" not in doc
