"""RPC entry points of `rpc.booking` (replicas compete on the one queue)."""

from __future__ import annotations

from typing import Any

from services.booking.fhir import register_fhir
from services.booking.service import BookingService
from services.booking.waitlist import WaitlistService
from shared.access import require_hospital, require_patient
from shared.context import CallContext
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
from shared.messaging.rpc import RpcServer


def register(server: RpcServer, booking: BookingService, waitlist: WaitlistService) -> None:
    register_fhir(server, booking)

    @server.method("join_waitlist")
    async def join_waitlist(params: WaitlistJoin, ctx: CallContext) -> WaitlistEntry:
        return await waitlist.join(require_patient(ctx), params)

    @server.method("list_waitlist")
    async def list_waitlist(params: None, ctx: CallContext) -> WaitlistList:
        return await waitlist.list_for_user(require_patient(ctx))

    @server.method("leave_waitlist")
    async def leave_waitlist(params: WaitlistRef, ctx: CallContext) -> WaitlistEntry:
        return await waitlist.cancel(require_patient(ctx), params.entry_id)

    @server.method("count_active_appointments")
    async def count_active_appointments(params: None, ctx: CallContext
                                        ) -> ActiveAppointmentCount:
        # asked by auth on the patient's behalf before their account is deleted
        user_id = require_patient(ctx)
        return ActiveAppointmentCount(active=await booking.active_count_for_user(user_id),
                                      waiting=await waitlist.waiting_count(user_id))

    @server.method("availability")
    async def availability(params: AvailabilityQuery, ctx: CallContext) -> Availability:
        return await booking.availability(params.schedule_ids)

    @server.method("book")
    async def book(params: BookParams, ctx: CallContext) -> dict[str, Any]:
        appointment, created = await booking.book(require_patient(ctx), params)
        return {"created": created, "resource": appointment.model_dump(mode="json")}

    @server.method("eligibility")
    async def eligibility(params: EligibilityQuery, ctx: CallContext) -> Eligibility:
        return await booking.eligibility(require_patient(ctx), params.slot_id, params.patient_id)

    @server.method("list_appointments")
    async def list_appointments(params: AppointmentQuery, ctx: CallContext) -> AppointmentList:
        return await booking.list_for_user(require_patient(ctx), params.status, params.cursor,
                                           params.limit)

    @server.method("get_appointment")
    async def get_appointment(params: AppointmentRef, ctx: CallContext) -> Appointment:
        return await booking.get_for_user(require_patient(ctx), params.appointment_id)

    @server.method("cancel_appointment")
    async def cancel_appointment(params: AppointmentRef, ctx: CallContext) -> Appointment:
        return await booking.cancel_by_patient(require_patient(ctx), params.appointment_id)

    @server.method("hospital_appointments")
    async def hospital_appointments(params: HospitalAppointmentQuery, ctx: CallContext
                                    ) -> AppointmentList:
        require_hospital(ctx, params.hospital_id)
        filters: dict[str, Any] = {}
        if params.date:
            filters["date"] = params.date.isoformat()
        if params.doctor_id:
            filters["doctor_id"] = params.doctor_id
        if params.schedule_id:
            filters["schedule_id"] = params.schedule_id
        if params.status:
            filters["status"] = params.status
        return await booking.list_for_hospital(params.hospital_id, filters, params.cursor,
                                               params.limit)

    @server.method("hospital_get_appointment")
    async def hospital_get_appointment(params: HospitalAppointmentRef, ctx: CallContext
                                       ) -> Appointment:
        require_hospital(ctx, params.hospital_id)
        return await booking.get_for_hospital(params.hospital_id, params.appointment_id)

    @server.method("hospital_cancel")
    async def hospital_cancel(params: HospitalCancelParams, ctx: CallContext) -> Appointment:
        require_hospital(ctx, params.hospital_id)
        return await booking.cancel_by_hospital(params.hospital_id, params.appointment_id,
                                                params.reason)

    @server.method("check_in")
    async def check_in(params: HospitalAppointmentRef, ctx: CallContext) -> Appointment:
        require_hospital(ctx, params.hospital_id)
        return await booking.check_in(params.hospital_id, params.appointment_id)

    @server.method("no_show")
    async def no_show(params: HospitalAppointmentRef, ctx: CallContext) -> Appointment:
        require_hospital(ctx, params.hospital_id)
        return await booking.mark_no_show(params.hospital_id, params.appointment_id)

    @server.method("move")
    async def move(params: MoveParams, ctx: CallContext) -> Appointment:
        require_hospital(ctx, params.hospital_id)
        return await booking.move(params.hospital_id, params.appointment_id, params.slot_id)

    @server.method("move_by_patient")
    async def move_by_patient(params: PatientMoveParams, ctx: CallContext) -> Appointment:
        return await booking.move_by_patient(require_patient(ctx), params.appointment_id,
                                             params.slot_id)

    @server.method("stop_schedule")
    async def stop_schedule(params: StopScheduleParams, ctx: CallContext) -> StopResult:
        require_hospital(ctx, params.hospital_id)
        return await booking.stop_schedule(params.hospital_id, params.schedule_id, params.reason)

    @server.method("change_capacity")
    async def change_capacity(params: CapacityChangeParams, ctx: CallContext) -> SlotState:
        require_hospital(ctx, params.hospital_id)
        return await booking.change_capacity(params.hospital_id, params.slot_id, params.delta)
