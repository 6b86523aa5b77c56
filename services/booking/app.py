"""Wiring of the booking service: every collaborator built once, here, with what it needs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from services.booking.booker import ORPHAN_CHECK_AFTER, Booker
from services.booking.clinic import SessionAdmin
from services.booking.domain import PatientRef
from services.booking.handlers import BookingEvents, BookingHandlers
from services.booking.jobs import EndOfDay, Reconciler
from services.booking.lifecycle import AppointmentLifecycle
from services.booking.lottery import ReleaseLottery
from services.booking.payments import FeeOutcomes
from services.booking.projections import (
    AuthPort,
    CatalogPort,
    PatientDirectory,
    RulesBook,
    SessionBook,
    SoldOutBoard,
)
from services.booking.queries import AppointmentQueries
from services.booking.queue import QueueDesk
from services.booking.queue_handlers import QueueHandlers
from services.booking.queue_repository import QueueStore
from services.booking.repository import (
    Appointments,
    DaySweeps,
    Holds,
    Patients,
    Persons,
    Sessions,
    Waitlist,
)
from services.booking.waitlist import WaitlistService
from shared.contracts.catalog import (
    BookingRules,
    HospitalOfQuery,
    HospitalRef,
    ScheduleDefinition,
    SlotRef,
)
from shared.contracts.patients import PatientResolveParams, ResolvedPatient
from shared.errors import NotFound
from shared.faults import FaultPoints
from shared.messaging.broadcast import BroadcastListener
from shared.messaging.outbox import OutboxRelay
from shared.messaging.rpc import RpcClient
from shared.metrics import Registry
from shared.runtime import ServiceRuntime

Clock = Any


class CatalogClient:
    """Booking's read-through to the catalog (first sight of a slot, rules once per change)."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def rules(self, hospital_id: str) -> BookingRules:
        reply = await self.rpc.call(
            "catalog", "booking_rules", HospitalRef(hospital_id=hospital_id)
        )
        return BookingRules.model_validate(reply)

    async def schedule_for_slot(self, slot_id: str) -> ScheduleDefinition | None:
        try:
            reply = await self.rpc.call("catalog", "schedule_for_slot", SlotRef(slot_id=slot_id))
        except NotFound:
            return None
        return ScheduleDefinition.model_validate(reply)

    async def schedule_definition(self, schedule_id: str) -> ScheduleDefinition | None:
        try:
            reply = await self.rpc.call(
                "catalog", "schedule_definition", {"schedule_id": schedule_id}
            )
        except NotFound:
            return None
        return ScheduleDefinition.model_validate(reply)

    async def hospital_of(self, doctor_id: str | None, department_id: str | None) -> str:
        reply = await self.rpc.call(
            "catalog",
            "hospital_of",
            HospitalOfQuery(doctor_id=doctor_id, department_id=department_id),
        )
        return str(reply["hospital_id"])


class AuthClient:
    """Booking's read-through to auth: a profile booking has not heard of yet."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def resolve(self, user_id: str, patient_id: str) -> PatientRef:
        reply = await self.rpc.call(
            "auth", "resolve_patient", PatientResolveParams(user_id=user_id, patient_id=patient_id)
        )
        patient = ResolvedPatient.model_validate(reply)
        return PatientRef(
            id=patient.id,
            user_id=user_id,
            id_hash=patient.id_hash,
            name=patient.name,
            id_number_masked=patient.id_number_masked,
        )


@dataclass
class Booking:
    """The booking service's collaborators, as `build` wires them (tests build their own)."""

    sessions: Sessions
    appointments: Appointments
    persons: Persons
    patient_projection: Patients
    holds: Holds
    entries: Waitlist
    session_book: SessionBook
    rules: RulesBook
    patients: PatientDirectory
    sold_out: SoldOutBoard
    lottery: ReleaseLottery
    booker: Booker
    waitlist: WaitlistService
    lifecycle: AppointmentLifecycle
    admin: SessionAdmin
    queries: AppointmentQueries
    reconciler: Reconciler
    end_of_day: EndOfDay
    fees: FeeOutcomes
    events: BookingEvents
    handlers: BookingHandlers
    queue: QueueDesk
    queue_store: QueueStore
    queue_handlers: QueueHandlers

    async def ensure_indexes(self) -> None:
        for repo in (
            self.sessions,
            self.appointments,
            self.persons,
            self.holds,
            self.entries,
            self.queue_store,
        ):
            await repo.ensure_indexes()


