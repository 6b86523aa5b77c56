"""Events every replica of a service hears: for in-memory views (caches, hints), not work.

Each process binds its own exclusive, auto-deleted queue (`evt.<service>.<purpose>.<random>`,
inside the service's own queue names, so its broker user may declare it), so a replica
that is down misses
what happened meanwhile — fine for a cache that reads through on a miss, never for work
(use `EventConsumer`: durable, competing, deduplicated). Nothing is retried or dead-lettered;
a handler that fails is logged and the event dropped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from shared.messaging.events import EventEnvelope, declare_events_exchange

log = logging.getLogger("guahao.broadcast")

Listener = Callable[[EventEnvelope], Awaitable[None]]


class BroadcastListener:
    """Hears `bindings` on `guahao.events` in this process (every replica, each once)."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        service: str,
        purpose: str,
        bindings: list[str],
        listener: Listener,
    ) -> None:
        self.queue_name = f"evt.{service}.{purpose}.{uuid.uuid4().hex[:12]}"
        self.connection = connection
        self.bindings = bindings
        self.listener = listener
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        self._channel = await self.connection.channel()
        exchange = await declare_events_exchange(self._channel)
        queue = await self._channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True)
        for binding in self.bindings:
            await queue.bind(exchange, binding)
        await queue.consume(self._hear, no_ack=True)

    async def _hear(self, message: AbstractIncomingMessage) -> None:
        try:
            await self.listener(EventEnvelope.model_validate_json(message.body))
        except ValidationError:
            log.warning("broadcast event not understood", extra={"type": message.type})
        except Exception:
            log.exception("broadcast listener failed", extra={"type": message.type})

    async def stop_taking(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def drain(self, timeout: float) -> None:
        return None
