"""Wiring of the catalog service: repository, outbox relay, booking client, RPC methods,
and the demo data when `GUAHAO_DEMO` is on."""

from __future__ import annotations

import datetime as dt

from pymongo.asynchronous.database import AsyncDatabase

from services.catalog.demo import keep_demo_fresh, seed_demo_once
from services.catalog.handlers import register, register_scheduling
from services.catalog.repository import CatalogRepository
from services.catalog.scheduling import Scheduler
from services.catalog.scheduling_repository import SchedulingRepository
from services.catalog.service import CatalogService
from services.catalog.stats import EVENT_BINDINGS, StatsRepository, StatsService
from shared.context import Caller
from shared.contracts.booking import (
    AppointmentList,
    Availability,
    AvailabilityQuery,
    CapacityChangeParams,
    HospitalAppointmentQuery,
    StopResult,
    StopScheduleParams,
)
from shared.messaging.rpc import RpcClient
from shared.runtime import ServiceRuntime
from shared.storage.lease import Lease
from shared.storage.mongo import Document

AVAILABILITY_TIMEOUT = 2.0
DEMO_LEASE_TTL = dt.timedelta(seconds=60)
GENERATION_INTERVAL = 5.0  # a template or calendar change shows within a minute
GENERATION_LEASE_TTL = dt.timedelta(seconds=120)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def demo_lease(db: AsyncDatabase[Document], owner: str) -> Lease:
    """The demo seed's lease: replicas starting together seed once."""
    return Lease(db["leases"], "catalog.demo", owner, DEMO_LEASE_TTL)


class BookingInventory:
    """`booking.availability` over RPC, with a short timeout: a page waits for no one."""

    def __init__(
        self, rpc: RpcClient, *, service: str = "booking", timeout: float = AVAILABILITY_TIMEOUT
    ) -> None:
        self.rpc = rpc
        self.service = service
        self.timeout = timeout

    async def availability(self, schedule_ids: list[str]) -> Availability:
        reply = await self.rpc.call(
            self.service,
            "availability",
            AvailabilityQuery(schedule_ids=schedule_ids),
            timeout=self.timeout,
        )
        return Availability.model_validate(reply)


def scheduler_identity(hospital_id: str) -> Caller:
    """Who the catalog is when it acts in booking for a hospital (generation, leave,
    statistics rebuild): that hospital's staff and nothing more."""
    return Caller(user_id="svc_catalog", role="hospital_admin", hospital_id=hospital_id)


class BookingClient(BookingInventory):
    """Booking's existing RPC methods the scheduler and the statistics rebuild use."""

    async def change_capacity(self, hospital_id: str, slot_id: str, delta: int) -> None:
        await self.rpc.call(
            self.service,
            "change_capacity",
            CapacityChangeParams(hospital_id=hospital_id, slot_id=slot_id, delta=delta),
            caller=scheduler_identity(hospital_id),
        )

    async def stop_schedule(self, hospital_id: str, schedule_id: str, reason: str) -> int:
        reply = await self.rpc.call(
            self.service,
            "stop_schedule",
            StopScheduleParams(hospital_id=hospital_id, schedule_id=schedule_id, reason=reason),
            caller=scheduler_identity(hospital_id),
        )
        return StopResult.model_validate(reply).cancelled

    async def hospital_appointments(self, hospital_id: str, cursor: str | None) -> AppointmentList:
        reply = await self.rpc.call(
            self.service,
            "hospital_appointments",
            HospitalAppointmentQuery(hospital_id=hospital_id, cursor=cursor, limit=200),
            caller=scheduler_identity(hospital_id),
            timeout=30,
        )
        return AppointmentList.model_validate(reply)


async def wire(rt: ServiceRuntime) -> None:
    """Build the catalog service on the runtime's connections and register its methods."""
    repo = CatalogRepository(rt.db)
    await repo.ensure_indexes()
    relay = await rt.outbox(repo.outbox_collections)
    booking = BookingClient(rt.rpc_client)
    catalog = CatalogService(repo, relay, booking, utcnow)
    register(rt.rpc_server, catalog, appid=rt.settings.wechat_appid)
    planning = SchedulingRepository(rt.db)
    await planning.ensure_indexes()
    scheduler = Scheduler(repo, planning, catalog, booking)
    stats_store = StatsRepository(rt.db)
    await stats_store.ensure_indexes()
    stats = StatsService(stats_store, repo, utcnow)
    register_scheduling(rt.rpc_server, scheduler, stats)
    # one queue, replicas compete; every event claimed by id before it is counted
    rt.consume("stats", EVENT_BINDINGS, stats.on_event)
    # one replica at a time keeps every hospital's booking window generated
    rt.add_leased_job(
        "schedule_generation",
        scheduler.generation_pass,
        interval=GENERATION_INTERVAL,
        idle_interval=20.0,
        ttl=GENERATION_LEASE_TTL,
    )

    if rt.settings.demo:
        seeding = demo_lease(rt.db, rt.instance_id)
        await seed_demo_once(catalog, scheduler, seeding)
        rt.add_job("catalog.demo", lambda: keep_demo_fresh(catalog, scheduler, seeding))
