"""The process shell every service runs in: connections, RPC serving, consumers,
background jobs, and a bounded graceful drain on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.logs import configure_logging
from shared.loop import use_fast_loop
from shared.messaging.connection import connect_broker
from shared.messaging.consumer import EventConsumer, EventHandler, ProcessedEvents
from shared.messaging.events import EventPublisher
from shared.messaging.identity import RpcIdentity
from shared.messaging.outbox import OutboxRelay
from shared.messaging.rpc import RpcClient, RpcServer
from shared.metrics import CONTENT_TYPE, Registry
from shared.settings import Settings
from shared.storage.lease import Lease, run_leased
from shared.storage.mongo import Document, connect_mongo, service_database
from shared.tracing import check_environment as check_tracing_environment
from shared.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("guahao.runtime")


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop_taking(self) -> None: ...

    async def drain(self, timeout: float) -> None: ...


class ServiceRuntime:
    """What a service's wiring gets: its settings, connections and entry-point hosts."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        broker: AbstractRobustConnection,
        mongo: AsyncMongoClient[Document],
    ) -> None:
        self.name = name
        self.settings = settings
        self.broker = broker
        self.mongo = mongo
        self.db: AsyncDatabase[Document] = service_database(mongo, settings, name)
        self.instance_id = f"{name}@{socket.gethostname()}:{os.getpid()}"
        self.metrics = Registry()
        identity = RpcIdentity.from_settings(name, settings)
        self.rpc_server = RpcServer(
            name, broker, metrics=self.metrics, identity=identity, replicated=settings.clustered
        )
        self.rpc_client = RpcClient(broker, default_timeout=settings.rpc_timeout, identity=identity)
        self.events = EventPublisher(broker, self.metrics)
        self._consumers: list[Startable] = []
        self._jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[Any]]] = []
        self._ops: web.AppRunner | None = None

    def lease(self, name: str, ttl: dt.timedelta) -> Lease:
        """A lease held in this service's database, owned by this process."""
        return Lease(self.db.leases, name, self.instance_id, ttl)

    def add_consumer(self, consumer: Startable) -> None:
        """An event consumer started after wiring and drained at shutdown."""
        self._consumers.append(consumer)

    def consume(
        self,
        purpose: str,
        bindings: list[str],
        handler: EventHandler,
        *,
        dedupe: bool = True,
        **options: Any,
    ) -> EventConsumer:
        """Consume events on `evt.<service>.<purpose>`: replicas compete, each event is
        handled once per service (deduped by id in this service's database, unless the
        handler is idempotent by its own natural keys: `dedupe=False`)."""
        processed = ProcessedEvents(self.db.processed_events) if dedupe else None
        consumer = EventConsumer(
            self.broker,
            processed,
            service=self.name,
            purpose=purpose,
            bindings=bindings,
            handler=handler,
            metrics=self.metrics,
            **options,
        )
        self.add_consumer(consumer)
        return consumer

    async def outbox(self, collections: Sequence[AsyncCollection[Document]]) -> OutboxRelay:
        """The service's outbox relay: swept by one replica at a time (lease
        `<service>.outbox`), flushed once more at shutdown, its backlog a metric."""
        relay = OutboxRelay(
            self.events,
            collections,
            self.lease(f"{self.name}.outbox", dt.timedelta(seconds=10)),
            background=True,
        )
        await relay.ensure_indexes()
        self.add_job(f"{self.name}.outbox", relay.run)
        self.on_close(lambda: relay.sweep(everything=True))
        self.on_close(relay.settle)  # closers run last-added first: settle, then sweep
        self.metrics.gauge(
            "guahao_outbox_backlog", "Documents with unpublished events.", relay.backlog
        )
        self.metrics.gauge(
            "guahao_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox event (0: none).",
            relay.oldest_age,
        )
        return relay

    def add_leased_job(
        self,
        name: str,
        work: Callable[[int], Awaitable[object]],
        *,
        interval: float,
        ttl: dt.timedelta,
        idle_interval: float | None = None,
    ) -> None:
        """Periodic work done by one replica at a time (lease `<service>.<name>`);
        `work` gets the lease's fencing term. Passes that find nothing to do slow down to
        `idle_interval` (keep it well under `ttl`)."""
        lease = self.lease(f"{self.name}.{name}", ttl)
        self.add_job(name, lambda: run_leased(lease, work, interval, idle_interval))

    def add_job(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """A long-running background coroutine, cancelled at shutdown."""
        self._jobs.append((name, run))

    def on_close(self, close: Callable[[], Awaitable[Any]]) -> None:
        """A resource to close at shutdown (after the drain)."""
        self._closers.append(close)

    async def start(self) -> None:
        await self._start_ops_server()
        await self.events.start()
        for consumer in self._consumers:
            await consumer.start()
        await self.rpc_server.start()
        for name, run in self._jobs:
            self._tasks.append(asyncio.create_task(self._supervise(name, run), name=name))

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job crashed, restarting", extra={"job": name})
                await asyncio.sleep(1.0)

    async def _start_ops_server(self) -> None:
        """`/healthz` and `/metrics` of this process on GUAHAO_OPS_PORT (0: any free port)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._ops = web.AppRunner(app, access_log=None)
        await self._ops.setup()
        site = web.TCPSite(self._ops, "0.0.0.0", self.settings.ops_port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else self.settings.ops_port
        log.info("ops endpoints listening", extra={"port": port})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "service": self.name,
                "instance": self.instance_id,
                "broker": "connected" if self.broker.connected.is_set() else "disconnected",
            }
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=(await self.metrics.render()).encode(), headers={"Content-Type": CONTENT_TYPE}
        )

    async def stop(self) -> None:
        """Stop taking work, then drain; the whole stop stays within `shutdown_grace`
        (default 10 s, well below Kubernetes' and compose's 30 s)."""
        deadline = time.monotonic() + self.settings.shutdown_grace

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        await self.rpc_server.stop_taking()
        for consumer in self._consumers:
            await consumer.stop_taking()
        await self.rpc_server.drain(left())
        for consumer in self._consumers:
            await consumer.drain(left())
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=left())
        closers = [*reversed(self._closers), self.mongo.close, self.broker.close]
        if self._ops is not None:
            closers.insert(0, self._ops.cleanup)
        for close in closers:  # each bounded: a stuck resource must not stop the exit
            with contextlib.suppress(Exception):
                async with asyncio.timeout(max(1.0, left())):
                    await close()


Wiring = Callable[[ServiceRuntime], Awaitable[None]]


async def connect_broker_with_retry(
    urls: str | Sequence[str], *, name: str, attempts: int = 30
) -> Any:
    """Connect to RabbitMQ (one node or a cluster's nodes), retrying while it is still
    starting (compose, make run)."""
    for attempt in range(1, attempts + 1):
        try:
            return await connect_broker(urls, name=name)
        except (ConnectionError, OSError) as exc:
            if attempt == attempts:
                raise
            log.warning("broker not reachable yet", extra={"attempt": attempt, "error": str(exc)})
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def serve(name: str, wire: Wiring, settings: Settings | None = None) -> None:
    """Run one service until SIGTERM/SIGINT, then drain within the grace period."""
    settings = settings or Settings.from_env()
    configure_logging(name, settings.log_level, settings.log_format)
    configure_tracing(name)  # before the MongoDB client: its command listener
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    broker = await connect_broker_with_retry(settings.broker_urls, name=name)
    mongo = connect_mongo(settings, app_name=name)
    runtime = ServiceRuntime(name, settings, broker, mongo)
    try:
        await wire(runtime)
        await runtime.start()
    except BaseException:
        log.critical("service could not start", exc_info=True)
        await broker.close()
        await mongo.close()
        raise
    log.info("service ready", extra={"instance": runtime.instance_id})
    await stop.wait()
    log.info("service stopping", extra={"grace_s": settings.shutdown_grace})
    await runtime.stop()
    shutdown_tracing()
    log.info("service stopped")


def main(name: str, wire: Wiring) -> None:
    """`python -m services.<name>` entry point; a wrong setting stops it at once, naming
    the variable (exit status 1)."""
    try:
        settings = Settings.from_env()
        check_tracing_environment()
    except ValueError as exc:
        raise SystemExit(f"{name} cannot start: {exc}") from None
    use_fast_loop()
    asyncio.run(serve(name, wire, settings))
