"""RPC, events and consumers on the real RabbitMQ."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

from shared.context import CallContext, Caller, request_id_var
from shared.contracts.base import Contract
from shared.errors import NotFound, ServiceUnavailable, ValidationFailed
from shared.messaging.connection import connect_broker
from shared.messaging.consumer import EventConsumer, ProcessedEvents
from shared.messaging.events import EVENTS_EXCHANGE, EventEnvelope, EventPublisher, new_event
from shared.messaging.rpc import RpcClient, RpcServer, rpc_queue
from shared.storage.mongo import Document

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


class Double(Contract):
    x: int


@pytest.fixture
async def broker() -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_broker(AMQP_URL, name="tests")
    yield connection
    await connection.close()


@pytest.fixture
def service_name() -> str:
    return f"test{uuid.uuid4().hex[:10]}"


async def delete_queues(connection: AbstractRobustConnection, *names: str) -> None:
    channel = await connection.channel()
    for name in names:
        await channel.queue_delete(name)
    await channel.close()


async def test_rpc_round_trip_carries_result_caller_and_request_id(
    broker: AbstractRobustConnection, service_name: str
) -> None:
    server = RpcServer(service_name, broker)
    seen: list[CallContext] = []

    async def double(params: Double, ctx: CallContext) -> dict[str, int]:
        seen.append(ctx)
        return {"y": params.x * 2}

    server.add_method("double", double)
    await server.start()
    client = RpcClient(broker)
    request_id_var.set("req-123")
    caller = Caller(user_id="u1", role="patient")
    assert await client.call(service_name, "double", {"x": 21}, caller=caller) == {"y": 42}
    assert seen[0].request_id == "req-123" and seen[0].caller == caller
    await server.drain(1)
    await delete_queues(broker, rpc_queue(service_name))


async def test_rpc_domain_and_validation_errors_come_back_typed(
    broker: AbstractRobustConnection, service_name: str
) -> None:
    server = RpcServer(service_name, broker)

    async def find(params: Double, ctx: CallContext) -> None:
        raise NotFound(what="thing")

    server.add_method("find", find)
    await server.start()
    client = RpcClient(broker)
    with pytest.raises(NotFound) as exc:
        await client.call(service_name, "find", {"x": 1})
    assert exc.value.details == {"what": "thing"}
    with pytest.raises(ValidationFailed) as bad:
        await client.call(service_name, "find", {"x": "not a number"})
    assert "x" in bad.value.details["fields"]
    await server.drain(1)
    await delete_queues(broker, rpc_queue(service_name))


async def test_rpc_to_a_service_that_does_not_exist_fails_fast(
    broker: AbstractRobustConnection, service_name: str
) -> None:
    client = RpcClient(broker)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await client.call(service_name, "anything", {}, timeout=5)
    assert time.monotonic() - started < 1.0


async def test_rpc_to_a_stopped_service_gives_up_at_the_deadline_and_is_never_run_late(
    broker: AbstractRobustConnection, service_name: str
) -> None:
    channel = await broker.channel()
    await channel.declare_queue(rpc_queue(service_name), durable=True)  # nobody consumes
    client = RpcClient(broker)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await client.call(service_name, "double", {"x": 1}, timeout=0.5)
    assert time.monotonic() - started < 1.5
    await asyncio.sleep(0.3)
    calls: list[int] = []
    server = RpcServer(service_name, broker)

    async def double(params: Double, ctx: CallContext) -> int:
        calls.append(params.x)
        return params.x * 2

    server.add_method("double", double)
    await server.start()
    assert await client.call(service_name, "double", {"x": 5}) == 10
    assert calls == [5]  # the stale request expired, it was not executed
    await server.drain(1)
    await channel.close()
    await delete_queues(broker, rpc_queue(service_name))


async def test_published_event_reaches_a_hospital_queue_with_the_contract_properties(
    broker: AbstractRobustConnection,
) -> None:
    hospital = f"h_{uuid.uuid4().hex[:8]}"
    channel = await broker.channel()
    exchange = await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key=f"*.*.{hospital}")
    publisher = EventPublisher(broker)
    event = new_event("appointment.booked", hospital, {"appointment": {"id": "a1"}})
    await publisher.publish(event)
    message = await queue.get(timeout=5)
    assert message.message_id == event.id and message.type == "appointment.booked"
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.routing_key == f"appointment.booked.{hospital}"
    assert EventEnvelope.model_validate_json(message.body) == event
    assert event.occurred_at.endswith("+08:00")
    await message.ack()
    await channel.close()


async def test_consumer_skips_duplicates_retries_failures_and_dead_letters_poison(
    broker: AbstractRobustConnection, mongo_db: AsyncDatabase[Document]
) -> None:
    hospital = f"h_{uuid.uuid4().hex[:8]}"
    purpose = f"t{uuid.uuid4().hex[:8]}"
    handled: list[str] = []
    attempts: dict[str, int] = {}

    async def handler(event: EventEnvelope) -> None:
        attempts[event.id] = attempts.get(event.id, 0) + 1
        if event.data.get("fail_times", 0) >= attempts[event.id]:
            raise RuntimeError("transient")
        if event.data.get("poison"):
            raise RuntimeError("always")
        handled.append(event.id)

    consumer = EventConsumer(
        broker,
        ProcessedEvents(mongo_db.processed_events),
        service="tests",
        purpose=purpose,
        bindings=[f"*.*.{hospital}"],
        handler=handler,
        max_attempts=3,
        retry_delay=0.2,
    )
    await consumer.start()
    publisher = EventPublisher(broker)
    ok = new_event("appointment.booked", hospital, {})
    flaky = new_event("appointment.cancelled", hospital, {"fail_times": 1})
    poison = new_event("appointment.no_show", hospital, {"poison": True})
    for event in (ok, ok, flaky, poison):
        await publisher.publish(event)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(handled) < 2 or attempts.get(poison.id, 0) < 3):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert sorted(handled) == sorted([ok.id, flaky.id])
    assert attempts[poison.id] == 3
    channel = await broker.channel()
    dlq = await channel.declare_queue(f"{consumer.queue_name}.dlq", passive=True)
    dead = await dlq.get(timeout=5)
    assert dead.message_id == poison.id and dead.headers["x-attempts"] == 3
    await dead.ack()
    await consumer.drain(1)
    await channel.close()
    q = consumer.queue_name
    await delete_queues(broker, q, f"{q}.retry", f"{q}.dlq")


def make_consumer(
    broker: AbstractRobustConnection,
    mongo_db: AsyncDatabase[Document],
    hospital: str,
    handler: Callable[[EventEnvelope], Awaitable[None]],
    **options: Any,
) -> EventConsumer:
    return EventConsumer(
        broker,
        ProcessedEvents(mongo_db.processed_events),
        service="tests",
        purpose=f"t{uuid.uuid4().hex[:8]}",
        bindings=[f"*.*.{hospital}"],
        handler=handler,
        **options,
    )


async def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        await asyncio.sleep(0.05)


async def stop_and_delete(broker: AbstractRobustConnection, consumer: EventConsumer) -> None:
    await consumer.drain(1)
    q = consumer.queue_name
    await delete_queues(broker, q, f"{q}.retry", f"{q}.dlq")


async def dead_letters(broker: AbstractRobustConnection, consumer: EventConsumer) -> int:
    channel = await broker.channel()
    dlq = await channel.declare_queue(f"{consumer.queue_name}.dlq", passive=True)
    count = dlq.declaration_result.message_count or 0
    await channel.close()
    return count


async def test_concurrent_deliveries_of_one_event_run_the_handler_once(
    broker: AbstractRobustConnection, mongo_db: AsyncDatabase[Document]
) -> None:
    """The race of check-then-act: copies arriving within the prefetch window used to all
    see "not processed" and all run. The claim lets exactly one through."""
    hospital = f"h_{uuid.uuid4().hex[:8]}"
    runs: list[str] = []

    async def slow_handler(event: EventEnvelope) -> None:
        runs.append(event.id)
        await asyncio.sleep(0.3)

    consumer = make_consumer(broker, mongo_db, hospital, slow_handler, retry_delay=0.2)
    await consumer.start()
    publisher = EventPublisher(broker)
    event = new_event("appointment.booked", hospital, {})
    await asyncio.gather(*(publisher.publish(event) for _ in range(8)))
    await wait_until(lambda: bool(runs))
    await asyncio.sleep(1.5)  # the held copies went round the retry queue and were skipped
    assert runs == [event.id]
    assert await dead_letters(broker, consumer) == 0
    claim = await mongo_db.processed_events.find_one({"_id": f"{consumer.queue_name}:{event.id}"})
    assert claim is not None and claim["state"] == "done"
    await stop_and_delete(broker, consumer)


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("store down"),
        ServerSelectionTimeoutError("no primary"),
        NetworkTimeout("timed out"),
        ConnectionFailure("refused"),
    ],
)
async def test_store_outage_is_retried_with_backoff_and_never_dead_lettered(
    broker: AbstractRobustConnection, mongo_db: AsyncDatabase[Document], error: Exception
) -> None:
    hospital = f"h_{uuid.uuid4().hex[:8]}"
    calls: list[float] = []
    handled: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        calls.append(time.monotonic())
        if len(calls) <= 5:  # more outages than max_attempts
            raise error
        handled.append(event.id)

    consumer = make_consumer(
        broker,
        mongo_db,
        hospital,
        handler,
        max_attempts=2,
        retry_delay=0.05,
        infra_backoff=0.05,
        infra_backoff_max=0.4,
    )
    await consumer.start()
    event = new_event("appointment.booked", hospital, {})
    await EventPublisher(broker).publish(event)
    await wait_until(lambda: bool(handled), timeout=15)
    assert handled == [event.id]
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[3] > gaps[0] and gaps[3] >= 0.4  # backoff grew: 0.05, 0.1, 0.2, 0.4 (+ TTL)
    assert await dead_letters(broker, consumer) == 0
    await stop_and_delete(broker, consumer)


async def test_handler_errors_still_dead_letter_after_the_limit_and_release_the_claim(
    broker: AbstractRobustConnection, mongo_db: AsyncDatabase[Document]
) -> None:
    hospital = f"h_{uuid.uuid4().hex[:8]}"
    calls: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        calls.append(event.id)
        raise ValueError("a bug, not an outage")

    consumer = make_consumer(broker, mongo_db, hospital, handler, max_attempts=2, retry_delay=0.05)
    await consumer.start()
    event = new_event("appointment.booked", hospital, {})
    await EventPublisher(broker).publish(event)
    await wait_until(lambda: len(calls) >= 2)
    await asyncio.sleep(0.3)
    assert len(calls) == 2 and await dead_letters(broker, consumer) == 1
    assert (
        await mongo_db.processed_events.find_one({"_id": f"{consumer.queue_name}:{event.id}"})
        is None
    )
    await stop_and_delete(broker, consumer)


async def test_a_stale_claim_is_taken_over_and_a_live_one_waited_for(
    broker: AbstractRobustConnection, mongo_db: AsyncDatabase[Document]
) -> None:
    """A holder that died leaves a claim: after its lease another delivery takes it. A
    mark written before claims existed counts as handled."""
    hospital = f"h_{uuid.uuid4().hex[:8]}"
    handled: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        handled.append(event.id)

    consumer = make_consumer(broker, mongo_db, hospital, handler, retry_delay=0.1)
    stale, live, legacy = (new_event("appointment.booked", hospital, {}) for _ in range(3))
    now = dt.datetime.now(dt.UTC)
    # handled before claims existed: `{_id, at}` only
    await mongo_db.processed_events.insert_one(
        {"_id": f"{consumer.queue_name}:{legacy.id}", "at": now}
    )
    for event, until in (
        (stale, now - dt.timedelta(seconds=1)),
        (live, now + dt.timedelta(seconds=1.5)),
    ):
        await mongo_db.processed_events.insert_one(
            {
                "_id": f"{consumer.queue_name}:{event.id}",
                "state": "claimed",
                "holder": "dead-replica",
                "until": until,
                "at": now,
            }
        )
    await consumer.start()
    publisher = EventPublisher(broker)
    await publisher.publish(legacy)
    await publisher.publish(stale)
    await publisher.publish(live)
    await wait_until(lambda: stale.id in handled)
    assert handled == [stale.id]  # the live claim is respected...
    await wait_until(lambda: live.id in handled)
    assert handled == [stale.id, live.id]  # ...until its lease runs out
    await stop_and_delete(broker, consumer)


async def test_a_call_made_while_serving_one_never_outlives_the_callers_deadline(
    broker: AbstractRobustConnection, service_name: str
) -> None:
    outer, inner = RpcServer(f"{service_name}o", broker), RpcServer(f"{service_name}i", broker)
    waited: list[float] = []
    client = RpcClient(broker, default_timeout=5.0)

    async def slow(params: None, ctx: CallContext) -> None:
        await asyncio.sleep(3)

    async def relay(params: None, ctx: CallContext) -> None:
        started = time.monotonic()
        try:
            await client.call(f"{service_name}i", "slow")  # default 5 s, inherits ~1 s
        finally:
            waited.append(time.monotonic() - started)

    inner.add_method("slow", slow)
    outer.add_method("relay", relay)
    await inner.start()
    await outer.start()
    with pytest.raises(ServiceUnavailable):
        await client.call(f"{service_name}o", "relay", timeout=1.0)
    await asyncio.sleep(0.5)
    assert waited and waited[0] < 1.5
    for server in (outer, inner):
        await server.drain(4)
    await delete_queues(broker, rpc_queue(f"{service_name}o"), rpc_queue(f"{service_name}i"))
