"""Fair release (放号抽签): under the hospital rule `release_mode: "lottery"`, booking
requests that arrive in the first `lottery_window_seconds` after a slot's release instant
are collected instead of served; when the window closes they are drawn in random order
(each person at most once per session) and served as ordinary bookings in that order; first
come after that. A bot that taps 2 ms after release has the same chance as a patient who
taps 5 s after it.

An entry is a pending appointment marked `lottery` with its `draw_at`; the patient polls
`GET /appointments/{id}` (status `pending` → `booked`, or `cancelled` by the system with
the reason 未中签). One replica draws a slot at a time (a lease per slot); the draw is
repeatable (every step of a booking is idempotent), so a drawer that dies mid-way is
finished by the next one. The lottery does not book itself: the drawer is given the
booking step (`Complete`), so this module knows nothing of how a booking is made.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import secrets
from collections.abc import Awaitable, Callable

from services.booking.domain import SlotInfo
from services.booking.projections import RulesBook
from services.booking.repository import Appointments, Holds
from services.booking.views import appointment_event, appointment_view
from shared.contracts.booking import Appointment
from shared.contracts.catalog import BookingRules
from shared.errors import AlreadyBooked, DomainError, ServiceUnavailable
from shared.messaging.outbox import OutboxRelay, with_outbox
from shared.storage.lease import Lease
from shared.storage.mongo import Document

log = logging.getLogger("guahao.booking.lottery")

NOT_DRAWN = "未中签 / not drawn in the release lottery"
Complete = Callable[[Document, BookingRules], Awaitable[Appointment]]


class ReleaseLottery:
    def __init__(
        self,
        *,
        appointments: Appointments,
        holds: Holds,
        rules: RulesBook,
        outbox: OutboxRelay,
        clock: Callable[[], dt.datetime],
        rng: random.Random | None = None,
    ) -> None:
        self.appointments = appointments
        self.holds = holds
        self.rules = rules
        self.outbox = outbox
        self.clock = clock
        self.random = rng or secrets.SystemRandom()

    def window(self, rules: BookingRules, slot: SlotInfo) -> tuple[dt.datetime, dt.datetime]:
        release_at = slot.window(rules).release_at
        return release_at, release_at + dt.timedelta(seconds=rules.lottery_window_seconds)

    def is_collecting(self, rules: BookingRules, slot: SlotInfo) -> bool:
        if rules.release_mode != "lottery":
            return False
        opens, closes = self.window(rules, slot)
        return opens <= self.clock() < closes

    async def enter(self, doc: Document, rules: BookingRules, slot: SlotInfo) -> Appointment:
        """Collect one request; the answer says it is pending until the draw."""
        _, closes = self.window(rules, slot)
        doc.update(lottery=True, draw_at=closes)
        key = f"lottery:{doc['schedule_id']}:{doc['id_hash']}"
        if not await self.holds.claim(key, doc["_id"], self.clock()):
            holder = await self.holds.holder(key)
            if holder != doc["_id"]:
                raise AlreadyBooked(lottery=True)
        if not await self.appointments.insert(doc):
            existing = await self.appointments.get(doc["_id"])
            if existing is None:
                raise ServiceUnavailable()
            return appointment_view(existing)
        log.info("lottery entry", extra={"appointment_id": doc["_id"], "slot_id": doc["slot_id"]})
        return appointment_view(doc)

    async def draw(self, slot_id: str, complete: Complete) -> int:
        """Serve the collected requests of one slot in random order; returns how many won."""
        lease = Lease(
            self.appointments.collection.database.leases,
            f"draw:{slot_id}",
            f"{id(self)}:{secrets.token_hex(4)}",
            dt.timedelta(seconds=30),
            self.clock,
        )
        if await lease.acquire() is None:
            return 0
        won = 0
        try:
            entries = await self.appointments.lottery_due(self.clock(), slot_id)
            self.random.shuffle(entries)
            for doc in entries:
                rules = await self.rules.rules(doc["hospital_id"])
                try:
                    await complete(doc, rules)
                    won += 1
                except DomainError as exc:
                    await self._lose(doc, exc)
                await self.holds.drop_all(doc["_id"])
            if entries:
                log.info(
                    "lottery drawn", extra={"slot_id": slot_id, "entries": len(entries), "won": won}
                )
        finally:
            await lease.release()
        return won

    async def _lose(self, doc: Document, why: DomainError) -> None:
        """Announced like any cancellation: the patient's subscribe message says 未中签."""
        now = self.clock()
        fields = {
            "status": "cancelled",
            "cancelled_by": "system",
            "cancelled_at": now,
            "updated_at": now,
            "reason": NOT_DRAWN if why.code == "SLOT_FULL" else why.message,
        }
        event = appointment_event("appointment.cancelled", {**doc, **fields}, now)
        lost = await self.appointments.transition(
            doc["_id"], "pending", with_outbox({"$set": fields}, event)
        )
        if lost is not None:
            await self.outbox.publish_committed(self.appointments.collection, doc["_id"], [event])

    async def draw_before_first_come(self, slot_id: str, complete: Complete) -> None:
        """After the window, first come is served only once the draw is done."""
        deadline = self.clock() + dt.timedelta(seconds=3)
        while await self.appointments.lottery_due(self.clock(), slot_id, limit=1):
            if await self.draw(slot_id, complete) == 0 and self.clock() > deadline:
                raise ServiceUnavailable("放号抽签中，请稍后重试 / release draw in progress")
            await asyncio.sleep(0.05)

    async def draw_due(self, complete: Complete) -> int:
        """The job: draw every slot whose window has closed (nobody may have asked since)."""
        slots = {
            d["slot_id"] for d in await self.appointments.lottery_due(self.clock(), limit=5_000)
        }
        return sum([await self.draw(slot_id, complete) for slot_id in slots])
