"""The audit log: what hospital staff did, projected from the events their actions caused.

Every event created while serving a staff request names its `actor` (`shared.access` sets
it, `shared.messaging.events.new_event` stamps it). Events of appointments, schedules,
doctors and hospitals (rules) reach `on_event` through the durable queue `evt.auth.audit`;
the staff-account actions of auth itself ride in the changed user document's outbox and
reach `publish` through auth's local relay. Either way an action that succeeded cannot be
missed (its event was written in the same single-document write) and is recorded once
(the entry's id is the event id).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from services.auth.repository import AuditRepository
from shared.access import check_hospital_role
from shared.context import Caller
from shared.contracts.auth import AuditEntry, AuditLog, AuditQuery
from shared.messaging.events import HOSPITAL_TZ, EventEnvelope
from shared.storage.mongo import Document

log = logging.getLogger("guahao.auth.audit")

# replicas compete on evt.auth.audit: each event is recorded once per service.
# `appointment.booked` is left out: only patients book, and it is the bulk of the traffic
# (an 08:00 release burst). A new staff-caused appointment event type is added here.
AUDITED_EVENTS = [
    "appointment.cancelled.*",
    "appointment.checked_in.*",
    "appointment.no_show.*",
    "appointment.rescheduled.*",
    "schedule.*.*",
    "doctor.*.*",
    "hospital.*.*",
    # the queue desk (候诊叫号): calls, 过号, re-queues and 就诊完成 (`queue.near` is no one's act)
    "appointment.completed.*",
    "queue.called.*",
    "queue.skipped.*",
    "queue.requeued.*",
]
# what an entry names as its target, in order of preference: data[<kind>]["id"]
TARGET_KINDS = ("appointment", "schedule", "slot", "doctor", "staff")
# what of an event's data goes into `details` (never patient data)
DETAIL_KEYS = frozenset(
    {
        "id",
        "status",
        "schedule_id",
        "slot_id",
        "doctor_id",
        "department_id",
        "date",
        "period",
        "reason",
        "delta",
        "capacity",
        "role",
        "from_role",
        "disabled",
        "username",
        "generated",
        "cancelled",
        "from_slot_id",
        "to_slot_id",
        "published",
        "rules",
    }
)
MAX_ITEMS = 2000


def _details(data: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in TARGET_KINDS:
            details.update(
                {
                    f"{key}.{k}": v
                    for k, v in value.items()
                    if k in DETAIL_KEYS and not isinstance(v, dict | list)
                }
            )
        elif key in DETAIL_KEYS:
            details[key] = value
    return details


def _target(event: EventEnvelope) -> str:
    for kind in TARGET_KINDS:
        value = event.data.get(kind)
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return f"{kind}/{value['id']}"
    return f"hospital/{event.hospital_id}"


def audit_entry(event: EventEnvelope) -> Document | None:
    """The audit entry of an event, or None when no staff member caused it."""
    if event.actor is None or event.actor.role == "patient":
        return None
    at = dt.datetime.fromisoformat(event.occurred_at).astimezone(dt.UTC)
    return {
        "_id": event.id,
        "hospital_id": event.hospital_id,
        "at": at,
        "staff_id": event.actor.id,
        "role": event.actor.role,
        "action": event.type,
        "target": _target(event),
        "details": _details(event.data),
    }


def entry_view(doc: Document) -> AuditEntry:
    at: dt.datetime = doc["at"]
    if at.tzinfo is None:  # the driver returns naive UTC unless told otherwise
        at = at.replace(tzinfo=dt.UTC)
    return AuditEntry(
        at=at.astimezone(HOSPITAL_TZ).isoformat(timespec="milliseconds"),
        staff_id=doc["staff_id"],
        role=doc.get("role"),
        action=doc["action"],
        target=doc["target"],
        details=doc.get("details") or {},
    )


class AuditTrail:
    """Records audit entries (from events) and reads a hospital's log."""

    def __init__(self, repo: AuditRepository, clock: Callable[[], dt.datetime]) -> None:
        self.repo = repo
        self.clock = clock

    async def on_event(self, event: EventEnvelope) -> None:
        """Consumer handler: record the event if a staff member caused it (idempotent)."""
        entry = audit_entry(event)
        if entry is not None and await self.repo.record(entry):
            log.debug("audit recorded", extra={"event_id": event.id, "action": event.type})

    async def publish(self, event: EventEnvelope) -> None:
        """The sink of auth's own outbox relay (staff-account actions)."""
        await self.on_event(event)

    async def log(self, caller: Caller | None, query: AuditQuery) -> AuditLog:
        """A hospital's entries between two hospital-local dates (inclusive), oldest first.

        Defaults: both today; only `from` → from that day to today; only `to` → that day.
        """
        check_hospital_role(caller, query.hospital_id)
        today = self.clock().astimezone(HOSPITAL_TZ).date()
        first = query.from_ or query.to or today
        last = query.to or max(first, today)
        start = dt.datetime.combine(first, dt.time(), HOSPITAL_TZ)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), HOSPITAL_TZ)
        docs = await self.repo.between(
            query.hospital_id, start.astimezone(dt.UTC), end.astimezone(dt.UTC), MAX_ITEMS
        )
        return AuditLog(items=[entry_view(doc) for doc in docs])
