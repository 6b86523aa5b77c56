"""The metrics registry on prometheus-client, the outbox's age gauge and the event lag."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractRobustConnection
from prometheus_client.parser import text_string_to_metric_families
from pymongo.asynchronous.database import AsyncDatabase

from shared.messaging.connection import connect_broker
from shared.messaging.consumer import EventConsumer
from shared.messaging.events import EventEnvelope, EventPublisher, new_event
from shared.messaging.outbox import OutboxRelay, outbox_fields
from shared.metrics import Registry
from shared.storage.lease import Lease
from shared.storage.mongo import Document

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_registry_keeps_names_labels_and_one_metric_per_name() -> None:
    registry = Registry()
    handled = registry.counter("guahao_rpc_handled_total", "RPC handled.", ("method", "outcome"))
    assert registry.counter("guahao_rpc_handled_total", "", ("method", "outcome")) is handled
    handled.inc("book", "ok")
    handled.inc("book", "ok", amount=2)
    latency = registry.histogram("guahao_rpc_handle_seconds", "RPC time.", ("method",))
    latency.observe(0.02, "book")

    async def broken() -> float:
        raise ConnectionError("store down")

    async def three() -> float:
        return 3

    registry.gauge("guahao_outbox_backlog", "Pending.", three)
    registry.gauge("guahao_outbox_oldest_age_seconds", "Age.", broken)
    found = samples(await registry.render())
    assert handled.value("book", "ok") == 3 and latency.count("book") == 1
    assert found[("guahao_rpc_handled_total", (("method", "book"), ("outcome", "ok")))] == 3
    assert found[("guahao_rpc_handle_seconds_bucket", (("le", "0.025"), ("method", "book")))] == 1
    assert found[("guahao_outbox_backlog", ())] == 3
    # a source that is down makes its gauge NaN, never a failed scrape
    assert math.isnan(found[("guahao_outbox_oldest_age_seconds", ())])
    assert ("process_cpu_seconds_total", ()) in found


class Unused:
    async def publish(self, event: EventEnvelope) -> None:
        raise AssertionError("nothing is published here")


async def test_outbox_age_is_the_oldest_pending_event(mongo_db: AsyncDatabase[Document]) -> None:
    collection = mongo_db.things
    relay = OutboxRelay(
        Unused(), [collection], Lease(mongo_db.leases, "outbox", "me", dt.timedelta(seconds=10))
    )
    assert await relay.oldest_age() == 0.0
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    await collection.insert_one(
        {"_id": "a", **outbox_fields(new_event("x.y", "h", {})), "outbox_at": old}
    )
    await collection.insert_one({"_id": "b", **outbox_fields(new_event("x.y", "h", {}))})
    assert 179 < await relay.oldest_age() < 240
    await collection.update_one({"_id": "a"}, {"$set": {"outbox_pending": False}})
    assert await relay.oldest_age() < 60


@pytest.fixture
async def broker() -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_broker(AMQP_URL, name="tests")
    yield connection
    await connection.close()


async def test_consumers_observe_how_late_an_event_is_handled(
    broker: AbstractRobustConnection,
) -> None:
    hospital = f"h_{uuid.uuid4().hex[:8]}"
    registry = Registry()
    handled = asyncio.Event()

    async def handler(event: EventEnvelope) -> None:
        handled.set()

    consumer = EventConsumer(
        broker,
        None,
        service=f"test{uuid.uuid4().hex[:8]}",
        purpose="lag",
        bindings=[f"*.*.{hospital}"],
        handler=handler,
        metrics=registry,
    )
    await consumer.start()
    try:
        late = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
        await EventPublisher(broker).publish(new_event("appointment.booked", hospital, {}, at=late))
        async with asyncio.timeout(10):
            await handled.wait()
        found = samples(registry.exposition())
        queue = consumer.queue_name
        assert found[("guahao_event_lag_seconds_count", (("queue", queue),))] == 1
        assert found[("guahao_event_lag_seconds_bucket", (("le", "15.0"), ("queue", queue)))] == 0
        assert found[("guahao_event_lag_seconds_bucket", (("le", "60.0"), ("queue", queue)))] == 1
    finally:
        await consumer.stop_taking()
        await consumer.drain(1)
        channel = await broker.channel()
        for suffix in ("", ".retry", ".dlq"):
            await channel.queue_delete(consumer.queue_name + suffix)
        await channel.close()
