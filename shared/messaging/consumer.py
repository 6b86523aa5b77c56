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
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.context import request_id_var
from shared.messaging.draining import DrainingConsumer
from shared.messaging.events import EventEnvelope, declare_events_exchange
from shared.metrics import Registry
from shared.storage.mongo import Document

log = logging.getLogger("guahao.consumer")

EventHandler = Callable[[EventEnvelope], Awaitable[None]]
QUORUM = {"x-queue-type": "quorum"}


class ProcessedEvents:
    """Which events a consumer already handled (dedupe by event id, kept for 14 days)."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("at", expireAfterSeconds=14 * 24 * 3600)

    async def seen(self, key: str) -> bool:
        return await self.collection.find_one({"_id": key}, projection={"_id": 1}) is not None

    async def mark(self, key: str) -> None:
        try:
            await self.collection.insert_one({"_id": key, "at": dt.datetime.now(dt.UTC)})
        except DuplicateKeyError:
            pass


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
        registry = metrics or Registry()
        self._consumed = registry.counter(
            "guahao_events_consumed_total", "Events taken from a queue, by outcome.",
            ("queue", "outcome"))
        self._dead = registry.counter(
            "guahao_dead_lettered_total", "Events moved to a dead-letter queue.", ("queue",))
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
        await channel.declare_queue(dlq, durable=True, arguments=QUORUM)
        # quorum: replicated on a cluster; the delivery limit dead-letters a message that
        # keeps killing its consumer before it can be acknowledged
        queue = await channel.declare_queue(self.queue_name, durable=True, arguments={
            **QUORUM, "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
        })
        for pattern in self.bindings:
            await queue.bind(exchange, routing_key=pattern)
        await channel.declare_queue(
            f"{self.queue_name}.retry",
            durable=True,
            arguments={
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
        token = request_id_var.set(event.id)
        key = f"{self.queue_name}:{event.id}"
        try:
            if self.processed is not None and await self.processed.seen(key):
                log.debug("duplicate event skipped", extra={"event_id": event.id})
                self._consumed.inc(self.queue_name, "duplicate")
                await message.ack()
                return
            await self.handler(event)
            if self.processed is not None:
                await self.processed.mark(key)
            await message.ack()
            self._consumed.inc(self.queue_name, "handled")
        except asyncio.CancelledError:
            raise
        except Exception:
            previous = (message.headers or {}).get("x-attempts", 0)
            attempts = (previous if isinstance(previous, int) else 0) + 1
            if attempts >= self.max_attempts:
                log.exception("event dead-lettered",
                              extra={"event_id": event.id, "type": event.type,
                                     "attempts": attempts})
                self._dead.inc(self.queue_name)
                self._consumed.inc(self.queue_name, "dead_lettered")
                await self._forward(message, f"{self.queue_name}.dlq", attempts)
            else:
                self._consumed.inc(self.queue_name, "retried")
                log.warning("event handler failed, will retry", exc_info=True,
                            extra={"event_id": event.id, "attempts": attempts})
                await self._forward(message, f"{self.queue_name}.retry", attempts)
        finally:
            request_id_var.reset(token)

    async def _forward(self, message: AbstractIncomingMessage, queue: str, attempts: int) -> None:
        """Republish (confirmed) to the retry or dead-letter queue, then ack the original."""
        assert self._channel is not None
        headers = dict(message.headers or {})
        headers["x-attempts"] = attempts
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
