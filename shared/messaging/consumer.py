"""Event consumers: one durable queue per consuming service and purpose.

`evt.<service>.<purpose>` is bound to `guahao.events` with the given patterns. Replicas of
a service compete on that queue (each event is handled once per service). Handling is
at-least-once and idempotent: an event id already handled is acknowledged and skipped; a
failing handler is retried after a delay through `<queue>.retry` (a TTL queue that
dead-letters back), and after `max_attempts` the message goes to `<queue>.dlq`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, DuplicateKeyError, WaitQueueTimeoutError

from shared.context import request_id_var
from shared.errors import ServiceUnavailable
from shared.messaging.draining import DrainingConsumer
from shared.messaging.events import EventEnvelope, declare_events_exchange
from shared.messaging.queues import QUORUM, declare_durable
from shared.metrics import LAG_BUCKETS, Registry
from shared.storage.mongo import Document
from shared.tracing import event_attributes, extract, tracer

log = logging.getLogger("guahao.consumer")

EventHandler = Callable[[EventEnvelope], Awaitable[None]]


# ConnectionFailure covers AutoReconnect, NetworkTimeout and ServerSelectionTimeoutError.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    WaitQueueTimeoutError,
    AMQPError,
    ConnectionError,
    ServiceUnavailable,
)

Claim = Literal["claimed", "done", "busy"]


def is_infrastructure_error(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says a dependency is down, not that the event
    or the handler is wrong."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, INFRASTRUCTURE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class ProcessedEvents:
    """Claims on events, by key: `claimed` while one delivery handles it (until `until`),
    `done` after (kept 14 days for dedupe, then removed by a TTL index on `at`)."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("at", expireAfterSeconds=14 * 24 * 3600)

    async def claim(self, key: str, holder: str, lease: float) -> Claim:
        """Take the event for `holder`: `claimed` (go ahead), `done` (handled before: skip)
        or `busy` (another holder's claim is still within its lease)."""
        now = dt.datetime.now(dt.UTC)
        until = now + dt.timedelta(seconds=lease)
        try:
            await self.collection.insert_one(
                {"_id": key, "state": "claimed", "holder": holder, "until": until, "at": now}
            )
            return "claimed"
        except DuplicateKeyError:
            pass
        taken = await self.collection.find_one_and_update(
            {"$and": [{"_id": key}, {"state": "claimed"}, {"until": {"$lt": now}}]},
            {"$set": {"holder": holder, "until": until, "at": now}},
        )
        if taken is not None:
            log.info("stale claim taken over", extra={"key": key, "from": taken.get("holder")})
            return "claimed"
        current = await self.collection.find_one({"_id": key}, projection={"state": 1})
        if current is None:  # released in between: try once more from the start
            return await self.claim(key, holder, lease)
        # documents written before claims existed have no state: they mark handled events
        return "busy" if current.get("state") == "claimed" else "done"

    async def complete(self, key: str, holder: str) -> None:
        """Mark the event handled (only while `holder` still holds the claim)."""
        await self.collection.update_one(
            {"$and": [{"_id": key}, {"holder": holder}]},
            {"$set": {"state": "done", "at": dt.datetime.now(dt.UTC)}, "$unset": {"until": ""}},
        )

    async def release(self, key: str, holder: str) -> None:
        """Give the claim up after a failed handler, so the retry can take it at once."""
        await self.collection.delete_one(
            {"$and": [{"_id": key}, {"holder": holder}, {"state": "claimed"}]}
        )


