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
finished by the next one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import secrets
from typing import TYPE_CHECKING

from shared.contracts.booking import Appointment
from shared.contracts.catalog import BookingRules
from shared.errors import AlreadyBooked, DomainError, ServiceUnavailable
from shared.messaging.outbox import with_outbox
from shared.rules import BookingWindow
from shared.storage.lease import Lease
from shared.storage.mongo import Document

if TYPE_CHECKING:
    from services.booking.service import BookingService

log = logging.getLogger("guahao.booking.lottery")

NOT_DRAWN = "未中签 / not drawn in the release lottery"


class ReleaseLottery:
    def __init__(self, booking: BookingService, rng: random.Random | None = None) -> None:
        self.booking = booking
        self.random = rng or secrets.SystemRandom()

    def window(self, rules: BookingRules, slot: Document) -> tuple[dt.datetime, dt.datetime]:
        release_at = BookingWindow(rules, dt.date.fromisoformat(slot["date"]), slot["session"],
                                   slot["start"]).release_at
        return release_at, release_at + dt.timedelta(seconds=rules.lottery_window_seconds)

    def is_collecting(self, rules: BookingRules, slot: Document) -> bool:
        if rules.release_mode != "lottery":
            return False
        opens, closes = self.window(rules, slot)
        return opens <= self.booking.clock() < closes

    async def enter(self, doc: Document, rules: BookingRules) -> Appointment:
        """Collect one request; the answer says it is pending until the draw."""
        b = self.booking
        _, closes = self.window(rules, await b.slot(doc["slot_id"]))
        doc.update(lottery=True, draw_at=closes)
        key = f"lottery:{doc['schedule_id']}:{doc['id_hash']}"
        await b._claim(key, 1, doc["_id"], AlreadyBooked(lottery=True), alive=self._entered)
        if not await b.appointments.insert_pending(doc):
            existing = await b.appointments.get(doc["_id"])
            if existing is None:
                raise ServiceUnavailable()
            return b._view(existing)
        log.info("lottery entry", extra={"appointment_id": doc["_id"], "slot_id": doc["slot_id"]})
        return b._view(doc)

    async def _entered(self, appointment_id: str) -> bool:
        doc = await self.booking.appointments.get(appointment_id)
        return doc is None or doc["status"] in ("pending", "booked")

    async def undrawn(self, slot_id: str) -> list[Document]:
        return await self.booking.appointments.find(
            {"slot_id": slot_id, "status": "pending", "lottery": True,
             "draw_at": {"$lte": self.booking.clock()}}, [("_id", 1)], 10_000)

    async def draw(self, slot_id: str) -> int:
        """Serve the collected requests of one slot in random order; returns how many won."""
        b = self.booking
        lease = Lease(b.appointments.collection.database.leases, f"draw:{slot_id}",
                      f"{id(self)}:{secrets.token_hex(4)}", dt.timedelta(seconds=30), b.clock)
        if await lease.acquire() is None:
            return 0
        won = 0
        try:
            entries = await self.undrawn(slot_id)
            self.random.shuffle(entries)
            rules = await b.catalog.rules(entries[0]["hospital_id"]) if entries else None
            for doc in entries:
                assert rules is not None
                try:
                    await b._complete_booking(doc, rules)
                    won += 1
                except DomainError as exc:
                    await self._lose(doc, exc)
            if entries:
                log.info("lottery drawn", extra={"slot_id": slot_id, "entries": len(entries),
                                                 "won": won})
        finally:
            await lease.release()
        return won

    async def _lose(self, doc: Document, why: DomainError) -> None:
        b = self.booking
        await b.inventory.release(doc["slot_id"], doc["_id"])
        await b.holds.drop_all(doc["_id"])
        now = b.clock()
        fields = {"status": "cancelled", "cancelled_by": "system", "cancelled_at": now,
                  "updated_at": now, "released": True,
                  "reason": NOT_DRAWN if why.code == "SLOT_FULL" else why.message}
        # announced like any cancellation: the patient's subscribe message says 未中签
        lost = await b.appointments.transition(doc["_id"], "pending", with_outbox(
            {"$set": fields}, b._event("appointment.cancelled", {**doc, **fields})))
        if lost is not None:
            await b.outbox.flush_quietly(b.appointments.collection, doc["_id"])

    async def draw_before_first_come(self, slot_id: str) -> None:
        """After the window, first come is served only once the draw is done."""
        deadline = self.booking.clock() + dt.timedelta(seconds=3)
        while await self.undrawn(slot_id):
            if await self.draw(slot_id) == 0 and self.booking.clock() > deadline:
                raise ServiceUnavailable("放号抽签中，请稍后重试 / release draw in progress")
            await asyncio.sleep(0.05)

    async def draw_due(self) -> int:
        """The job: draw every slot whose window has closed (nobody may have asked since)."""
        slots = {d["slot_id"] for d in await self.booking.appointments.find(
            {"status": "pending", "lottery": True, "draw_at": {"$lte": self.booking.clock()}},
            [("draw_at", 1)], 5_000)}
        return sum([await self.draw(slot_id) for slot_id in slots])
