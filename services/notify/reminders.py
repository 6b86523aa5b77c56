"""Visit reminders: the day before the visit at `reminder_hour` (hospital-local).

Appointment events keep one reminder document per appointment (scheduled, or cancelled when
the visit will not happen); a sweep under a lease sends the due ones, each claimed
`scheduled → sending` by exactly one sweeper — that claim, not the lease, is what makes the
reminder go out once even with several notify processes.

A booking made after its reminder time (the evening before, or on the day) gets no
reminder: its confirmation message already told the time, and the patient's one-time
quota for the reminder template stays for a later appointment.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from services.notify.messages import Clock, MessageSender
from services.notify.repository import Reminders
from shared.messaging.events import EventEnvelope
from shared.rules import at_local

log = logging.getLogger("guahao.notify.reminders")

SCHEDULING = frozenset({"appointment.booked", "appointment.rescheduled"})
ENDING = frozenset({"appointment.cancelled", "appointment.no_show", "appointment.checked_in"})


class VisitReminders:
    def __init__(
        self, reminders: Reminders, sender: MessageSender, clock: Clock, hour: int = 18
    ) -> None:
        if not 0 <= hour <= 23:
            raise ValueError(f"reminder hour must be 0..23, not {hour}")
        self.reminders = reminders
        self.sender = sender
        self.clock = clock
        self.hour = hour

    def due_at(self, visit_date: str) -> dt.datetime:
        day_before = dt.date.fromisoformat(visit_date) - dt.timedelta(days=1)
        return at_local(day_before, f"{self.hour:02d}:00").astimezone(dt.UTC)

    async def on_event(self, event: EventEnvelope) -> None:
        """Consumer of appointment events (from `evt.notify.events`)."""
        appointment = event.data.get("appointment")
        if not isinstance(appointment, dict):
            return
        at = dt.datetime.fromisoformat(event.occurred_at)
        aid = str(appointment["id"])
        if event.type in SCHEDULING:
            await self.schedule(aid, appointment, at)
        elif event.type in ENDING:
            if await self.reminders.cancel(aid, at, event.type):
                log.debug("reminder cancelled", extra={"appointment_id": aid})

    async def schedule(self, aid: str, appointment: dict[str, Any], at: dt.datetime) -> None:
        due = self.due_at(appointment["date"])
        status = "scheduled" if at < due else "skipped"  # booked after the reminder time
        fields = {
            "status": status,
            "due_at": due,
            "user_id": appointment["user_id"],
            "visit_at": at_local(
                dt.date.fromisoformat(appointment["date"]), appointment["start"]
            ).astimezone(dt.UTC),
            "appointment": appointment,
        }
        if await self.reminders.schedule(aid, at, fields):
            log.debug(
                "reminder planned",
                extra={"appointment_id": aid, "status": status, "due_at": due.isoformat()},
            )

    async def run_once(self, owner: str, term: int | None = None) -> int:
        """Send every due reminder; returns how many were handled."""
        handled = 0
        while (reminder := await self.reminders.claim_due(self.clock(), owner, term)) is not None:
            handled += 1
            aid, appointment = reminder["_id"], reminder["appointment"]
            if reminder["visit_at"] <= self.clock():
                await self.reminders.finish(aid, "expired", self.clock())
                continue
            try:
                status = await self.sender.send(
                    "visit_reminder", appointment, event_id=f"reminder_{aid}_{appointment['date']}"
                )
            except Exception:
                await self.reminders.finish(aid, "failed", self.clock())
                raise
            await self.reminders.finish(aid, status, self.clock())
        return handled
