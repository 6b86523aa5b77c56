"""Background work of booking, each under a lease so one replica does it at a time.

- Reconciler: repairs what a crash between the single-document steps left behind (a stale
  pending booking, a cancellation whose capacity was not yet returned, a half-done move, a
  booked appointment on a stopped schedule).
- End of day: booked appointments of past dates become no-shows.
"""

from __future__ import annotations

import datetime as dt
import logging

from services.booking.service import PENDING_STALE_AFTER, BookingService
from shared.errors import DomainError
from shared.rules import local_now

log = logging.getLogger("guahao.booking.jobs")


class Reconciler:
    def __init__(self, booking: BookingService) -> None:
        self.booking = booking

    async def run_once(self) -> int:
        """One repair pass; returns how many documents it fixed."""
        b = self.booking
        now = b.clock()
        fixed = 0
        for doc in await b.appointments.find(
                {"status": "pending", "lottery": {"$exists": False},
                 "created_at": {"$lt": now - PENDING_STALE_AFTER}},
                [("created_at", 1)], 200):
            await b._roll_back(doc)
            fixed += 1
        for doc in await b.appointments.find(
                {"released": False, "status": {"$in": ["cancelled", "no_show"]},
                 "updated_at": {"$lt": now - dt.timedelta(seconds=5)}},
                [("updated_at", 1)], 200):
            await b.release_capacity(doc)
            fixed += 1
        for doc in await b.appointments.find(
                {"move.at": {"$lt": now - PENDING_STALE_AFTER}}, [("updated_at", 1)], 200):
            move = doc["move"]
            loser = move["from"] if doc["slot_id"] == move["to"] else move["to"]
            await b.inventory.release(loser, doc["_id"])
            await b.appointments.collection.update_one({"_id": doc["_id"]},
                                                       {"$unset": {"move": ""}})
            fixed += 1
        for schedule in await b.inventory.schedules.find(
                {"stopped": True, "stopped_at": {"$gt": now - dt.timedelta(days=1)}},
                projection={"_id": 1, "stop_reason": 1}).to_list(200):
            for doc in await b.appointments.find(
                    {"schedule_id": schedule["_id"], "status": "booked"}, [("_id", 1)], 200):
                try:
                    await b._cancel(doc, "hospital", f"停诊：{schedule.get('stop_reason', '')}")
                    fixed += 1
                except DomainError:
                    pass
        if fixed:
            log.info("reconciled", extra={"fixed": fixed})
        return fixed


class NoShowSweep:
    def __init__(self, booking: BookingService) -> None:
        self.booking = booking

    async def run_once(self) -> int:
        """Mark every still-booked appointment of a past date as a no-show."""
        b = self.booking
        today = local_now(b.clock()).date().isoformat()
        marked = 0
        for doc in await b.appointments.find({"status": "booked", "date": {"$lt": today}},
                                             [("date", 1)], 500):
            try:
                await b.mark_no_show(None, doc["_id"])
                marked += 1
            except DomainError:
                pass
        if marked:
            log.info("no-shows marked", extra={"count": marked})
        return marked
