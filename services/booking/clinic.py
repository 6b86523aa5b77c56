"""A session's own changes: 停诊 and 加号 / reduce, and what patients see of its stock.

Both are one write on the session document (its slots live in it): once 停诊 is written no
slot of the session can be reserved, so no booking can slip in between stopping and
cancelling. The cancellations that follow are ordinary cancellations; a crash part-way is
finished by the reconciler (booked appointments of a recently stopped session).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from services.booking.lifecycle import AppointmentLifecycle, HandOver
from services.booking.projections import SessionBook, SoldOutBoard
from services.booking.repository import Appointments, Sessions
from shared.contracts.booking import (
    Availability,
    ScheduleAvailability,
    SlotAvailability,
    SlotState,
    StopResult,
)
from shared.contracts.events import (
    CapacityChanged,
    ChangedSlot,
    ScheduleStopped,
    StoppedSchedule,
    typed_event,
)
from shared.errors import InvalidState, NotFound, ValidationFailed
from shared.faults import FaultPoints
from shared.messaging.outbox import OutboxRelay, outbox_push

log = logging.getLogger("guahao.booking.clinic")

# a booking never outlives its RPC deadline; one still inserting after a stop is done by then
IN_FLIGHT_WAIT = 6.0


class SessionAdmin:
    def __init__(
        self,
        *,
        sessions: Sessions,
        appointments: Appointments,
        session_book: SessionBook,
        lifecycle: AppointmentLifecycle,
        waitlist: HandOver | None,
        sold_out: SoldOutBoard,
        outbox: OutboxRelay,
        faults: FaultPoints,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.sessions = sessions
        self.appointments = appointments
        self.session_book = session_book
        self.lifecycle = lifecycle
        self.waitlist = waitlist
        self.sold_out = sold_out
        self.outbox = outbox
        self.faults = faults
        self.clock = clock

    async def availability(self, schedule_ids: list[str]) -> Availability:
        sessions = await self.sessions.many(schedule_ids)
        return Availability(
            items=[
                ScheduleAvailability(
                    schedule_id=s.id,
                    stopped=s.stopped,
                    slots=[
                        SlotAvailability(
                            id=sid, capacity=s.stock[sid].capacity, remaining=s.stock[sid].remaining
                        )
                        for sid in s.slots
                    ],
                )
                for s in sessions
            ]
        )

    async def stop(self, hospital_id: str, schedule_id: str, reason: str) -> StopResult:
        """停诊: refuse new bookings (one write), then cancel every active appointment."""
        session = await self.session_book.session(schedule_id, hospital_id)
        now = self.clock()
        event = typed_event(
            "schedule.stopped",
            hospital_id,
            ScheduleStopped(
                schedule=StoppedSchedule(
                    id=schedule_id,
                    doctor_id=session.doctor.id,
                    date=session.date,
                    session=session.session,
                    reason=reason,
                )
            ),
            at=now,
        )
        if await self.sessions.stop(schedule_id, reason, now, outbox_push(event)):
            await self.outbox.publish_committed(self.sessions.collection, schedule_id, [event])
        for slot_id in session.slots:
            self.sold_out.sold_out(slot_id, [], stopped=True)
        self.faults.point("stop.after_write")
        cancelled = await self.cancel_booked(schedule_id, reason)
        cancelled += await self.cancel_in_flight(schedule_id, reason)
        log.info("schedule stopped", extra={"schedule_id": schedule_id, "cancelled": cancelled})
        return StopResult(schedule_id=schedule_id, status="stopped", cancelled=cancelled)

    async def cancel_booked(self, schedule_id: str, reason: str) -> int:
        cancelled = 0
        for doc in await self.appointments.booked_of_schedule(schedule_id):
            try:
                await self.lifecycle.cancel(doc, "hospital", f"停诊：{reason}")
                cancelled += 1
            except InvalidState:
                pass
        return cancelled

    async def cancel_in_flight(self, schedule_id: str, reason: str) -> int:
        """Bookings that reserved their unit before the stop and are being inserted now:
        the stopped session's holders are final, so wait (bounded) until each has its
        appointment and cancel it. One that never comes is an orphan for the reconciler."""
        cancelled = 0
        deadline = time.monotonic() + IN_FLIGHT_WAIT
        while True:
            session = await self.sessions.get(schedule_id)
            holders = [a for s in (session.stock.values() if session else []) for a in s.holders]
            present = await self.appointments.existing(holders) if holders else set()
            for doc in await self.appointments.booked_of_schedule(schedule_id):
                try:
                    await self.lifecycle.cancel(doc, "hospital", f"停诊：{reason}")
                    cancelled += 1
                except InvalidState:
                    pass
            if len(present) == len(holders) or time.monotonic() > deadline:
                return cancelled
            await asyncio.sleep(0.05)

    async def change_capacity(self, hospital_id: str, slot_id: str, delta: int) -> SlotState:
        """加号 (delta > 0) or reduce capacity, never below what is booked; added units go
        to the waiting patients first."""
        if delta == 0:
            raise ValidationFailed.field("delta", "不能为0 / must not be 0")
        slot = await self.session_book.slot(slot_id)
        if slot.hospital_id != hospital_id:
            raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
        handed = 0
        while self.waitlist is not None and handed < delta:
            if not await self.waitlist.hand_over(slot_id, None):
                break  # 加号 straight to the waiting patients first, in order
            handed += 1
        session = await self.sessions.get(slot.schedule_id)
        assert session is not None
        capacity = session.stock[slot_id].capacity + delta - handed
        event = typed_event(
            "schedule.capacity_changed",
            hospital_id,
            CapacityChanged(
                slot=ChangedSlot(
                    id=slot_id,
                    schedule_id=slot.schedule_id,
                    doctor_id=slot.doctor_id,
                    date=slot.date,
                    start=slot.start,
                    end=slot.end,
                    capacity=capacity,
                    delta=delta,
                )
            ),
            at=self.clock(),
        )
        rest = delta - handed
        updated = await self.sessions.change_capacity(
            slot.schedule_id, slot_id, rest, outbox_push(event)
        )
        if updated is None:
            raise InvalidState(
                "不能少于已预约数 / below what is booked", booked=session.stock[slot_id].booked
            )
        await self.outbox.publish_committed(self.sessions.collection, slot.schedule_id, [event])
        if rest > 0:
            self.sold_out.freed(slot_id)
        stock = updated.stock[slot_id]
        return SlotState(
            id=slot_id,
            schedule_id=slot.schedule_id,
            start=slot.start,
            end=slot.end,
            capacity=stock.capacity,
            remaining=stock.remaining,
        )
