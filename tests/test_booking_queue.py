"""The live queue (候诊叫号) on the real store: order, late re-insert, rooms calling at once,
recall/skip/done, the ETA from known consult times, the patient's and the display's views,
`queue_near` once, and a kill between any two writes (no broker: neighbours are stubs)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections import Counter

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.booking.queue import DEFAULT_CONSULT_MINUTES
from shared.contracts.booking import BookParams
from shared.contracts.catalog import BookingRules
from shared.contracts.events import EVENT_DATA
from shared.errors import InvalidState, NotFound
from shared.faults import Crash
from shared.storage.mongo import Document
from shared.storage.opcount import counting
from tests.booking_kit import Kit, local

TODAY = dt.date(2026, 12, 1)
YESTERDAY = TODAY - dt.timedelta(days=1)
NOW = local(2026, 12, 1, 7, 0)


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> Kit:
    return await Kit(mongo_db, NOW, rules=BookingRules(late_requeue_after=3)).setup()


async def booked(kit: Kit, slot_id: str, n: int) -> list[tuple[str, str]]:
    """`n` appointments on the slot, in 就诊序号 order: [(user, appointment id)]."""
    out = []
    for _ in range(n):
        user = f"u_{uuid.uuid4().hex[:8]}"
        appointment, _ = await kit.booker.book(
            user,
            BookParams(
                slot_id=slot_id, patient_id=kit.patients.add(user), idempotency_key=uuid.uuid4().hex
            ),
        )
        out.append((user, appointment.id))
    return out


async def session_with(
    kit: Kit,
    n: int,
    *,
    check_in: bool = True,
    date: dt.date = TODAY,
) -> tuple[str, list[str], list[str]]:
    """A session of `date` with `n` booked (and checked-in) patients: (sid, aids, users)."""
    schedule = kit.schedule(date, capacity=n + 5, starts=("08:00",))
    pairs = await booked(kit, schedule.slots[0].id, n)
    if check_in:
        for _, aid in pairs:
            await kit.lifecycle.check_in(kit.hospital_id, aid)
    return schedule.id, [a for _, a in pairs], [u for u, _ in pairs]


async def seq(kit: Kit, aid: str) -> int:
    doc = await kit.appointments.get(aid)
    assert doc is not None
    return int(doc["seq_no"])


async def waiting_ids(kit: Kit, sid: str) -> list[str]:
    view = await kit.booking.queue.view(kit.hospital_id, sid)
    assert [w.position for w in view.waiting] == list(range(1, len(view.waiting) + 1))
    return [w.appointment_id for w in view.waiting]


def events_of(kit: Kit, type_: str) -> list[Document]:
    """The distinct events of a type, in publishing order (the outbox publishes at least
    once: a crash before an event is marked sent publishes it again, with the same id,
    which consumers dedupe)."""
    distinct = {e.id: e for e in kit.publisher.events}
    return [e.data for e in distinct.values() if e.type == type_]


async def test_called_in_seq_no_order_whatever_the_check_in_order(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 4, check_in=False)
    for aid in reversed(aids):
        await kit.lifecycle.check_in(kit.hospital_id, aid)
    assert await waiting_ids(kit, sid) == aids
    desk = kit.booking.queue
    called = [await desk.call_next(kit.hospital_id, sid, None) for _ in aids]
    assert [c.id for c in called] == aids
    assert [c.seq_no for c in called] == [1, 2, 3, 4]
    assert all(c.queue.state == "called" and c.queue.room == "1" for c in called)
    with pytest.raises(InvalidState) as empty:
        await desk.call_next(kit.hospital_id, sid, "2")
    assert empty.value.details == {"queue": "empty"}
    calls = events_of(kit, "queue.called")
    assert [c["queue"]["seq_no"] for c in calls] == [1, 2, 3, 4]
    assert {c["queue"]["room"] for c in calls} == {"1"}
    assert all(c["queue"]["schedule_id"] == sid and c["queue"]["session"] == "am" for c in calls)


async def test_another_hospital_or_session_is_not_found(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 1)
    desk = kit.booking.queue
    with pytest.raises(NotFound):
        await desk.call_next("h_other", sid, None)
    with pytest.raises(NotFound):
        await desk.view(kit.hospital_id, "sch_unknown")
    with pytest.raises(NotFound):
        await desk.display("h_other", sid)
    other_sid, _, _ = await session_with(kit, 1)
    with pytest.raises(NotFound):  # the appointment is not of that session
        await desk.skip(kit.hospital_id, other_sid, aids[0])


async def test_a_skipped_patient_checking_in_again_goes_after_the_next_three(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 6)
    desk = kit.booking.queue
    first = await desk.call_next(kit.hospital_id, sid, None)
    assert first.id == aids[0]
    skipped = await desk.skip(kit.hospital_id, sid, aids[0])
    assert skipped.queue.state == "skipped"
    again = await kit.lifecycle.check_in(kit.hospital_id, aids[0])
    assert again.status == "checked_in"
    assert await waiting_ids(kit, sid) == [aids[1], aids[2], aids[3], aids[0], aids[4], aids[5]]
    requeued = events_of(kit, "queue.requeued")
    assert len(requeued) == 1 and requeued[0]["queue"]["late"] is True
    with pytest.raises(InvalidState):  # waiting already: no second re-queue
        await kit.lifecycle.check_in(kit.hospital_id, aids[0])


async def test_a_patient_whose_number_was_passed_checks_in_late(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 7, check_in=False)
    desk = kit.booking.queue
    for aid in (aids[0], *aids[2:]):
        await kit.lifecycle.check_in(kit.hospital_id, aid)
    assert (await desk.call_next(kit.hospital_id, sid, None)).id == aids[0]
    assert (await desk.call_next(kit.hospital_id, sid, None)).id == aids[2]  # №2 not here
    await kit.lifecycle.check_in(kit.hospital_id, aids[1])  # №2 arrives after №3's call
    assert await waiting_ids(kit, sid) == [aids[3], aids[4], aids[5], aids[1], aids[6]]
    view = await desk.view(kit.hospital_id, sid)
    assert [w.late for w in view.waiting] == [False, False, False, True, False]


async def test_fewer_waiting_than_the_rule_puts_the_late_patient_last(
    mongo_db: AsyncDatabase[Document],
) -> None:
    kit = await Kit(mongo_db, NOW, rules=BookingRules(late_requeue_after=0)).setup()
    sid, aids, _ = await session_with(kit, 3)
    desk = kit.booking.queue
    await desk.call_next(kit.hospital_id, sid, None)
    await desk.skip(kit.hospital_id, sid, aids[0])
    await kit.lifecycle.check_in(kit.hospital_id, aids[0])
    assert await waiting_ids(kit, sid) == [aids[0], aids[1], aids[2]]  # rule 0: at once
    kit3 = await Kit(mongo_db, NOW, rules=BookingRules(late_requeue_after=5)).setup()
    sid, aids, _ = await session_with(kit3, 3)
    await kit3.booking.queue.call_next(kit3.hospital_id, sid, None)
    await kit3.booking.queue.skip(kit3.hospital_id, sid, aids[0])
    await kit3.lifecycle.check_in(kit3.hospital_id, aids[0])
    assert await waiting_ids(kit3, sid) == [aids[1], aids[2], aids[0]]


async def test_the_rule_is_validated() -> None:
    with pytest.raises(ValueError):
        BookingRules(late_requeue_after=-1)
    with pytest.raises(ValueError):
        BookingRules(late_requeue_after=51)
    assert BookingRules().late_requeue_after == 3


async def test_rooms_calling_at_once_never_share_a_patient(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 6)
    desk = kit.booking.queue
    results = await asyncio.gather(
        *[desk.call_next(kit.hospital_id, sid, room) for room in ("1", "2", "3") * 3],
        return_exceptions=True,
    )
    called = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert sorted(c.id for c in called) == sorted(aids)  # each patient exactly once
    assert len(refused) == 3 and all(isinstance(r, InvalidState) for r in refused)
    assert Counter(e["appointment"]["id"] for e in events_of(kit, "queue.called")) == Counter(aids)
    view = await desk.view(kit.hospital_id, sid)
    assert len(view.now_serving) == 6 and view.waiting == []
    assert {r.room for r in view.rooms} == {c.queue.room for c in called}


async def test_recall_skip_and_what_each_refuses(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 3)
    desk = kit.booking.queue
    await desk.call_next(kit.hospital_id, sid, "3诊室")
    recalled = await desk.recall(kit.hospital_id, sid, aids[0], None)
    assert recalled.queue.calls == 2 and recalled.queue.room == "3诊室"
    moved = await desk.recall(kit.hospital_id, sid, aids[0], "5诊室")
    assert moved.queue.room == "5诊室" and moved.queue.calls == 3
    assert [e["queue"].get("recall") for e in events_of(kit, "queue.called")] == [False, True, True]
    with pytest.raises(InvalidState):  # a waiting patient is called with call-next
        await desk.recall(kit.hospital_id, sid, aids[1], None)
    with pytest.raises(InvalidState):  # done only after a call
        await desk.done(kit.hospital_id, sid, aids[1])
    skipped = await desk.skip(kit.hospital_id, sid, aids[0])
    assert skipped.queue.state == "skipped"
    with pytest.raises(InvalidState):
        await desk.skip(kit.hospital_id, sid, aids[0])
    back = await desk.recall(kit.hospital_id, sid, aids[0], None)  # came back in time
    assert back.queue.state == "called" and back.queue.room == "5诊室"
    waiting_skip = await desk.skip(kit.hospital_id, sid, aids[2])  # not there at all
    assert waiting_skip.queue.state == "skipped"
    view = await desk.view(kit.hospital_id, sid)
    assert [e.appointment_id for e in view.skipped] == [aids[2]]
    assert [e.appointment_id for e in view.waiting] == [aids[1]]
    assert [e.appointment_id for e in view.now_serving] == [aids[0]]
    assert len(events_of(kit, "queue.skipped")) == 2


async def test_done_completes_the_appointment_with_its_consult_time(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 2)
    desk = kit.booking.queue
    await desk.call_next(kit.hospital_id, sid, "2")
    kit.clock.advance(minutes=7, seconds=5)
    done = await desk.done(kit.hospital_id, sid, aids[0])
    assert done.status == "completed" and done.queue.state == "done"
    assert done.queue.consult_seconds == 425
    doc = await kit.appointments.get(aids[0])
    assert doc is not None and doc["status"] == "completed"
    completed = events_of(kit, "appointment.completed")
    assert len(completed) == 1
    assert completed[0]["appointment"]["status"] == "completed"
    assert completed[0]["queue"] == {
        "schedule_id": sid,
        "session": "am",
        "seq_no": 1,
        "state": "done",
        "room": "2",
        "consult_seconds": 425,
    }
    with pytest.raises(InvalidState):
        await desk.done(kit.hospital_id, sid, aids[0])
    view = await desk.view(kit.hospital_id, sid)
    assert [d.appointment_id for d in view.done] == [aids[0]]
    assert view.consult_minutes == round(425 / 60, 1) and view.eta_basis == "session"


async def visit(kit: Kit, sid: str, aid: str, minutes: float, room: str = "1") -> None:
    called = await kit.booking.queue.call_next(kit.hospital_id, sid, room)
    assert called.id == aid
    kit.clock.advance(minutes=minutes)
    await kit.booking.queue.done(kit.hospital_id, sid, aid)


async def test_eta_is_the_median_consult_time_times_ahead_over_active_rooms(kit: Kit) -> None:
    sid, aids, users = await session_with(kit, 8)
    desk = kit.booking.queue

    async def patient(i: int) -> tuple[int | None, int | None]:
        q = await desk.for_patient(await kit.lifecycle.own(users[i], aids[i]))
        return q.ahead, q.eta_minutes

    # nothing timed yet, neither the session nor the doctor: the default
    assert await patient(3) == (3, round(3 * DEFAULT_CONSULT_MINUTES))
    for i, minutes in enumerate((4, 10, 6)):  # median 6 minutes
        await visit(kit, sid, aids[i], minutes)
    assert await patient(7) == (4, 24)  # 6 × 4 ahead ÷ 1 room
    await desk.call_next(kit.hospital_id, sid, "2")  # a second room starts calling
    assert await patient(7) == (3, 9)  # 6 × 3 ÷ 2 rooms
    kit.clock.advance(minutes=45)  # neither room called for a while: one counts
    assert (await desk.view(kit.hospital_id, sid)).consult_minutes == 6.0
    assert await patient(7) == (3, 18)


async def test_before_the_session_has_times_the_doctors_recent_median_counts(kit: Kit) -> None:
    kit.clock.now = NOW - dt.timedelta(days=1)
    old_sid, old_aids, _ = await session_with(kit, 3, date=YESTERDAY)
    for aid, minutes in zip(old_aids, (8, 12, 20), strict=True):  # median 12
        await visit(kit, old_sid, aid, minutes)
    kit.clock.now = NOW
    sid, aids, users = await session_with(kit, 3)
    view = await kit.booking.queue.view(kit.hospital_id, sid)
    assert (view.consult_minutes, view.eta_basis) == (12.0, "doctor")
    q = await kit.booking.queue.for_patient(await kit.lifecycle.own(users[2], aids[2]))
    assert (q.ahead, q.eta_minutes) == (2, 24)


async def test_the_patient_follows_their_appointment_through_the_queue(kit: Kit) -> None:
    sid, aids, users = await session_with(kit, 3, check_in=False)
    desk = kit.booking.queue

    async def mine(i: int = 1) -> dict[str, object]:
        q = await desk.for_patient(await kit.lifecycle.own(users[i], aids[i]))
        return q.model_dump(exclude_none=True)

    assert await mine() == {"status": "not_checked_in", "seq_no": 2}
    for aid in aids:
        await kit.lifecycle.check_in(kit.hospital_id, aid)
    assert await mine() == {
        "status": "waiting",
        "position": 2,
        "ahead": 1,
        "seq_no": 2,
        "eta_minutes": 5,
    }
    await desk.call_next(kit.hospital_id, sid, "7")
    assert await mine() == {
        "status": "waiting",
        "position": 1,
        "ahead": 0,
        "seq_no": 2,
        "now_serving_seq": 1,
        "eta_minutes": 0,
    }
    await desk.call_next(kit.hospital_id, sid, "7")
    assert await mine() == {
        "status": "called",
        "room": "7",
        "seq_no": 2,
        "now_serving_seq": 2,
        "eta_minutes": 0,
    }
    await desk.done(kit.hospital_id, sid, aids[1])
    assert (await mine())["status"] == "done"
    with pytest.raises(NotFound):  # someone else's appointment
        await kit.lifecycle.own(users[0], aids[1])


async def test_the_display_masks_names_and_shows_no_ids(kit: Kit) -> None:
    sid, aids, users = await session_with(kit, 9)
    desk = kit.booking.queue
    await desk.call_next(kit.hospital_id, sid, "1")
    await desk.call_next(kit.hospital_id, sid, "2")
    await desk.call_next(kit.hospital_id, sid, "1")
    display = await desk.display(kit.hospital_id, sid)
    assert [(s.room, s.seq_no, s.name) for s in display.now_serving] == [
        ("1", 3, "张*"),
        ("2", 2, "张*"),
    ]
    assert [(n.seq_no, n.name) for n in display.next] == [(i, "张*") for i in range(4, 9)]
    assert display.waiting_count == 6
    text = json.dumps(display.model_dump(mode="json"), ensure_ascii=False)
    assert "张三" not in text and "1101" not in text
    docs = [await kit.appointments.get(a) for a in aids]
    for secret in [*aids, *users, *(d["patient"]["id"] for d in docs if d)]:
        assert secret not in text


async def test_queue_near_once_per_appointment_when_three_or_fewer_are_ahead(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 8)
    desk = kit.booking.queue
    assert events_of(kit, "queue.near") == []  # check-in alone moves nobody up
    await desk.call_next(kit.hospital_id, sid, None)
    near = events_of(kit, "queue.near")
    assert [(n["appointment"]["id"], n["queue"]["ahead"]) for n in near] == [
        (aids[1], 0),
        (aids[2], 1),
        (aids[3], 2),
        (aids[4], 3),
    ]
    assert all(n["queue"]["eta_minutes"] == n["queue"]["ahead"] * 5 for n in near)
    await desk.call_next(kit.hospital_id, sid, None)
    await desk.skip(kit.hospital_id, sid, aids[3])  # a waiting one: the rest move up
    near = events_of(kit, "queue.near")
    assert [n["appointment"]["id"] for n in near] == aids[1:7]
    assert Counter(n["appointment"]["id"] for n in near).most_common(1)[0][1] == 1
    for event in kit.publisher.events:
        EVENT_DATA[event.type].model_validate(event.data)


# ---- a kill between any two writes ------------------------------------------------------


async def restart(kit: Kit) -> None:
    """What the next process does: fresh memory, the outbox relay, the jobs after their
    grace periods."""
    kit.faults.disarm()
    kit.clock.advance(seconds=120)
    await kit.relay.sweep(everything=True)
    await kit.booking.reconciler.run_once()
    await kit.booking.queue.repair_once()
    await kit.relay.sweep(everything=True)


async def assert_queue_consistent(kit: Kit, sid: str) -> None:
    """Each checked-in appointment in exactly one place, every change published (as one
    event id: a crash may publish it again, never as another event), nothing owed or due."""
    await kit.relay.mark_sent()  # the running process's marker
    view = await kit.booking.queue.view(kit.hospital_id, sid)
    listed = [
        e.appointment_id for e in (*view.now_serving, *view.waiting, *view.skipped, *view.done)
    ]
    docs = [d async for d in kit.appointments.collection.find({"schedule_id": sid})]
    assert sorted(listed) == sorted(
        d["_id"] for d in docs if d["status"] in ("checked_in", "completed")
    )
    for doc in docs:
        assert not doc.get("outbox") and "queue_due" not in doc and "owed" not in doc, doc
    near = Counter(e["appointment"]["id"] for e in events_of(kit, "queue.near"))
    assert all(n == 1 for n in near.values())
    told = {d["_id"] for d in docs if "near_at" in (d.get("queue") or {})}
    assert told == set(near)


CALL_POINTS = ["queue.called.after_write", "queue.near.after_write", "queue.after_near"]


@pytest.mark.parametrize("point", CALL_POINTS)
async def test_call_next_killed_between_writes(kit: Kit, point: str) -> None:
    sid, aids, _ = await session_with(kit, 6)
    kit.faults.arm(point)
    with pytest.raises(Crash):
        await kit.booking.queue.call_next(kit.hospital_id, sid, "1")
    await restart(kit)
    await assert_queue_consistent(kit, sid)
    view = await kit.booking.queue.view(kit.hospital_id, sid)
    assert [e.appointment_id for e in view.now_serving] == [aids[0]]  # the call stands
    assert len(events_of(kit, "queue.called")) == 1
    near = [e["appointment"]["id"] for e in events_of(kit, "queue.near")]
    assert near == aids[1:5]  # those with 3 or fewer ahead were told, once
    nxt = await kit.booking.queue.call_next(kit.hospital_id, sid, "1")
    assert nxt.id == aids[1]
    await assert_queue_consistent(kit, sid)


@pytest.mark.parametrize(
    "point",
    [
        "queue.skipped.after_write",
        "queue.requeued.after_write",
        "queue.done.after_write",
        "checked_in.after_write",
    ],
)
async def test_desk_actions_killed_after_their_write(kit: Kit, point: str) -> None:
    sid, aids, _ = await session_with(kit, 5, check_in=False)
    for aid in aids[:4]:
        await kit.lifecycle.check_in(kit.hospital_id, aid)
    desk = kit.booking.queue
    await desk.call_next(kit.hospital_id, sid, "1")
    kit.faults.arm(point)
    with pytest.raises(Crash):
        if point == "queue.skipped.after_write":
            await desk.skip(kit.hospital_id, sid, aids[0])
        elif point == "queue.requeued.after_write":
            kit.faults.disarm()
            await desk.skip(kit.hospital_id, sid, aids[0])
            kit.faults.arm(point)
            await kit.lifecycle.check_in(kit.hospital_id, aids[0])
        elif point == "queue.done.after_write":
            await desk.done(kit.hospital_id, sid, aids[0])
        else:
            await kit.lifecycle.check_in(kit.hospital_id, aids[4])
    await restart(kit)
    await assert_queue_consistent(kit, sid)
    doc = await kit.appointments.get(aids[0])
    assert doc is not None
    expected = {
        "queue.skipped.after_write": ("checked_in", "skipped"),
        "queue.requeued.after_write": ("checked_in", "waiting"),
        "queue.done.after_write": ("completed", "done"),
        "checked_in.after_write": ("checked_in", "called"),
    }[point]
    assert (doc["status"], doc["queue"]["state"]) == expected
    if point == "checked_in.after_write":
        assert await waiting_ids(kit, sid) == aids[1:]
        person = await kit.persons.get(doc["id_hash"])
        assert person is not None and not person.get("holds")  # the reconciler paid
    types = Counter(e.type for e in {e.id: e for e in kit.publisher.events}.values())
    assert types["queue.called"] == 1 and types["appointment.checked_in"] == (
        5 if point == "checked_in.after_write" else 4
    )


# ---- what a call costs --------------------------------------------------------------------


async def test_a_call_next_costs_a_bounded_number_of_store_operations(
    counted_db: AsyncDatabase[Document],
) -> None:
    """Steady state (one more patient comes within 3 of the front): the session, the queue
    read twice (for the call, for the near announcements), the guarded call, one near
    announcement and the follow-up cleared — whatever the queue's length."""
    kit = await Kit(counted_db, NOW).setup()
    sid, _, _ = await session_with(kit, 30)
    await kit.booking.queue.call_next(kit.hospital_id, sid, None)  # the first four told
    for _ in range(3):
        with counting() as ops:
            await kit.booking.queue.call_next(kit.hospital_id, sid, None)
        assert Counter(ops) == {"find": 3, "findAndModify": 1, "update": 2}, ops


async def test_completing_a_called_patient_the_old_way_times_the_visit_too(kit: Kit) -> None:
    sid, aids, _ = await session_with(kit, 2)
    await kit.booking.queue.call_next(kit.hospital_id, sid, "4")
    kit.clock.advance(minutes=3)
    completed = await kit.lifecycle.complete(kit.hospital_id, aids[0])  # .../complete
    assert completed.status == "completed"
    doc = await kit.appointments.get(aids[0])
    assert doc is not None and doc["queue"]["consult_seconds"] == 180
    await kit.lifecycle.complete(kit.hospital_id, aids[1])  # never called: not timed
    doc = await kit.appointments.get(aids[1])
    assert doc is not None and doc["status"] == "completed" and "queue" in doc
    assert "consult_seconds" not in doc["queue"]
    view = await kit.booking.queue.view(kit.hospital_id, sid)
    assert {d.appointment_id for d in view.done} == set(aids) and view.consult_minutes == 3.0
    assert len(events_of(kit, "appointment.completed")) == 2
