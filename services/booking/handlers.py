"""RPC entry points of `rpc.booking` (replicas compete on the one queue) and the event
entry points of booking. Each turns a contract into a call on a collaborator and back;
no rule lives here."""

from __future__ import annotations

from typing import Any

from services.booking.booker import Booker
from services.booking.clinic import SessionAdmin
from services.booking.domain import PatientRef
from services.booking.fhir import register_fhir
from services.booking.lifecycle import AppointmentLifecycle
from services.booking.projections import PatientDirectory, RulesBook, SoldOutBoard
from services.booking.queries import AppointmentQueries
from services.booking.repository import Sessions
from services.booking.waitlist import WaitlistService
from shared.access import require_hospital_admin, require_hospital_desk, require_patient
from shared.context import INTERNAL_ROLES, CallContext
from shared.contracts.auth import ActiveAppointmentCount
from shared.contracts.booking import (
    Appointment,
    AppointmentList,
    AppointmentQuery,
    AppointmentRef,
    Availability,
    AvailabilityQuery,
    BookParams,
    CapacityChangeParams,
    Eligibility,
    EligibilityQuery,
    ForgetPatient,
    HospitalAppointmentQuery,
    HospitalAppointmentRef,
    HospitalCancelParams,
    MoveParams,
    PatientMoveParams,
    SlotState,
    StopResult,
    StopScheduleParams,
    WaitlistEntry,
    WaitlistJoin,
    WaitlistList,
    WaitlistRef,
)
from shared.contracts.catalog import BookingRules, ScheduleDefinition
from shared.errors import DomainError, Forbidden
from shared.messaging.events import EventEnvelope
from shared.messaging.rpc import RpcServer
from shared.metrics import Registry
from shared.storage.opcount import counting


class BookingHandlers:
    """`rpc.booking`: one method per entry point, registered by name."""

    def __init__(
        self,
        *,
        booker: Booker,
        lifecycle: AppointmentLifecycle,
        admin: SessionAdmin,
        queries: AppointmentQueries,
        waitlist: WaitlistService,
        patients: PatientDirectory,
        metrics: Registry | None = None,
    ) -> None:
        self.decisions = (metrics or Registry()).counter(
            "guahao_booking_decisions_total",
            "Booking decisions by outcome and the store operations each cost.",
            ("outcome", "store_ops"),
        )
        self.booker = booker
        self.lifecycle = lifecycle
        self.admin = admin
        self.queries = queries
        self.waitlist = waitlist
        self.patients = patients

    def register(self, server: RpcServer) -> None:
        register_fhir(server, self.queries)
        for name in (
            "book",
            "eligibility",
            "list_appointments",
            "get_appointment",
            "cancel_appointment",
            "move_appointment",
            "join_waitlist",
            "list_waitlist",
            "leave_waitlist",
            "availability",
            "hospital_appointments",
            "hospital_get_appointment",
            "hospital_cancel",
            "check_in",
            "no_show",
            "complete",
            "move",
            "stop_schedule",
            "change_capacity",
            "forget_patient",
            "count_active_appointments",
        ):
            server.add_method(name, getattr(self, name))

    # ---- patients ----------------------------------------------------------------------

    async def book(self, params: BookParams, ctx: CallContext) -> dict[str, Any]:
        outcome = "error"
        with counting() as ops:
            try:
                appointment, created = await self.booker.book(require_patient(ctx), params)
                outcome = "created" if created else "replayed"
            except DomainError as exc:
                outcome = exc.code
                raise
            finally:
                self.decisions.inc(outcome, str(len(ops)) if len(ops) < 9 else "9+")
        return {"created": created, "resource": appointment.model_dump(mode="json")}

    async def eligibility(self, params: EligibilityQuery, ctx: CallContext) -> Eligibility:
        return await self.queries.eligibility(
            require_patient(ctx), params.slot_id, params.patient_id
        )

    async def list_appointments(
        self, params: AppointmentQuery, ctx: CallContext
    ) -> AppointmentList:
        return await self.queries.list_for_user(
            require_patient(ctx), params.status, params.cursor, params.limit
        )

    async def get_appointment(self, params: AppointmentRef, ctx: CallContext) -> Appointment:
        return await self.queries.get_for_user(require_patient(ctx), params.appointment_id)

    async def cancel_appointment(self, params: AppointmentRef, ctx: CallContext) -> Appointment:
        return await self.lifecycle.cancel_by_patient(require_patient(ctx), params.appointment_id)

    async def move_appointment(self, params: PatientMoveParams, ctx: CallContext) -> Appointment:
        return await self.lifecycle.move_by_patient(
            require_patient(ctx), params.appointment_id, params.slot_id
        )

    async def join_waitlist(self, params: WaitlistJoin, ctx: CallContext) -> WaitlistEntry:
        return await self.waitlist.join(require_patient(ctx), params)

    async def list_waitlist(self, params: None, ctx: CallContext) -> WaitlistList:
        return await self.waitlist.list_for_user(require_patient(ctx))

    async def leave_waitlist(self, params: WaitlistRef, ctx: CallContext) -> WaitlistEntry:
        return await self.waitlist.cancel(require_patient(ctx), params.entry_id)

    async def count_active_appointments(
        self, params: None, ctx: CallContext
    ) -> ActiveAppointmentCount:
        """Asked by auth on the patient's behalf before their account is deleted."""
        user_id = require_patient(ctx)
        return ActiveAppointmentCount(
            active=await self.queries.active_count_for_user(user_id),
            waiting=await self.waitlist.waiting_count(user_id),
        )

    async def availability(self, params: AvailabilityQuery, ctx: CallContext) -> Availability:
        return await self.admin.availability(params.schedule_ids)

    # ---- hospital staff ----------------------------------------------------------------

    async def hospital_appointments(
        self, params: HospitalAppointmentQuery, ctx: CallContext
    ) -> AppointmentList:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.queries.list_for_hospital(params.hospital_id, params)

    async def hospital_get_appointment(
        self, params: HospitalAppointmentRef, ctx: CallContext
    ) -> Appointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.queries.get_for_hospital(params.hospital_id, params.appointment_id)

    async def hospital_cancel(self, params: HospitalCancelParams, ctx: CallContext) -> Appointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.lifecycle.cancel_by_hospital(
            params.hospital_id, params.appointment_id, params.reason
        )

    async def check_in(self, params: HospitalAppointmentRef, ctx: CallContext) -> Appointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.lifecycle.check_in(params.hospital_id, params.appointment_id)

    async def no_show(self, params: HospitalAppointmentRef, ctx: CallContext) -> Appointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.lifecycle.mark_no_show(params.hospital_id, params.appointment_id)

    async def complete(self, params: HospitalAppointmentRef, ctx: CallContext) -> Appointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.lifecycle.complete(params.hospital_id, params.appointment_id)

    async def move(self, params: MoveParams, ctx: CallContext) -> Appointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.lifecycle.move_by_hospital(
            params.hospital_id, params.appointment_id, params.slot_id
        )

    async def stop_schedule(self, params: StopScheduleParams, ctx: CallContext) -> StopResult:
        require_hospital_admin(ctx, params.hospital_id)
        return await self.admin.stop(params.hospital_id, params.schedule_id, params.reason)

    async def change_capacity(self, params: CapacityChangeParams, ctx: CallContext) -> SlotState:
        require_hospital_admin(ctx, params.hospital_id)
        return await self.admin.change_capacity(params.hospital_id, params.slot_id, params.delta)

    # ---- services ----------------------------------------------------------------------

    async def forget_patient(self, params: ForgetPatient, ctx: CallContext) -> dict[str, bool]:
        """auth, before it deletes a profile: it can never book again after this returns.
        Only auth's own signed calls (or a platform admin) may say so."""
        caller = ctx.caller
        allowed = (
            caller.role in INTERNAL_ROLES if caller is not None else ctx.service in (None, "auth")
        )  # None: an unsigned test server
        if not allowed:
            raise Forbidden()
        await self.patients.forget(params.patient_id, params.id_hash)
        return {"forgotten": True}


