"""FHIR R4 Appointment, next to the appointments: read by the staff of the appointment's
hospital (or a platform admin). The patient appears by masked name only — no profile id,
no ID number, no phone."""

from __future__ import annotations

from services.booking.queries import AppointmentQueries
from shared.access import require_caller, require_hospital
from shared.context import CallContext
from shared.contracts.booking import Appointment
from shared.contracts.fhir import (
    SESSION_LABELS,
    AppointmentParticipant,
    AppointmentStatusCode,
    CodeableConcept,
    Coding,
    FhirAppointment,
    FhirAppointmentRef,
    Identifier,
    Reference,
    fhir_id,
    guahao_id,
    local_instant,
    mask_name,
    reference_to,
)
from shared.errors import Forbidden, NotFound
from shared.messaging.rpc import RpcServer
from shared.rules import at_local

STAFF_ROLES = frozenset({"hospital_admin", "platform_admin"})
NO_SUCH_APPOINTMENT = "预约不存在 / appointment not found"

APPOINTMENT_STATUS: dict[str, AppointmentStatusCode] = {
    "pending_payment": "pending",  # held, waiting for the registration fee
    "booked": "booked",
    "checked_in": "checked-in",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "no_show": "noshow",
}
CANCELLED_BY = {
    "patient": "患者取消 / cancelled by the patient",
    "hospital": "医院取消 / cancelled by the hospital",
    "system": "系统取消 / cancelled by the system",
}
PRIMARY_PERFORMER = CodeableConcept(
    coding=[
        Coding(
            system="http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            code="PPRF",
            display="primary performer",
        )
    ]
)
SEQUENCE_NUMBER = CodeableConcept(text="就诊序号 / visit sequence number")


def cancellation_reason(appointment: Appointment) -> CodeableConcept | None:
    if appointment.status != "cancelled":
        return None
    parts = [CANCELLED_BY.get(appointment.cancelled_by or ""), appointment.reason]
    text = "：".join(p for p in parts if p)
    return CodeableConcept(text=text) if text else None


def appointment_resource(appointment: Appointment) -> FhirAppointment:
    a = appointment
    department = [CodeableConcept(text=a.department.name)]
    starts, ends = at_local(a.date, a.start), at_local(a.date, a.end)
    return FhirAppointment(
        id=fhir_id(a.id),
        identifier=[Identifier(use="usual", type=SEQUENCE_NUMBER, value=str(a.seq_no))]
        if a.seq_no
        else None,
        status=APPOINTMENT_STATUS[a.status],
        cancelationReason=cancellation_reason(a),
        serviceType=department,
        specialty=department,
        description=f"{a.department.name} {a.doctor.name} {a.date.isoformat()} "
        f"{SESSION_LABELS.get(a.session, a.session)} {a.start}-{a.end}",
        start=local_instant(a.date, a.start),
        end=local_instant(a.date, a.end),
        minutesDuration=max(1, int((ends - starts).total_seconds() // 60)),
        slot=[Reference(reference=reference_to("Slot", a.slot_id))],
        created=a.created_at,
        participant=[
            AppointmentParticipant(
                type=[PRIMARY_PERFORMER],
                actor=Reference(
                    reference=reference_to("Practitioner", a.doctor.id),
                    display=" ".join(p for p in (a.doctor.name, a.doctor.title) if p),
                ),
                required="required",
                status="accepted",
            ),
            AppointmentParticipant(
                actor=Reference(type="Patient", display=mask_name(a.patient.name)),
                required="required",
                status="accepted",
            ),
            AppointmentParticipant(
                actor=Reference(reference=reference_to("Location", a.hospital_id)),
                required="required",
                status="accepted",
            ),
        ],
    )


def register_fhir(server: RpcServer, queries: AppointmentQueries) -> None:
    """Serve `fhir_appointment`: hospital staff read their own hospital's appointments;
    another hospital's are NotFound, as everywhere else."""

    @server.method("fhir_appointment")
    async def fhir_appointment(params: FhirAppointmentRef, ctx: CallContext) -> FhirAppointment:
        if require_caller(ctx).role not in STAFF_ROLES:
            raise Forbidden()
        appointment_id = guahao_id(params.id)
        doc = await queries.appointments.get(appointment_id)
        if doc is None:
            raise NotFound(NO_SUCH_APPOINTMENT)
        require_hospital(ctx, doc["hospital_id"])
        return appointment_resource(
            await queries.get_for_hospital(doc["hospital_id"], appointment_id)
        )
