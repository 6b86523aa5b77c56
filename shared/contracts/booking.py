"""Booking contracts: appointments, eligibility, inventory, hospital actions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from shared.contracts.base import Contract, Cursor, PlausibleDate, Reply
from shared.contracts.catalog import Id, PersonRef, Session
from shared.contracts.payment import AppointmentPayment, AppointmentRefund

AppointmentStatus = Literal[
    "pending_payment", "booked", "checked_in", "completed", "cancelled", "no_show"
]
# what a patient can see: also `pending` while a release lottery has not been drawn yet
VisibleStatus = Literal[
    "pending", "pending_payment", "booked", "checked_in", "completed", "cancelled", "no_show"
]
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AvailabilityQuery(Contract):
    schedule_ids: Annotated[list[Id], Field(max_length=500)]


class SlotAvailability(Reply):
    id: str
    capacity: int
    remaining: int


class ScheduleAvailability(Reply):
    schedule_id: str
    stopped: bool
    slots: list[SlotAvailability]


class Availability(Reply):
    items: list[ScheduleAvailability]


class BookRequest(Contract):
    slot_id: Id
    patient_id: Id


class BookParams(BookRequest):
    idempotency_key: IdempotencyKey | None = None


class EligibilityQuery(Contract):
    slot_id: Id
    patient_id: Id


class EligibilityReason(Reply):
    code: str
    message: str
    until: str | None = None


class Eligibility(Reply):
    eligible: bool
    reasons: list[EligibilityReason]


class AppointmentPatient(Reply):
    id: str
    name: str
    id_number_masked: str


class Appointment(Reply):
    id: str
    status: VisibleStatus
    seq_no: int
    hospital_id: str
    slot_id: str
    schedule_id: str
    doctor: PersonRef
    department: PersonRef
    date: dt.date
    session: Session
    start: str
    end: str
    fee_cents: int
    patient: AppointmentPatient
    cancel_deadline: str
    created_at: str
    cancelled_by: Literal["patient", "hospital", "system"] | None = None
    reason: str | None = None
    lottery_draw_at: str | None = None  # set while the request waits for the release draw
    pay_by: str | None = None  # `pending_payment`: unpaid by then → cancelled (unpaid)
    payment: AppointmentPayment | None = None  # hospitals with `payment: required`
    refund: AppointmentRefund | None = None


class AppointmentList(Reply):
    items: list[Appointment]
    next: str | None = None


class AppointmentQuery(Contract):
    status: VisibleStatus | None = None
    cursor: Cursor | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20


class AppointmentRef(Contract):
    appointment_id: Id


class HospitalAppointmentFilter(Contract):
    """Query of `GET /admin/hospitals/{hid}/appointments`."""

    date: PlausibleDate | None = None
    doctor_id: Id | None = None
    schedule_id: Id | None = None
    status: AppointmentStatus | None = None
    cursor: Cursor | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class HospitalAppointmentQuery(HospitalAppointmentFilter):
    hospital_id: Id


class HospitalAppointmentRef(Contract):
    hospital_id: Id
    appointment_id: Id


class HospitalCancel(Contract):
    reason: Reason | None = None


class HospitalCancelParams(HospitalCancel):
    hospital_id: Id
    appointment_id: Id


class MoveRequest(Contract):
    slot_id: Id


class MoveParams(MoveRequest):
    hospital_id: Id
    appointment_id: Id


class PatientMoveParams(MoveRequest):
    """`POST /appointments/{aid}/move`: the patient's own 改约."""

    appointment_id: Id


class ForgetPatient(Contract):
    """Internal (auth → booking, before a profile is deleted): it may never book again."""

    user_id: Id
    patient_id: Id
    id_hash: Annotated[str, StringConstraints(min_length=16, max_length=128)]


class StopSchedule(Contract):
    reason: Reason


class StopScheduleParams(StopSchedule):
    hospital_id: Id
    schedule_id: Id


class StopResult(Reply):
    schedule_id: str
    status: Literal["stopped"]
    cancelled: int


class CapacityChange(Contract):
    delta: Annotated[int, Field(ge=-1000, le=1000)]


class CapacityChangeParams(CapacityChange):
    hospital_id: Id
    slot_id: Id


class SlotState(Reply):
    id: str
    schedule_id: str
    start: str
    end: str
    capacity: int
    remaining: int


class WaitlistJoin(Contract):
    """`POST /waitlist`: wait for a doctor, or for any doctor of a department (the hospital
    is derived from it; `hospital_id` is accepted, not required)."""

    hospital_id: Id | None = None
    doctor_id: Id | None = None
    department_id: Id | None = None
    date_from: PlausibleDate
    date_to: PlausibleDate
    sessions: Annotated[list[Session], Field(max_length=3)] | None = None
    patient_id: Id

    @model_validator(mode="after")
    def _target_and_range(self) -> WaitlistJoin:
        if (self.doctor_id is None) == (self.department_id is None):
            raise ValueError(
                "doctor_id 与 department_id 须且只须给出一个 / "
                "give exactly one of doctor_id and department_id"
            )
        if self.date_to < self.date_from:
            raise ValueError("date_to 不能早于 date_from / date_to before date_from")
        if (self.date_to - self.date_from).days > 31:
            raise ValueError("候补日期范围最多31天 / at most 31 days")
        return self


class WaitlistEntry(Reply):
    id: str
    status: Literal["waiting", "promoted", "cancelled"]
    hospital_id: str
    doctor_id: str | None = None
    department_id: str | None = None
    date_from: dt.date
    date_to: dt.date
    sessions: list[Session] | None = None
    patient: AppointmentPatient
    created_at: str
    appointment_id: str | None = None


class WaitlistList(Reply):
    items: list[WaitlistEntry]


class WaitlistRef(Contract):
    entry_id: Id
