"""Booking's side of the registration fee (issue 13) on the real store: `pending_payment`
within the booking budget, paid → booked once, unpaid at `pay_by` → cancelled by the system
with the unit back exactly once, and the fee's fate projected onto the appointment."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.booking.fhir import appointment_resource
from services.catalog.repository import CatalogRepository
from services.catalog.stats import StatsRepository, StatsService
from shared.context import Caller
from shared.contracts.booking import BookParams, WaitlistJoin
from shared.contracts.catalog import BookingRules
from shared.contracts.payment import order_id_for, refund_no_for
from shared.contracts.scheduling import StatsQuery
from shared.errors import DomainError, NotFound
from shared.faults import Crash
from shared.messaging.events import new_event
from shared.storage.mongo import Document
from shared.storage.opcount import counting
from tests.booking_kit import Kit, local
from tests.test_booking_budget import registered, warm

NOW = local(2026, 12, 1, 9, 0)
TOMORROW = dt.date(2026, 12, 2)
PAYING = BookingRules(payment="required", payment_timeout_minutes=10)


@pytest.fixture
async def kit(counted_db: AsyncDatabase[Document]) -> Kit:
    return await Kit(counted_db, NOW, PAYING).setup()


def params(slot: str, patient: str) -> BookParams:
    return BookParams(slot_id=slot, patient_id=patient, idempotency_key=uuid.uuid4().hex)


def paid_event(kit: Kit, aid: str, user: str) -> object:
    return new_event(
        "payment.succeeded",
        kit.hospital_id,
        {
            "payment": {
                "order_id": order_id_for(aid),
                "appointment_id": aid,
                "user_id": user,
                "amount_cents": 5000,
                "status": "paid",
                "transaction_id": "4200000001",
            }
        },
    )


def refunded_event(kit: Kit, aid: str, user: str) -> object:
    return new_event(
        "payment.refunded",
        kit.hospital_id,
        {
            "payment": {
                "order_id": order_id_for(aid),
                "appointment_id": aid,
                "user_id": user,
                "amount_cents": 5000,
                "status": "refunded",
            },
            "refund": {
                "out_refund_no": refund_no_for(order_id_for(aid)),
                "amount_cents": 5000,
                "reason": "x",
            },
        },
    )


async def book_one(kit: Kit, user: str = "u_1", capacity: int = 2) -> tuple[str, str]:
    slot = kit.schedule(TOMORROW, capacity=capacity).slots[0].id
    await warm(kit, slot)
    appointment, _ = await kit.booker.book(user, params(slot, await registered(kit, user)))
    return appointment.id, slot


async def test_booking_at_a_paying_hospital_waits_for_the_fee_within_the_budget(kit: Kit) -> None:
    slot = kit.schedule(TOMORROW, capacity=2).slots[0].id
    await warm(kit, slot)
    patient = await registered(kit, "u_1")
    with counting() as ops:
        appointment, created = await kit.booker.book("u_1", params(slot, patient))
    assert ops == ["find", "findAndModify", "findAndModify", "insert"]
    assert created and appointment.status == "pending_payment"
    assert appointment.payment is not None and appointment.payment.amount_cents == 5000
    assert appointment.payment.order_id == order_id_for(appointment.id)
    assert appointment.payment.status == "unpaid"
    assert appointment.pay_by == (NOW + dt.timedelta(minutes=10)).isoformat(timespec="seconds")
    assert (await kit.stock(slot))["booked"] == 1  # held until pay_by
    await kit.relay.settle()
    assert kit.publisher.types() == ["appointment.pending_payment"]
    data = kit.publisher.events[0].data["appointment"]
    assert data["payment"] == {"order_id": order_id_for(appointment.id), "amount_cents": 5000}
    assert data["pay_by"] == appointment.pay_by


async def test_a_free_hospital_books_at_once(counted_db: AsyncDatabase[Document]) -> None:
    kit = await Kit(counted_db, NOW).setup()
    aid, _ = await book_one(kit)
    assert (await kit.queries.get_for_user("u_1", aid)).status == "booked"


async def test_payment_books_once_with_the_confirmation(kit: Kit) -> None:
    aid, slot = await book_one(kit)
    for _ in range(2):  # a redelivered event changes nothing more
        await kit.booking.fees.on_event(paid_event(kit, aid, "u_1"))  # type: ignore[arg-type]
    view = await kit.queries.get_for_user("u_1", aid)
    assert view.status == "booked" and view.payment is not None
    assert view.payment.status == "paid" and view.pay_by is None
    await kit.relay.settle()
    assert kit.publisher.types().count("appointment.booked") == 1
    assert await kit.booking.fees.expire_unpaid() == 0
    kit.clock.advance(minutes=11)
    assert await kit.booking.fees.expire_unpaid() == 0  # paid: never expires
    assert (await kit.stock(slot))["booked"] == 1


async def test_unpaid_at_pay_by_is_cancelled_once_and_the_unit_returns_once(kit: Kit) -> None:
    aid, slot = await book_one(kit)
    kit.clock.advance(minutes=9)
    assert await kit.booking.fees.expire_unpaid() == 0
    kit.clock.advance(minutes=2)
    assert await kit.booking.fees.expire_unpaid() == 1
    assert await kit.booking.fees.expire_unpaid() == 0
    view = await kit.queries.get_for_user("u_1", aid)
    assert (view.status, view.cancelled_by, view.reason) == ("cancelled", "system", "unpaid")
    assert view.payment is not None and view.payment.status == "closed"
    assert (await kit.stock(slot))["booked"] == 0
    # the fee arrives after all: booking stays cancelled and shows the refund
    await kit.booking.fees.on_event(paid_event(kit, aid, "u_1"))  # type: ignore[arg-type]
    view = await kit.queries.get_for_user("u_1", aid)
    assert view.status == "cancelled" and view.payment is not None
    assert view.payment.status == "refunding" and view.refund is not None
    assert view.refund.status == "processing"
    await kit.booking.fees.on_event(refunded_event(kit, aid, "u_1"))  # type: ignore[arg-type]
    await kit.booking.fees.on_event(paid_event(kit, aid, "u_1"))  # type: ignore[arg-type]
    view = await kit.queries.get_for_user("u_1", aid)
    assert view.payment is not None and view.payment.status == "refunded"
    assert view.refund is not None and view.refund.status == "succeeded"
    assert (await kit.stock(slot))["booked"] == 0
    await kit.relay.settle()
    assert "appointment.booked" not in kit.publisher.types()


async def test_expiry_racing_the_payment_has_one_winner(kit: Kit) -> None:
    aid, slot = await book_one(kit)
    kit.clock.advance(minutes=11)
    doc = await kit.appointments.get(aid)
    assert doc is not None
    await kit.booking.fees.on_event(paid_event(kit, aid, "u_1"))  # type: ignore[arg-type]
    with pytest.raises(DomainError):  # the expiry decided from the stale read loses
        await kit.lifecycle.cancel(doc, "system", "unpaid")
    assert (await kit.queries.get_for_user("u_1", aid)).status == "booked"
    assert (await kit.stock(slot))["booked"] == 1


async def test_patient_cancels_unpaid_and_paid_appointments(kit: Kit) -> None:
    unpaid, slot = await book_one(kit, "u_1")
    view = await kit.lifecycle.cancel_by_patient("u_1", unpaid)
    assert view.status == "cancelled" and view.payment is not None
    assert view.payment.status == "closed"
    paid, _ = await book_one(kit, "u_2")
    await kit.booking.fees.on_event(paid_event(kit, paid, "u_2"))  # type: ignore[arg-type]
    view = await kit.lifecycle.cancel_by_patient("u_2", paid)
    assert view.payment is not None and view.payment.status == "refunding"
    assert view.refund is not None
    assert view.refund.out_refund_no == refund_no_for(order_id_for(paid))


async def test_stopping_a_session_cancels_unpaid_appointments_too(kit: Kit) -> None:
    aid, slot = await book_one(kit)
    schedule_id = await kit.sessions.schedule_of(slot)
    assert schedule_id is not None
    await kit.admin.stop(kit.hospital_id, schedule_id, "医生外出会诊")
    view = await kit.queries.get_for_user("u_1", aid)
    assert (view.status, view.cancelled_by) == ("cancelled", "hospital")
    assert (await kit.stock(slot))["booked"] == 0


async def test_an_unpaid_appointment_is_a_pending_fhir_appointment(kit: Kit) -> None:
    aid, _ = await book_one(kit)
    resource = appointment_resource(await kit.queries.get_for_user("u_1", aid))
    assert resource.status == "pending"


async def test_statistics_take_unpaid_appointments_and_their_expiry(
    mongo_db: AsyncDatabase[Document],
) -> None:
    store = StatsRepository(mongo_db)
    await store.ensure_indexes()
    catalog = CatalogRepository(mongo_db)
    await catalog.insert_hospital({"_id": "h_p", "name": "x", "version": 1})
    stats = StatsService(store, catalog, lambda: NOW)
    row = {"id": "apt_1", "date": "2026-12-02", "doctor_id": "doc_1", "department_id": "dep_1"}
    await stats.on_event(
        new_event(
            "appointment.pending_payment",
            "h_p",
            {"appointment": {**row, "status": "pending_payment"}},
            at=NOW,
        )
    )
    await stats.on_event(
        new_event(
            "appointment.cancelled",
            "h_p",
            {
                "appointment": {
                    **row,
                    "status": "cancelled",
                    "cancelled_by": "system",
                    "reason": "unpaid",
                }
            },
            at=NOW + dt.timedelta(minutes=15),
        )
    )
    reply = await stats.query(
        Caller(user_id="root", role="platform_admin"),
        StatsQuery.model_validate({"hospital_id": "h_p", "from": "2026-12-02", "to": "2026-12-02"}),
    )
    (item,) = reply.items
    assert (item.booked, item.cancelled_by_system) == (1, 1)


async def test_an_unpaid_unit_goes_to_the_waitlist_which_pays_too(kit: Kit) -> None:
    holder, slot = await book_one(kit, "u_1", capacity=1)
    waiter = kit.patients.add("u_w")
    entry = await kit.waitlist.join(
        "u_w",
        WaitlistJoin.model_validate(
            {
                "hospital_id": kit.hospital_id,
                "doctor_id": "doc_1",
                "date_from": TOMORROW,
                "date_to": TOMORROW,
                "patient_id": waiter,
            }
        ),
    )
    kit.clock.advance(minutes=11)
    assert await kit.booking.fees.expire_unpaid() == 1
    promoted = await kit.entries.get(entry.id)
    assert promoted is not None and promoted["status"] == "promoted"
    view = await kit.queries.get_for_user("u_w", promoted["appointment_id"])
    assert view.status == "pending_payment" and view.payment is not None
    assert view.pay_by == (kit.clock() + dt.timedelta(minutes=10)).isoformat(timespec="seconds")
    assert (await kit.stock(slot))["holders"] == [promoted["appointment_id"]]
    kit.clock.advance(minutes=11)  # the promoted patient does not pay either: back to the pool
    assert await kit.booking.fees.expire_unpaid() == 1
    assert (await kit.stock(slot))["booked"] == 0


async def test_drawn_lottery_entries_of_a_paying_hospital_wait_for_the_fee(
    mongo_db: AsyncDatabase[Document],
) -> None:
    release = local(2026, 12, 1, 8, 0)  # 2026-12-08 opens then
    kit = await Kit(
        mongo_db,
        release + dt.timedelta(seconds=1),
        BookingRules(release_mode="lottery", lottery_window_seconds=10, payment="required"),
    ).setup()
    slot = kit.schedule(dt.date(2026, 12, 8), capacity=2, starts=("08:00",)).slots[0].id
    entries = []
    for n in range(4):
        user = f"u_{n}"
        appointment, _ = await kit.booker.book(user, params(slot, kit.patients.add(user)))
        entries.append((user, appointment.id))
    kit.clock.now = release + dt.timedelta(seconds=11)
    assert await kit.booking.lottery.draw_due(kit.booker.complete_pending) == 2
    views = [await kit.queries.get_for_user(u, a) for u, a in entries]
    assert sorted(v.status for v in views) == [
        "cancelled",
        "cancelled",
        "pending_payment",
        "pending_payment",
    ]
    await kit.relay.settle()
    assert kit.publisher.types().count("appointment.pending_payment") == 2
    assert "appointment.booked" not in kit.publisher.types()
    kit.clock.advance(minutes=16)  # the default payment_timeout_minutes
    assert await kit.booking.fees.expire_unpaid() == 2
    assert (await kit.stock(slot))["booked"] == 0


@pytest.mark.parametrize(
    "point", ["cancelled.after_write", "settle.after_unit", "settle.after_person"]
)
async def test_an_expiry_killed_mid_way_returns_the_unit_once(kit: Kit, point: str) -> None:
    aid, slot = await book_one(kit, capacity=1)
    kit.clock.advance(minutes=11)
    kit.faults.arm(point)
    with pytest.raises(Crash):
        await kit.booking.fees.expire_unpaid()
    kit.faults.disarm()
    kit.clock.advance(seconds=120)  # the next process: its reconciler and expiry job
    await kit.booking.reconciler.run_once()
    assert await kit.booking.fees.expire_unpaid() == 0
    doc = await kit.appointments.get(aid)
    assert doc is not None and doc["status"] == "cancelled" and "owed" not in doc
    assert (await kit.stock(slot))["holders"] == [] and (await kit.stock(slot))["booked"] == 0
    person = await kit.persons.collection.find_one({"holds." + aid: {"$exists": True}})
    assert person is None


async def test_a_profile_heard_of_before_its_person_document_can_book(kit: Kit) -> None:
    """The `views` broadcast can reach a replica before the `patients` consumer wrote the
    person document (seen as NOT_FOUND in a flash crowd of fresh profiles)."""
    slot = kit.schedule(TOMORROW, capacity=2).slots[0].id
    await warm(kit, slot)
    pid = kit.patients.add("u_fresh")
    kit.booking.patients.remember(await kit.patients.resolve("u_fresh", pid))  # memory only
    appointment, created = await kit.booker.book("u_fresh", params(slot, pid))
    assert created and appointment.status == "pending_payment"
    deleted = kit.patients.add("u_gone")
    ref = await kit.patients.resolve("u_gone", deleted)
    await kit.booking.patients.forget(deleted, ref.id_hash)
    kit.booking.patients.remember(ref)  # a stale memory of a deleted profile
    with pytest.raises(NotFound):
        await kit.booker.book("u_gone", params(slot, deleted))
