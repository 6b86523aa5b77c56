"""The one robust AMQP connection a process holds."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractRobustConnection


async def connect_broker(url: str, *, name: str) -> AbstractRobustConnection:
    """Connect with automatic reconnect; channels, queues and consumers are restored."""
    return await aio_pika.connect_robust(
        url,
        reconnect_interval=1.0,
        fail_fast="true",
        client_properties={"connection_name": name},
    )
