"""Wiring of the catalog service: repository, outbox relay, booking client, RPC methods,
and the demo data when `GUAHAO_DEMO` is on."""

from __future__ import annotations

import datetime as dt

from pymongo.asynchronous.database import AsyncDatabase

from services.catalog.demo import keep_demo_fresh, seed_demo_once
from services.catalog.handlers import register
from services.catalog.repository import CatalogRepository
from services.catalog.service import CatalogService
from shared.contracts.booking import Availability, AvailabilityQuery
from shared.messaging.rpc import RpcClient
from shared.runtime import ServiceRuntime
from shared.storage.lease import Lease
from shared.storage.mongo import Document

AVAILABILITY_TIMEOUT = 2.0
DEMO_LEASE_TTL = dt.timedelta(seconds=60)


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
            self.service, "availability", AvailabilityQuery(schedule_ids=schedule_ids),
            timeout=self.timeout,
        )
        return Availability.model_validate(reply)


async def wire(rt: ServiceRuntime) -> None:
    """Build the catalog service on the runtime's connections and register its methods."""
    repo = CatalogRepository(rt.db)
    await repo.ensure_indexes()
    relay = await rt.outbox(repo.outbox_collections)
    catalog = CatalogService(repo, relay, BookingInventory(rt.rpc_client), utcnow)
    register(rt.rpc_server, catalog, appid=rt.settings.wechat_appid)

    if rt.settings.demo:
        seeding = demo_lease(rt.db, rt.instance_id)
        await seed_demo_once(catalog, seeding)
        rt.add_job("catalog.demo", lambda: keep_demo_fresh(catalog, seeding))
