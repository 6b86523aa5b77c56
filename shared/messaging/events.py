"""Domain events: the envelope of the contract and a publisher with confirms."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import DeliveryError
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from shared.context import Caller, actor_var
from shared.messaging.codec import encode
from shared.metrics import Registry
from shared.tracing import event_attributes, inject, tracer

log = logging.getLogger("guahao.events")

EVENTS_EXCHANGE = "guahao.events"
PUBLISH_TIMEOUT = 10.0  # for the broker's confirm of one event
# the "hospital" of events that belong to none (patient profiles): no hospital's binding
# `*.*.<its id>` matches it, so they stay internal
PLATFORM = "platform"
HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")


class Actor(BaseModel):
    """The staff member whose request caused an event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    role: str


class EventEnvelope(BaseModel):
    """The body of every event on `guahao.events` and of every webhook delivery.

    `actor` is present only on events caused by a staff request (absent, never null).
    """

    model_config = ConfigDict(extra="ignore")

    id: str
    type: str
    version: int = 1
    occurred_at: str
    hospital_id: str
    data: dict[str, Any]
    actor: Actor | None = None

    @model_serializer(mode="wrap")
    def _without_absent_actor(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        if dumped.get("actor") is None:
            dumped.pop("actor", None)
        return dumped

    @property
    def routing_key(self) -> str:
        """`<type>.<hospital_id>`: a hospital binds `*.*.<its id>`."""
        return f"{self.type}.{self.hospital_id}"


def new_event(
    type: str,
    hospital_id: str,
    data: dict[str, Any],
    *,
    at: dt.datetime | None = None,
    actor: Caller | None = None,
) -> EventEnvelope:
    """A new event with a fresh id, stamped in hospital-local time.

    When it is created while serving a staff member's request (an access check named the
    caller, `shared.access`), it carries that staff member as its `actor`; `actor` names
    one explicitly.
    """
    occurred = (at or dt.datetime.now(dt.UTC)).astimezone(HOSPITAL_TZ)
    caller = actor or actor_var.get()
    return EventEnvelope(
        id=f"evt_{uuid.uuid4().hex}",
        type=type,
        occurred_at=occurred.isoformat(timespec="milliseconds"),
        hospital_id=hospital_id,
        data=data,
        actor=Actor(id=caller.user_id, role=caller.role)
        if caller is not None and caller.is_staff
        else None,
    )


async def declare_events_exchange(channel: AbstractChannel) -> AbstractExchange:
    """The durable topic exchange all domain events go through."""
    return await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )


class EventPublisher:
    """Publishes events persistently and returns only once the broker confirmed them; the
    current trace context rides in the message headers."""

    def __init__(
        self, connection: AbstractRobustConnection, metrics: Registry | None = None
    ) -> None:
        self.connection = connection
        self._published = (metrics or Registry()).counter(
            "guahao_events_published_total", "Events confirmed by the broker, by type.", ("type",)
        )
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def start(self) -> None:
        """Open the confirming channel and declare the exchange."""
        self._channel = await self.connection.channel(publisher_confirms=True)
        self._exchange = await declare_events_exchange(self._channel)

    async def publish(self, event: EventEnvelope) -> None:
        """Publish one event; raises if the broker did not confirm it."""
        if self._exchange is None:
            await self.start()
        assert self._exchange is not None
        with tracer.start_as_current_span(
            f"{event.type} publish",
            kind=SpanKind.PRODUCER,
            attributes={**event_attributes(event), "messaging.destination.name": EVENTS_EXCHANGE},
        ):
            headers: dict[str, Any] = {}
            inject(headers)  # the consumer's span continues this trace
            try:
                # bounded: a confirm that never comes (a channel left talking to a queue
                # leader that died) must not hold the outbox; it publishes again, consumers
                # dedupe
                async with asyncio.timeout(PUBLISH_TIMEOUT):
                    await self._exchange.publish(
                        aio_pika.Message(
                            body=encode(event),
                            content_type="application/json",
                            message_id=event.id,
                            type=event.type,
                            headers=headers or None,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=event.routing_key,
                    )
            except (TimeoutError, DeliveryError) as exc:
                # a nack, or no confirm: on a cluster, a channel opened while a queue's
                # leader was being elected can keep refusing or losing publishes; the next
                # publish gets a new one
                channel, self._channel, self._exchange = self._channel, None, None
                log.warning(
                    "event not confirmed: publishing channel recycled",
                    extra={"event_id": event.id, "error": repr(exc)},
                )
                if channel is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(2):
                            await channel.close()
                raise
        self._published.inc(event.type)
        log.debug("event published", extra={"event_id": event.id, "type": event.type})
