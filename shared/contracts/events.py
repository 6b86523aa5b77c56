"""The `data` of each domain event, one model per event type: what publishers build and what
consumers (notify, the statistics projection, a HIS) may rely on. `EVENT_DATA` maps every
type to its model; the README's event catalogue is checked against it.

Routing key `<type>.<hospital_id>`; internal types (`patient.*`, `webhook.changed`) are
routed with the hospital id `platform`, which no hospital's binding matches.
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.contracts.base import Reply
from shared.contracts.catalog import BookingRules, Doctor, PersonRef, ScheduleDefinition


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


class AppointmentChanged(Reply):
    """`appointment.booked|cancelled|checked_in|no_show|completed`."""

    appointment: AppointmentData


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
# the types a hospital receives (the others stay inside guahao)
INTERNAL_TYPES = frozenset({"patient.registered", "patient.updated", "webhook.changed"})
