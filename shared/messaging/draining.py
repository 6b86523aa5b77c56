"""What every consumer of ours needs at shutdown: stop taking deliveries, then wait
(bounded) for the ones being handled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

log = logging.getLogger("guahao.messaging")

Handle = Callable[[AbstractIncomingMessage], Awaitable[None]]
CANCEL_TIMEOUT = 2.0


class DrainingConsumer:
    """Base of RpcServer and EventConsumer: consumes one queue and tracks its in-flight work."""

    def __init__(self) -> None:
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def _consume(self, queue: AbstractQueue, handle: Handle) -> None:
        async def tracked(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.add(task)
            try:
                await handle(message)
            finally:
                if task is not None:
                    self._in_flight.discard(task)

        self._queue = queue
        self._consumer_tag = await queue.consume(tracked)

    async def stop_taking(self) -> None:
        """Cancel the consumer: nothing new arrives; unstarted deliveries go back to the queue."""
        if self._queue is not None and self._consumer_tag is not None:
            try:
                # bounded: a channel that is reconnecting would otherwise wait for the broker
                async with asyncio.timeout(CANCEL_TIMEOUT):
                    await self._queue.cancel(self._consumer_tag)
            except Exception:  # broker gone or slow: nothing more will be handled anyway
                log.debug("cancel consumer failed", exc_info=True)
            self._consumer_tag = None

    async def drain(self, timeout: float) -> None:
        """Stop taking work and wait (bounded) for what is in progress."""
        await self.stop_taking()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)
