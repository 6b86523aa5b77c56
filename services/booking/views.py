"""Shapes booking shows the world: the appointment reply and the appointment events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.booking.domain import iso_local
from shared.contracts.booking import Appointment
from shared.contracts.catalog import PersonRef
from shared.contracts.events import (
    EVENT_DATA,
    AppointmentData,
    EventPatient,
    EventPayment,
    typed_event,
)
from shared.messaging.events import EventEnvelope
from shared.storage.mongo import Document


def appointment_view(doc: Document) -> Appointment:
    return Appointment.model_validate(
        {
            **{
                k: v
                for k, v in doc.items()
                if k not in ("_id", "cancel_deadline", "created_at", "pay_by")
            },
            "id": doc["_id"],
            "seq_no": doc.get("seq_no", 0),
            "cancel_deadline": iso_local(doc["cancel_deadline"]),
            "created_at": iso_local(doc["created_at"]),
            "lottery_draw_at": iso_local(doc["draw_at"])
            if doc.get("lottery") and doc["status"] == "pending"
            else None,
            "pay_by": iso_local(doc["pay_by"]) if doc["status"] == "pending_payment" else None,
        }
    )


def appointment_event(
    event_type: str, doc: Document, at: dt.datetime, **extra: Any
) -> EventEnvelope:
    """`appointment.*` with the appointment as it is after the change; its data is the
    event's model (`shared.contracts.events.EVENT_DATA`), absent fields left out."""
    appointment = AppointmentData(
        id=doc["_id"],
        status=doc["status"],
        slot_id=doc["slot_id"],
        schedule_id=doc["schedule_id"],
        doctor_id=doc["doctor_id"],
        department_id=doc["department_id"],
        date=doc["date"],
        session=doc["session"],
        start=doc["start"],
        end=doc["end"],
        seq_no=doc.get("seq_no"),
        patient=EventPatient.model_validate(doc["patient"]),
        user_id=doc["user_id"],
        doctor=PersonRef.model_validate(doc["doctor"]),
        department=PersonRef.model_validate(doc["department"]),
        fee_cents=doc["fee_cents"],
        cancelled_by=doc.get("cancelled_by") or None,
        reason=doc.get("reason") or None,
        waitlist_entry_id=doc.get("waitlist_entry_id") or None,
        pay_by=iso_local(doc["pay_by"]) if doc["status"] == "pending_payment" else None,
        payment=EventPayment(
            order_id=doc["payment"]["order_id"], amount_cents=doc["payment"]["amount_cents"]
        )
        if doc.get("payment")
        else None,
    )
    data = EVENT_DATA[event_type].model_validate({"appointment": appointment, **extra})
    return typed_event(event_type, doc["hospital_id"], data, at=at)
