"""Shapes booking shows the world: the appointment reply and the appointment events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.booking.domain import iso_local
from shared.contracts.booking import Appointment
from shared.messaging.events import EventEnvelope, new_event
from shared.storage.mongo import Document


def appointment_view(doc: Document) -> Appointment:
    return Appointment.model_validate({
        **{k: v for k, v in doc.items() if k not in ("_id", "cancel_deadline", "created_at")},
        "id": doc["_id"], "seq_no": doc.get("seq_no", 0),
        "cancel_deadline": iso_local(doc["cancel_deadline"]),
        "created_at": iso_local(doc["created_at"]),
        "lottery_draw_at": iso_local(doc["draw_at"]) if doc.get("lottery")
        and doc["status"] == "pending" else None,
    })


def appointment_event(event_type: str, doc: Document, at: dt.datetime, **extra: Any
                      ) -> EventEnvelope:
    """`appointment.*` with the appointment as it is after the change."""
    appointment: Document = {
        "id": doc["_id"], "status": doc["status"], "slot_id": doc["slot_id"],
        "schedule_id": doc["schedule_id"], "doctor_id": doc["doctor_id"],
        "department_id": doc["department_id"], "date": doc["date"],
        "session": doc["session"], "start": doc["start"], "end": doc["end"],
        "seq_no": doc.get("seq_no"), "patient": doc["patient"], "user_id": doc["user_id"],
        "doctor": doc["doctor"], "department": doc["department"],
        "fee_cents": doc["fee_cents"],
    }
    for key in ("cancelled_by", "reason", "waitlist_entry_id"):
        if doc.get(key):
            appointment[key] = doc[key]
    return new_event(event_type, doc["hospital_id"], {"appointment": appointment, **extra},
                     at=at)
