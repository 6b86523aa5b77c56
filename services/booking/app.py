"""Wiring of the booking service."""

from __future__ import annotations

import datetime as dt
import time

from services.booking import handlers
from services.booking.jobs import NoShowSweep, Reconciler
from services.booking.repository import Appointments, Holds, Inventory, NoShows, Waitlist
from services.booking.service import BookingService
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
from shared.messaging.events import EventEnvelope
from shared.messaging.rpc import RpcClient
from shared.runtime import ServiceRuntime


class CatalogClient:
    """Booking's view of the catalog over RPC; rules are cached for a few seconds."""

    def __init__(self, rpc: RpcClient, rules_ttl: float = 5.0) -> None:
        self.rpc = rpc
        self.rules_ttl = rules_ttl
        self._rules: dict[str, tuple[float, BookingRules]] = {}

    async def rules(self, hospital_id: str) -> BookingRules:
        cached = self._rules.get(hospital_id)
        if cached and time.monotonic() - cached[0] < self.rules_ttl:
            return cached[1]
        reply = await self.rpc.call("catalog", "booking_rules",
                                    HospitalRef(hospital_id=hospital_id))
        rules = BookingRules.model_validate(reply)
        self._rules[hospital_id] = (time.monotonic(), rules)
        return rules

    async def schedule_for_slot(self, slot_id: str) -> ScheduleDefinition | None:
        try:
            reply = await self.rpc.call("catalog", "schedule_for_slot", SlotRef(slot_id=slot_id))
        except NotFound:
            return None
        return ScheduleDefinition.model_validate(reply)

    async def schedule_definition(self, schedule_id: str) -> ScheduleDefinition | None:
        try:
            reply = await self.rpc.call("catalog", "schedule_definition",
                                        {"schedule_id": schedule_id})
        except NotFound:
            return None
        return ScheduleDefinition.model_validate(reply)


    async def hospital_of(self, doctor_id: str | None, department_id: str | None) -> str:
        reply = await self.rpc.call("catalog", "hospital_of", HospitalOfQuery(
            doctor_id=doctor_id, department_id=department_id))
        return str(reply["hospital_id"])


class PatientDirectory:
    """Resolves a patient profile (and the person's keyed hash) through auth."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def resolve(self, user_id: str, patient_id: str) -> ResolvedPatient:
        reply = await self.rpc.call("auth", "resolve_patient",
                                    PatientResolveParams(user_id=user_id, patient_id=patient_id))
        return ResolvedPatient.model_validate(reply)


async def wire(rt: ServiceRuntime) -> None:
    inventory = Inventory(rt.db)
    appointments = Appointments(rt.db)
    holds = Holds(rt.db)
    no_shows = NoShows(rt.db)
    entries = Waitlist(rt.db)
    relay = await rt.outbox([appointments.collection, inventory.schedules, inventory.slots,
                             entries.collection])
    for repo in (inventory, appointments, holds, no_shows, entries):
        await repo.ensure_indexes()
    booking = BookingService(inventory, appointments, holds, no_shows,
                             CatalogClient(rt.rpc_client), PatientDirectory(rt.rpc_client), relay)
    waitlist = WaitlistService(booking, entries)
    booking.waitlist = waitlist
    handlers.register(rt.rpc_server, booking, waitlist)

    async def on_schedule_published(event: EventEnvelope) -> None:
        await inventory.register(ScheduleDefinition.model_validate(event.data["schedule"]))

    # competing consumers: one replica registers each published schedule
    rt.consume("inventory", ["schedule.published.*"], on_schedule_published)
    reconciler, sweep = Reconciler(booking), NoShowSweep(booking)
    rt.add_leased_job("reconciler", lambda term: reconciler.run_once(), interval=5.0,
                      ttl=dt.timedelta(seconds=30))
    rt.add_leased_job("lottery_draws", lambda term: booking.lottery.draw_due(), interval=1.0,
                      ttl=dt.timedelta(seconds=30))
    rt.add_leased_job("no_show_sweep", lambda term: sweep.run_once(), interval=60.0,
                      ttl=dt.timedelta(seconds=120))