class EventConsumer(DrainingConsumer):
    """Runs a handler for every event matching `bindings`, with dedupe, retry and DLQ."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        processed: ProcessedEvents | None,
        *,
        service: str,
        purpose: str,
        bindings: Sequence[str],
        handler: EventHandler,
        prefetch: int = 16,
        max_attempts: int = 5,
        retry_delay: float = 2.0,
        delivery_limit: int = 20,
        claim_lease: float = 120.0,
        infra_backoff: float = 0.5,
        infra_backoff_max: float = 30.0,
        metrics: Registry | None = None,
    ) -> None:
        self.connection = connection
        self.processed = processed
        self.queue_name = f"evt.{service}.{purpose}"
        self.bindings = list(bindings)
        self.handler = handler
        self.prefetch = prefetch
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.delivery_limit = delivery_limit
        self.claim_lease = claim_lease
        self.infra_backoff = infra_backoff
        self.infra_backoff_max = infra_backoff_max
        registry = metrics or Registry()
        self._consumed = registry.counter(
            "guahao_events_consumed_total",
            "Events taken from a queue, by outcome.",
            ("queue", "outcome"),
        )
        self._dead = registry.counter(
            "guahao_dead_lettered_total", "Events moved to a dead-letter queue.", ("queue",)
        )
        self._lag = registry.histogram(
            "guahao_event_lag_seconds",
            "From an event's occurrence to the start of its handling, by queue.",
            ("queue",),
            buckets=LAG_BUCKETS,
        )
        self._channel: AbstractChannel | None = None
        super().__init__()

    async def start(self) -> None:
        """Declare the queues and bindings, then start consuming."""
        if self.processed is not None:
            await self.processed.ensure_indexes()
        channel = await self.connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await declare_events_exchange(channel)
        dlq = f"{self.queue_name}.dlq"
        await declare_durable(self.connection, channel, dlq, QUORUM)
        # quorum: replicated on a cluster; the delivery limit dead-letters a message that
        # keeps killing its consumer before it can be acknowledged
        queue = await declare_durable(
            self.connection,
            channel,
            self.queue_name,
            {
                **QUORUM,
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dlq,
            },
        )
        for pattern in self.bindings:
            await queue.bind(exchange, routing_key=pattern)
        await declare_durable(
            self.connection,
            channel,
            f"{self.queue_name}.retry",
            {
                **QUORUM,
                "x-message-ttl": int(self.retry_delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue_name,
            },
        )
        self._channel = channel
        await self._consume(queue, self._handle)
        log.info("consuming", extra={"queue": self.queue_name, "bindings": self.bindings})

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = EventEnvelope.model_validate_json(message.body)
        except ValidationError:
            log.error("malformed event dead-lettered", extra={"queue": self.queue_name})
            self._dead.inc(self.queue_name)
            await self._forward(message, f"{self.queue_name}.dlq", attempts=0)
            return
        self._observe_lag(event)
        token = request_id_var.set(event.id)
        try:
            # the handling continues the trace of the request that caused the event
            with tracer.start_as_current_span(
                f"{event.type} process",
                context=extract(message.headers),
                kind=SpanKind.CONSUMER,
                record_exception=False,
                set_status_on_exception=False,
                attributes={
                    **event_attributes(event),
                    "messaging.destination.name": self.queue_name,
                },
            ):
                await self._handle_event(message, event)
        finally:
            request_id_var.reset(token)

    async def _handle_event(self, message: AbstractIncomingMessage, event: EventEnvelope) -> None:
        key = f"{self.queue_name}:{event.id}"
        holder = uuid.uuid4().hex
        claimed = False
        try:
            claim = (
                "free"
                if self.processed is None
                else await self.processed.claim(key, holder, self.claim_lease)
            )
            if claim == "done":
                log.debug("duplicate event skipped", extra={"event_id": event.id})
                self._consumed.inc(self.queue_name, "duplicate")
                await message.ack()
                return
            if claim == "busy":
                log.debug(
                    "event held by another delivery, retried later", extra={"event_id": event.id}
                )
                self._consumed.inc(self.queue_name, "busy")
                await self._forward(message, f"{self.queue_name}.retry", self._attempts(message))
                return
            claimed = self.processed is not None
            await self.handler(event)
            if self.processed is not None:
                await self.processed.complete(key, holder)
            claimed = False
            await message.ack()
            self._consumed.inc(self.queue_name, "handled")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if claimed:
                await self._release(key, holder)
            if is_infrastructure_error(exc):
                await self._retry_infrastructure(message, event)
            else:
                await self._retry_or_dead_letter(message, event)

    def _observe_lag(self, event: EventEnvelope) -> None:
        try:
            occurred = dt.datetime.fromisoformat(event.occurred_at)
        except ValueError:
            return
        if occurred.tzinfo is None:
            return
        lag = (dt.datetime.now(dt.UTC) - occurred).total_seconds()
        self._lag.observe(max(lag, 0.0), self.queue_name)

    @staticmethod
    def _attempts(message: AbstractIncomingMessage, header: str = "x-attempts") -> int:
        previous = (message.headers or {}).get(header, 0)
        return previous if isinstance(previous, int) else 0

    async def _release(self, key: str, holder: str) -> None:
        if self.processed is None:
            return
        try:
            await self.processed.release(key, holder)
        except Exception:  # the store is down: the lease runs out instead
            log.warning("claim not released", exc_info=True, extra={"key": key})

    async def _retry_infrastructure(
        self, message: AbstractIncomingMessage, event: EventEnvelope
    ) -> None:
        """Back off (held in this process), then go round the retry queue uncounted."""
        outages = self._attempts(message, "x-infra-retries")
        delay = min(self.infra_backoff * 2 ** min(outages, 16), self.infra_backoff_max)
        self._consumed.inc(self.queue_name, "infra_retried")
        log.warning(
            "infrastructure error, event retried without counting",
            exc_info=True,
            extra={"event_id": event.id, "outages": outages + 1, "delay": delay},
        )
        await asyncio.sleep(delay)
        await self._forward(
            message, f"{self.queue_name}.retry", self._attempts(message), infra_retries=outages + 1
        )

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, event: EventEnvelope
    ) -> None:
        attempts = self._attempts(message) + 1
        if attempts >= self.max_attempts:
            log.exception(
                "event dead-lettered",
                extra={"event_id": event.id, "type": event.type, "attempts": attempts},
            )
            self._dead.inc(self.queue_name)
            self._consumed.inc(self.queue_name, "dead_lettered")
            await self._forward(message, f"{self.queue_name}.dlq", attempts)
        else:
            self._consumed.inc(self.queue_name, "retried")
            log.warning(
                "event handler failed, will retry",
                exc_info=True,
                extra={"event_id": event.id, "attempts": attempts},
            )
            await self._forward(message, f"{self.queue_name}.retry", attempts)

    async def _forward(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        attempts: int,
        *,
        infra_retries: int | None = None,
    ) -> None:
        """Republish (confirmed) to the retry or dead-letter queue, then ack the original."""
        assert self._channel is not None
        headers = dict(message.headers or {})
        headers["x-attempts"] = attempts
        if infra_retries is not None:
            headers["x-infra-retries"] = infra_retries
        headers["x-original-routing-key"] = message.routing_key or ""
        await self._channel.default_exchange.publish(
            aio_pika.Message(
                body=message.body,
                headers=headers,
                content_type=message.content_type,
                message_id=message.message_id,
                type=message.type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=queue,
        )
        await message.ack()
