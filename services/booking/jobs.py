"""Background work of booking, each under a lease so one replica does it at a time. Every
query is on an indexed field that only the documents with work carry, so an idle pass costs
a few index look-ups however many appointments the store holds.

- Reconciler: pays what a crash left owed (a cancellation's unit and person hold, a move's
  old unit), undoes a move that never committed, returns units and person holds held by an
  appointment that never came, and finishes a 停诊 whose cancellations were cut short.
- End of day: booked appointments of past dates become no-shows, checked-in ones completed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from services.booking.lifecycle import AppointmentLifecycle
from services.booking.projections import SoldOutBoard
from services.booking.repository import Appointments, DaySweeps, Persons, Sessions
from services.booking.waitlist import WaitlistService
from shared.errors import DomainError
from shared.rules import local_now
from shared.storage.mongo import Document

log = logging.getLogger("guahao.booking.jobs")

OWED_GRACE = dt.timedelta(seconds=5)  # the writer itself usually settles within this
MOVE_STALE_AFTER = dt.timedelta(seconds=30)
CLAIM_STALE_AFTER = dt.timedelta(seconds=60)
# after this no booking that reserved before a stop can still be inserted (RPC deadlines)
STOP_FOLLOW_UP = dt.timedelta(minutes=2)
SWEPT_DAYS = 7  # the end-of-day sweep looks this many visit dates back


class Reconciler:
    def __init__(
        self,
        *,
        appointments: Appointments,
        sessions: Sessions,
        persons: Persons,
        lifecycle: AppointmentLifecycle,
        waitlist: WaitlistService,
        sold_out: SoldOutBoard,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.appointments = appointments
        self.waitlist = waitlist
        self.sessions = sessions
        self.persons = persons
        self.lifecycle = lifecycle
        self.sold_out = sold_out
        self.clock = clock

    async def run_once(self) -> int:
        """One repair pass; returns how many things it fixed."""
        fixed = (
            await self.pay_debts()
            + await self.undo_stale_moves()
            + await self.return_orphan_units()
            + await self.return_orphan_person_holds()
            + await self.waitlist.release_stale_claims(self.clock() - CLAIM_STALE_AFTER)
            + await self.finish_stops()
        )
        if fixed:
            log.info("reconciled", extra={"fixed": fixed})
        return fixed

    async def pay_debts(self) -> int:
        docs = await self.appointments.owing(self.clock() - OWED_GRACE)
        for doc in docs:
            await self.lifecycle.settle(doc)
        return len(docs)

    async def undo_stale_moves(self) -> int:
        docs = await self.appointments.stale_moves(self.clock() - MOVE_STALE_AFTER)
        for doc in docs:
            await self.lifecycle.undo_move(doc["_id"], doc["move"])
        return len(docs)

    async def return_orphan_units(self) -> int:
        """Units held by an appointment that does not exist (a booking died between its
        reservation and its insert, over a minute ago)."""
        returned = 0
        for doc in await self.sessions.due_for_check(self.clock()):
            held = {
                aid: slot_id
                for slot_id, stock in doc.get("slots", {}).items()
                for aid in stock.get("holders", [])
            }
            alive = await self.appointments.existing(list(held)) if held else set()
            for aid, slot_id in held.items():
                if aid not in alive and await self.sessions.release(doc["_id"], slot_id, aid):
                    self.sold_out.freed(slot_id)
                    log.info(
                        "orphan unit returned", extra={"slot_id": slot_id, "appointment_id": aid}
                    )
                    returned += 1
            await self.sessions.mark_checked(doc["_id"], doc["check_after"])
        return returned

    async def return_orphan_person_holds(self) -> int:
        returned = 0
        for doc in await self.persons.due_for_check(self.clock()):
            holds: dict[str, Document] = doc.get("holds", {})
            alive = await self.appointments.existing(list(holds)) if holds else set()
            for aid, hold in holds.items():
                if aid not in alive and await self.persons.release(
                    doc["_id"], aid, hold["h"], hold["k"]
                ):
                    returned += 1
            await self.persons.mark_checked(doc["_id"], doc["check_after"])
        return returned

    async def finish_stops(self) -> int:
        """Booked appointments of a stopped session (a 停诊 cut short, or a booking that
        was being inserted while it stopped); once none can appear any more, done."""
        cancelled = 0
        for session, stopped_at in await self.sessions.stopping():
            left = await self.appointments.booked_of_schedule(session.id, limit=200)
            for doc in left:
                try:
                    await self.lifecycle.cancel(
                        doc, "hospital", f"停诊：{session.stop_reason or ''}"
                    )
                    cancelled += 1
                except DomainError:
                    pass
            if not left and stopped_at < self.clock() - STOP_FOLLOW_UP:
                await self.sessions.stop_followed_up(session.id)
        return cancelled


class EndOfDay:
    def __init__(
        self,
        *,
        appointments: Appointments,
        sweeps: DaySweeps,
        lifecycle: AppointmentLifecycle,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.appointments = appointments
        self.sweeps = sweeps
        self.lifecycle = lifecycle
        self.clock = clock

    async def run_once(self) -> int:
        """Each past visit date once: still booked → no-show; checked in → completed."""
        today = local_now(self.clock()).date()
        dates = [(today - dt.timedelta(days=n)).isoformat() for n in range(1, SWEPT_DAYS + 1)]
        finished = await self.sweeps.done(dates)
        handled = 0
        for date in (d for d in dates if d not in finished):
            failed = False
            for doc in await self.appointments.on_date(date, ("booked", "checked_in")):
                try:
                    if doc["status"] == "booked":
                        await self.lifecycle.mark_no_show(None, doc["_id"])
                    else:
                        await self.lifecycle.complete(None, doc["_id"])
                    handled += 1
                except DomainError:
                    failed = True  # changed meanwhile: the next pass looks again
            if not failed:
                await self.sweeps.finish(date, self.clock())
        if handled:
            log.info("end of day", extra={"count": handled})
        return handled