def build(
    db: Any,
    *,
    catalog: CatalogPort,
    auth: AuthPort,
    outbox: OutboxRelay,
    clock: Clock,
    faults: FaultPoints,
    metrics: Registry | None = None,
    orphan_check_after: dt.timedelta = ORPHAN_CHECK_AFTER,
    payment_timeout: dt.timedelta | None = None,
) -> Booking:
    sessions, appointments, persons = Sessions(db), Appointments(db), Persons(db)
    projection, holds, entries = Patients(db), Holds(db), Waitlist(db)
    session_book = SessionBook(sessions, catalog)
    rules = RulesBook(catalog)
    patients = PatientDirectory(projection, persons, auth)
    sold_out = SoldOutBoard()
    lottery = ReleaseLottery(
        appointments=appointments, holds=holds, rules=rules, outbox=outbox, clock=clock
    )
    booker = Booker(
        sessions=sessions,
        appointments=appointments,
        persons=persons,
        session_book=session_book,
        rules=rules,
        patients=patients,
        sold_out=sold_out,
        lottery=lottery,
        outbox=outbox,
        faults=faults,
        clock=clock,
        orphan_check_after=orphan_check_after,
        payment_timeout=payment_timeout,
    )
    waitlist = WaitlistService(
        entries=entries,
        holds=holds,
        appointments=appointments,
        sessions=sessions,
        persons=persons,
        session_book=session_book,
        rules=rules,
        patients=patients,
        booker=booker,
        catalog=catalog,
        outbox=outbox,
        clock=clock,
    )
    queue_store = QueueStore(db)
    queue = QueueDesk(
        store=queue_store,
        appointments=appointments,
        sessions=sessions,
        rules=rules,
        outbox=outbox,
        faults=faults,
        clock=clock,
    )
    lifecycle = AppointmentLifecycle(
        appointments=appointments,
        sessions=sessions,
        persons=persons,
        session_book=session_book,
        rules=rules,
        sold_out=sold_out,
        outbox=outbox,
        booker=booker,
        waitlist=waitlist,
        faults=faults,
        clock=clock,
        queue=queue,
    )
    admin = SessionAdmin(
        sessions=sessions,
        appointments=appointments,
        session_book=session_book,
        lifecycle=lifecycle,
        waitlist=waitlist,
        sold_out=sold_out,
        outbox=outbox,
        faults=faults,
        clock=clock,
    )
    queries = AppointmentQueries(
        appointments=appointments,
        sessions=sessions,
        persons=persons,
        session_book=session_book,
        rules=rules,
        patients=patients,
        lifecycle=lifecycle,
        clock=clock,
    )
    return Booking(
        sessions=sessions,
        appointments=appointments,
        persons=persons,
        patient_projection=projection,
        holds=holds,
        entries=entries,
        session_book=session_book,
        rules=rules,
        patients=patients,
        sold_out=sold_out,
        lottery=lottery,
        booker=booker,
        waitlist=waitlist,
        lifecycle=lifecycle,
        admin=admin,
        queries=queries,
        reconciler=Reconciler(
            appointments=appointments,
            sessions=sessions,
            persons=persons,
            lifecycle=lifecycle,
            waitlist=waitlist,
            sold_out=sold_out,
            clock=clock,
        ),
        end_of_day=EndOfDay(
            appointments=appointments, sweeps=DaySweeps(db), lifecycle=lifecycle, clock=clock
        ),
        fees=FeeOutcomes(
            appointments=appointments, lifecycle=lifecycle, outbox=outbox, clock=clock
        ),
        events=BookingEvents(sessions=sessions, patients=patients, rules=rules, sold_out=sold_out),
        handlers=BookingHandlers(
            booker=booker,
            lifecycle=lifecycle,
            admin=admin,
            queries=queries,
            waitlist=waitlist,
            patients=patients,
            metrics=metrics,
        ),
        queue=queue,
        queue_store=queue_store,
        queue_handlers=QueueHandlers(desk=queue, lifecycle=lifecycle),
    )


def outbox_collections(db: Any) -> list[Any]:
    return [db.appointments, db.sessions, db.waitlist]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def wire(rt: ServiceRuntime) -> None:
    relay = await rt.outbox(outbox_collections(rt.db))
    booking = build(
        rt.db,
        catalog=CatalogClient(rt.rpc_client),
        auth=AuthClient(rt.rpc_client),
        outbox=relay,
        clock=_utcnow,
        faults=FaultPoints.from_env(),
        metrics=rt.metrics,
        orphan_check_after=dt.timedelta(seconds=rt.settings.booking_orphan_check_seconds),
        payment_timeout=dt.timedelta(seconds=rt.settings.payment_timeout_seconds)
        if rt.settings.payment_timeout_seconds
        else None,
    )
    await booking.ensure_indexes()
    booking.handlers.register(rt.rpc_server)
    booking.queue_handlers.register(rt.rpc_server)
    events = booking.events
    # competing consumers: one replica handles each event for the service
    rt.consume("inventory", ["schedule.published.*"], events.schedule_published)
    rt.consume("patients", ["patient.*.*"], events.patient_changed)
    rt.consume("payments", ["payment.succeeded.*", "payment.refunded.*"], booking.fees.on_event)
    # every replica: its own view of patients, rules and sold-out slots
    rt.add_consumer(
        BroadcastListener(
            rt.broker,
            rt.name,
            "views",
            [
                "patient.*.*",
                "hospital.rules_updated.*",
                "appointment.cancelled.*",
                "appointment.rescheduled.*",
                "schedule.capacity_changed.*",
            ],
            events.refresh_views,
        )
    )
    rt.add_leased_job(
        "reconciler",
        lambda term: booking.reconciler.run_once(),
        interval=5.0,
        idle_interval=15.0,
        ttl=dt.timedelta(seconds=60),
    )
    rt.add_leased_job(
        "lottery_draws",
        lambda term: booking.lottery.draw_due(booking.booker.complete_pending),
        interval=1.0,
        idle_interval=4.0,
        ttl=dt.timedelta(seconds=30),
    )
    rt.add_leased_job(
        "unpaid_expiry",
        lambda term: booking.fees.expire_unpaid(),
        interval=1.0,
        idle_interval=5.0,
        ttl=dt.timedelta(seconds=30),
    )
    # the queue_near announcements a crash left undone (an index look-up when idle)
    rt.add_leased_job(
        "queue_repair",
        lambda term: booking.queue.repair_once(),
        interval=5.0,
        idle_interval=15.0,
        ttl=dt.timedelta(seconds=60),
    )
    rt.add_leased_job(
        "end_of_day",
        lambda term: booking.end_of_day.run_once(),
        interval=60.0,
        ttl=dt.timedelta(seconds=120),
    )
