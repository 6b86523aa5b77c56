"""RPC entry points of `rpc.catalog`: contract in, service call, contract out.

Replicas compete on the one `rpc.catalog` queue; every method is safe to serve from any of
them. Public methods ignore the caller, admin methods check it, internal ones (called by
other services) accept any.
"""

from __future__ import annotations

from services.catalog.fhir import register_fhir
from services.catalog.scheduling import Scheduler
from services.catalog.service import CatalogService
from services.catalog.stats import StatsService
from shared.context import CallContext
from shared.contracts.catalog import (
    AdminDoctorQuery,
    AdminScheduleQuery,
    BookingRules,
    Department,
    DepartmentCreateParams,
    DepartmentTree,
    Doctor,
    DoctorCreateParams,
    DoctorList,
    DoctorPatchParams,
    DoctorQuery,
    DoctorRef,
    HospitalCreate,
    HospitalDetail,
    HospitalExists,
    HospitalList,
    HospitalOf,
    HospitalOfQuery,
    HospitalRef,
    RulesPatchParams,
    Schedule,
    ScheduleCreateParams,
    ScheduleDefinition,
    ScheduleList,
    ScheduleQuery,
    ScheduleRef,
    SlotRef,
)
from shared.contracts.scheduling import (
    CalendarDayParams,
    CalendarList,
    CalendarQuery,
    CalendarSet,
    DoctorTemplatesRef,
    Leave,
    LeaveCreateParams,
    Preview,
    PreviewQuery,
    Stats,
    StatsQuery,
    TemplateCreateParams,
    TemplatePatchParams,
    TemplateRef,
    WeeklyTemplate,
    WeeklyTemplateList,
)
from shared.messaging.rpc import RpcServer


def register(server: RpcServer, catalog: CatalogService, *, appid: str) -> None:
    """Serve the catalog methods from `server`."""

    async def list_hospitals(params: None, ctx: CallContext) -> HospitalList:
        return await catalog.list_hospitals()

    async def get_hospital(params: HospitalRef, ctx: CallContext) -> HospitalDetail:
        return await catalog.get_hospital(params.hospital_id)

    async def list_departments(params: HospitalRef, ctx: CallContext) -> DepartmentTree:
        return await catalog.list_departments(params.hospital_id)

    async def list_doctors(params: DoctorQuery, ctx: CallContext) -> DoctorList:
        return await catalog.list_doctors(params)

    async def get_doctor(params: DoctorRef, ctx: CallContext) -> Doctor:
        return await catalog.get_doctor(params.doctor_id)

    async def doctor_schedules(params: ScheduleQuery, ctx: CallContext) -> ScheduleList:
        return await catalog.doctor_schedules(params)

    async def create_hospital(params: HospitalCreate, ctx: CallContext) -> HospitalDetail:
        return await catalog.create_hospital(ctx.caller, params)

    async def create_department(params: DepartmentCreateParams, ctx: CallContext) -> Department:
        return await catalog.create_department(ctx.caller, params)

    async def create_doctor(params: DoctorCreateParams, ctx: CallContext) -> Doctor:
        return await catalog.create_doctor(ctx.caller, params)

    async def update_doctor(params: DoctorPatchParams, ctx: CallContext) -> Doctor:
        return await catalog.update_doctor(ctx.caller, params)

    async def update_rules(params: RulesPatchParams, ctx: CallContext) -> HospitalDetail:
        return await catalog.update_rules(ctx.caller, params)

    async def create_schedule(params: ScheduleCreateParams, ctx: CallContext) -> Schedule:
        return await catalog.create_schedule(ctx.caller, params)

    async def admin_doctors(params: AdminDoctorQuery, ctx: CallContext) -> DoctorList:
        return await catalog.admin_doctors(ctx.caller, params)

    async def admin_schedules(params: AdminScheduleQuery, ctx: CallContext) -> ScheduleList:
        return await catalog.admin_schedules(ctx.caller, params)

    async def hospital_exists(params: HospitalRef, ctx: CallContext) -> HospitalExists:
        return await catalog.hospital_exists(params.hospital_id)

    async def hospital_of(params: HospitalOfQuery, ctx: CallContext) -> HospitalOf:
        return await catalog.hospital_of(params)

    async def booking_rules(params: HospitalRef, ctx: CallContext) -> BookingRules:
        return await catalog.booking_rules(params.hospital_id)

    async def schedule_for_slot(params: SlotRef, ctx: CallContext) -> ScheduleDefinition:
        return await catalog.schedule_for_slot(params.slot_id)

    async def schedule_definition(params: ScheduleRef, ctx: CallContext) -> ScheduleDefinition:
        return await catalog.schedule_definition(params.schedule_id)

    for handler in (
        list_hospitals,
        get_hospital,
        list_departments,
        list_doctors,
        get_doctor,
        doctor_schedules,
        create_hospital,
        create_department,
        create_doctor,
        update_doctor,
        update_rules,
        create_schedule,
        admin_doctors,
        admin_schedules,
        hospital_exists,
        booking_rules,
        schedule_for_slot,
        schedule_definition,
        hospital_of,
    ):
        server.add_method(handler.__name__, handler)
    register_fhir(server, catalog, appid=appid)


def register_scheduling(server: RpcServer, scheduler: Scheduler, stats: StatsService) -> None:
    """Serve the 排班 (templates, calendar, leave, preview) and statistics methods."""

    async def list_templates(params: DoctorTemplatesRef, ctx: CallContext) -> WeeklyTemplateList:
        return await scheduler.list_templates(ctx.caller, params)

    async def get_template(params: TemplateRef, ctx: CallContext) -> WeeklyTemplate:
        return await scheduler.get_template(ctx.caller, params)

    async def create_template(params: TemplateCreateParams, ctx: CallContext) -> WeeklyTemplate:
        return await scheduler.create_template(ctx.caller, params)

    async def update_template(params: TemplatePatchParams, ctx: CallContext) -> WeeklyTemplate:
        return await scheduler.update_template(ctx.caller, params)

    async def delete_template(params: TemplateRef, ctx: CallContext) -> WeeklyTemplate:
        return await scheduler.delete_template(ctx.caller, params)

    async def set_calendar_day(params: CalendarDayParams, ctx: CallContext) -> CalendarSet:
        return await scheduler.set_calendar_day(ctx.caller, params)

    async def hospital_calendar(params: CalendarQuery, ctx: CallContext) -> CalendarList:
        return await scheduler.calendar(ctx.caller, params)

    async def doctor_leave(params: LeaveCreateParams, ctx: CallContext) -> Leave:
        return await scheduler.add_leave(ctx.caller, params)

    async def preview_schedules(params: PreviewQuery, ctx: CallContext) -> Preview:
        return await scheduler.preview(ctx.caller, params)

    async def hospital_stats(params: StatsQuery, ctx: CallContext) -> Stats:
        return await stats.query(ctx.caller, params)

    for handler in (
        list_templates,
        get_template,
        create_template,
        update_template,
        delete_template,
        set_calendar_day,
        hospital_calendar,
        doctor_leave,
        preview_schedules,
        hospital_stats,
    ):
        server.add_method(handler.__name__, handler)
