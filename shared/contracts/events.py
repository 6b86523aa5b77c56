"""The `data` of each domain event, one model per event type: what publishers build and what
consumers (notify, the statistics projection, a HIS) may rely on. `EVENT_DATA` maps every
type to its model; the README's event catalogue is checked against it.

Routing key `<type>.<hospital_id>`; internal types (`patient.*`, `webhook.changed`) are
routed with the hospital id `platform`, which no hospital's binding matches.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from shared.contracts.base import Reply
from shared.contracts.catalog import BookingRules, Doctor, PersonRef, ScheduleDefinition
from shared.messaging.events import EventEnvelope, new_event


class EventPatient(Reply):
    id: str
    name: str
    id_number_masked: str


class EventPayment(Reply):
    """The fee an appointment waits for (hospitals with `payment: required`)."""

    order_id: str
    amount_cents: int


class AppointmentData(Reply):
    """An appointment as it is after the change the event announces."""

    id: str
    status: str
    slot_id: str
    schedule_id: str
    doctor_id: str
    department_id: str
    date: str
    session: str
    start: str
    end: str
    seq_no: int | None = None
    patient: EventPatient
    user_id: str
    doctor: PersonRef
    department: PersonRef
    fee_cents: int
    cancelled_by: str | None = None
    reason: str | None = None
    waitlist_entry_id: str | None = None
    pay_by: str | None = None  # while `pending_payment`
    payment: EventPayment | None = None


class QueuePlace(Reply):
    """An appointment's place in its session's queue (候诊叫号) after the change."""

    schedule_id: str
    session: str
    seq_no: int
    state: str  # waiting | called | skipped | done
    room: str | None = None
    recall: bool | None = None  # queue.called: called again (recall), not call-next
    late: bool | None = None  # queue.requeued: re-inserted after late_requeue_after waiting
    ahead: int | None = None  # queue.near: waiting patients ahead
    eta_minutes: int | None = None
    consult_seconds: int | None = None  # appointment.completed from the queue: done − called


class AppointmentChanged(Reply):
    """`appointment.booked|cancelled|checked_in|no_show|completed` (`queue` on a
    completion the queue desk made)."""

    appointment: AppointmentData
    queue: QueuePlace | None = None


class QueueChanged(Reply):
    """`queue.called|skipped|requeued|near`: the appointment and its place in the queue."""

    appointment: AppointmentData
    queue: QueuePlace


class PreviousSlot(Reply):
    slot_id: str
    date: str
    start: str
    end: str
    seq_no: int | None = None


class AppointmentRescheduled(AppointmentChanged):
    """`appointment.rescheduled` (改约): `previous` is where it was."""

    previous: PreviousSlot


class StoppedSchedule(Reply):
    id: str
    doctor_id: str
    date: str
    session: str
    reason: str


class ScheduleStopped(Reply):
    schedule: StoppedSchedule


class ChangedSlot(Reply):
    id: str
    schedule_id: str
    doctor_id: str
    date: str
    start: str
    end: str
    capacity: int
    delta: int


class CapacityChanged(Reply):
    slot: ChangedSlot


class SchedulePublished(Reply):
    schedule: ScheduleDefinition


class DoctorUpdated(Reply):
    doctor: Doctor


class RulesUpdated(Reply):
    hospital_id: str
    rules: BookingRules


class WaitlistEntryData(Reply):
    id: str
    hospital_id: str
    date_from: str
    date_to: str
    user_id: str
    patient: EventPatient
    doctor_id: str | None = None
    department_id: str | None = None
    sessions: list[str] | None = None


class WaitlistJoined(Reply):
    entry: WaitlistEntryData


class WaitlistPromoted(Reply):
    entry: WaitlistEntryData
    appointment: AppointmentData


class PaymentOrderData(Reply):
    """A registration-fee order (one per appointment) as it is after the change."""

    order_id: str
    appointment_id: str
    user_id: str
    amount_cents: int
    status: str
    transaction_id: str | None = None
    paid_at: str | None = None


class PaymentSucceeded(Reply):
    """`payment.succeeded`: WeChat Pay took the fee (booking confirms the appointment, or
    payment refunds it when the appointment is no longer waiting)."""

    payment: PaymentOrderData


class RefundData(Reply):
    out_refund_no: str
    amount_cents: int
    reason: str


class PaymentRefunded(Reply):
    """`payment.refunded`: the fee is back with the patient."""

    payment: PaymentOrderData
    refund: RefundData


class PatientProfile(Reply):
    """Internal: what booking's projection keeps of a profile (never the ID number)."""

    id: str
    user_id: str
    id_hash: str
    name: str
    id_number_masked: str


class PatientChanged(Reply):
    patient: PatientProfile


class WebhooksChanged(Reply):
    hospital_id: str


EVENT_DATA: dict[str, type[BaseModel]] = {
    "appointment.booked": AppointmentChanged,
    "appointment.pending_payment": AppointmentChanged,
    "appointment.cancelled": AppointmentChanged,
    "appointment.rescheduled": AppointmentRescheduled,
    "appointment.checked_in": AppointmentChanged,
    "appointment.no_show": AppointmentChanged,
    "appointment.completed": AppointmentChanged,
    "queue.called": QueueChanged,
    "queue.skipped": QueueChanged,
    "queue.requeued": QueueChanged,
    "queue.near": QueueChanged,
    "schedule.published": SchedulePublished,
    "schedule.stopped": ScheduleStopped,
    "schedule.capacity_changed": CapacityChanged,
    "doctor.updated": DoctorUpdated,
    "hospital.rules_updated": RulesUpdated,
    "payment.succeeded": PaymentSucceeded,
    "payment.refunded": PaymentRefunded,
    "waitlist.joined": WaitlistJoined,
    "waitlist.promoted": WaitlistPromoted,
    "patient.registered": PatientChanged,
    "patient.updated": PatientChanged,
    "webhook.changed": WebhooksChanged,
}


def typed_event(
    event_type: str,
    hospital_id: str,
    data: BaseModel,
    *,
    at: dt.datetime | None = None,
    keep_none: bool = False,
) -> EventEnvelope:
    """A new event whose data is its type's model (`EVENT_DATA`): a publisher cannot send a
    shape its consumers and the event catalogue do not know. Absent (None) fields are left
    out unless `keep_none` (rules, where None is a value)."""
    expected = EVENT_DATA[event_type]
    if type(data) is not expected:
        raise TypeError(f"{event_type} carries {expected.__name__}, not {type(data).__name__}")
    return new_event(
        event_type, hospital_id, data.model_dump(mode="json", exclude_none=not keep_none), at=at
    )


# the types a hospital receives (the others stay inside guahao)
INTERNAL_TYPES = frozenset({"patient.registered", "patient.updated", "webhook.changed"})