class BookingEvents:
    """What booking hears: schedules to hold (competing consumers), patient profiles for its
    projection (competing), and the per-replica view refreshes (every replica)."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        patients: PatientDirectory,
        rules: RulesBook,
        sold_out: SoldOutBoard,
    ) -> None:
        self.sessions = sessions
        self.patients = patients
        self.rules = rules
        self.sold_out = sold_out

    async def schedule_published(self, event: EventEnvelope) -> None:
        await self.sessions.register(ScheduleDefinition.model_validate(event.data["schedule"]))

    async def patient_changed(self, event: EventEnvelope) -> None:
        """`patient.registered|updated|deleted`: the `patients` projection (one replica)."""
        patient = patient_of(event)
        if event.type == "patient.deleted":
            await self.patients.forget(patient.id, patient.id_hash)
        else:
            await self.patients.learn(patient)

    async def refresh_views(self, event: EventEnvelope) -> None:
        """Every replica: its memory of patients, rules and sold-out slots."""
        if event.type.startswith("patient."):
            patient = patient_of(event)
            if event.type == "patient.deleted":
                self.patients.drop(patient.id)
            else:
                self.patients.remember(patient)
        elif event.type == "hospital.rules_updated":
            raw = event.data.get("rules")
            self.rules.changed(event.hospital_id, BookingRules.model_validate(raw) if raw else None)
        elif "appointment" in event.data:
            self.sold_out.freed(event.data["appointment"]["slot_id"])
            previous = event.data.get("previous") or {}
            if "slot_id" in previous:
                self.sold_out.freed(previous["slot_id"])
        elif "slot" in event.data:
            self.sold_out.freed(event.data["slot"]["id"])


def patient_of(event: EventEnvelope) -> PatientRef:
    data = event.data["patient"]
    return PatientRef(
        id=data["id"],
        user_id=data["user_id"],
        id_hash=data["id_hash"],
        name=data.get("name", ""),
        id_number_masked=data.get("id_number_masked", ""),
    )
