"""Trace context propagation without any exporter (tracing off: propagation only): across
a signed RPC, an event, an outbox entry written now and published later, and into log
lines; and the tracing environment checks."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractRobustConnection
from pymongo.asynchronous.database import AsyncDatabase

from shared.context import CallContext
from shared.logs import formatter
from shared.messaging.connection import connect_broker
from shared.messaging.consumer import EventConsumer
from shared.messaging.events import EventEnvelope, EventPublisher, new_event
from shared.messaging.identity import RefusedRequest, RpcIdentity, RpcKeys, new_rpc_key
from shared.messaging.outbox import OutboxRelay, outbox_fields, with_outbox
from shared.messaging.rpc import RpcClient, RpcServer, rpc_queue
from shared.storage.lease import Lease
from shared.storage.mongo import Document
from shared.tracing import check_environment, current_trace_id, resumed, wanted

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}


@pytest.fixture
async def broker() -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_broker(AMQP_URL, name="tests")
    yield connection
    await connection.close()


def test_tracing_is_on_only_when_an_exporter_is_configured() -> None:
    assert not wanted({})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"})
    assert wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4318/v1/traces"})
    assert wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not wanted(
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}
    )
    assert not wanted(
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}
    )


def test_a_tracing_configuration_that_cannot_be_honoured_is_refused_by_name() -> None:
    check_environment({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        check_environment({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        check_environment({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_trace_headers_neither_break_nor_replace_the_rpc_signature() -> None:
    key = RpcKeys.parse(new_rpc_key())
    gateway, booking = RpcIdentity("gateway", key), RpcIdentity("booking", key)
    body = b'{"slot_id":"s1"}'
    headers: dict[str, object] = {"x-deadline": 2**42, "x-caller": '{"user_id":"u1"}'}
    headers.update(gateway.sign("booking", "book", "c1", headers, body))
    headers.update(TRACEPARENT)  # added after signing, as RpcClient does
    booking._clock = lambda: 2**42 / 1000 - 10
    assert booking.verify("booking", "book", "c1", headers, body) == "gateway"
    # a signed part altered is still refused whatever trace headers come along
    forged = {**headers, "x-caller": '{"user_id":"u2"}'}
    with pytest.raises(RefusedRequest, match="bad_signature"):
        booking.verify("booking", "book", "c2", forged, body)
    # trace headers alone make no request genuine
    with pytest.raises(RefusedRequest, match="unsigned"):
        booking.verify("booking", "book", "c3", {"x-deadline": 2**42, **TRACEPARENT}, body)


async def test_a_signed_rpc_carries_the_callers_trace(broker: AbstractRobustConnection) -> None:
    service = f"test{uuid.uuid4().hex[:10]}"
    key = RpcKeys.parse(new_rpc_key())
    server = RpcServer(service, broker, identity=RpcIdentity(service, key))
    seen: list[tuple[str | None, str | None]] = []

    async def traced(params: None, ctx: CallContext) -> dict[str, bool]:
        seen.append((current_trace_id(), ctx.service))
        return {"ok": True}

    server.add_method("traced", traced)
    await server.start()
    client = RpcClient(broker, identity=RpcIdentity("gateway", key))
    try:
        with resumed(TRACEPARENT):
            assert await client.call(service, "traced") == {"ok": True}
        assert await client.call(service, "traced") == {"ok": True}
        assert seen == [(TRACE_ID, "gateway"), (None, "gateway")]
    finally:
        await server.drain(1)
        channel = await broker.channel()
        await channel.queue_delete(rpc_queue(service))
        await channel.close()


async def test_an_events_handling_continues_the_publishers_trace(
    broker: AbstractRobustConnection,
) -> None:
    hospital = f"h_{uuid.uuid4().hex[:8]}"
    seen: list[str | None] = []
    handled = asyncio.Event()

    async def handler(event: EventEnvelope) -> None:
        seen.append(current_trace_id())
        handled.set()

    consumer = EventConsumer(
        broker,
        None,
        service=f"test{uuid.uuid4().hex[:8]}",
        purpose="tracing",
        bindings=[f"*.*.{hospital}"],
        handler=handler,
    )
    await consumer.start()
    try:
        with resumed(TRACEPARENT):
            await EventPublisher(broker).publish(new_event("appointment.booked", hospital, {}))
        async with asyncio.timeout(10):
            await handled.wait()
        assert seen == [TRACE_ID]
    finally:
        await consumer.stop_taking()
        await consumer.drain(1)
        channel = await broker.channel()
        for suffix in ("", ".retry", ".dlq"):
            await channel.queue_delete(consumer.queue_name + suffix)
        await channel.close()


class RecordingSink:
    def __init__(self) -> None:
        self.published: list[tuple[str, str | None]] = []

    async def publish(self, event: EventEnvelope) -> None:
        self.published.append((event.id, current_trace_id()))


async def test_an_outbox_entry_is_published_later_in_the_trace_that_wrote_it(
    mongo_db: AsyncDatabase[Document],
) -> None:
    collection = mongo_db.things
    traced_event = new_event("appointment.booked", "h1", {})
    untraced_event = new_event("appointment.cancelled", "h1", {})
    with resumed(TRACEPARENT):
        fields = outbox_fields(traced_event)
        update = with_outbox({"$set": {"x": 1}}, traced_event)
    assert fields["outbox"][0]["trace"] == update["$push"]["outbox"]["$each"][0]["trace"]
    assert "trace" not in outbox_fields(untraced_event)["outbox"][0]  # nothing to keep
    await collection.insert_one({"_id": "a1"} | fields)
    await collection.update_one({"_id": "a1"}, with_outbox({"$set": {"x": 2}}, untraced_event))
    sink = RecordingSink()
    relay = OutboxRelay(
        sink, [collection], Lease(mongo_db.leases, "outbox", "me", dt.timedelta(seconds=10))
    )
    assert current_trace_id() is None
    assert await relay.flush(collection, "a1") == 2
    # the relay (a crash recovery, long after the request) publishes in the writer's trace
    assert sink.published == [(traced_event.id, TRACE_ID), (untraced_event.id, None)]
    # and the entries, trace context and all, are gone once published
    doc = await collection.find_one({"_id": "a1"})
    assert doc is not None and doc["outbox"] == [] and doc["outbox_pending"] is False
    # what goes on the wire is the event, never the stored trace context
    assert "trace" not in EventEnvelope.model_validate(fields["outbox"][0]).model_dump()


def test_log_lines_carry_the_current_trace_id() -> None:
    json_lines = formatter("booking", "json")
    record = logging.makeLogRecord(
        {
            "msg": "appointment booked",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "name": "guahao.booking",
        }
    )
    assert "trace_id" not in json.loads(json_lines.format(record))
    with resumed(TRACEPARENT):
        assert json.loads(json_lines.format(record))["trace_id"] == TRACE_ID


def test_calls_outside_any_trace_are_not_sampled_but_inside_one_follow_the_sampler() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
    from opentelemetry.trace import SpanKind

    from shared.tracing import NoLoneClientSpans, extract

    sampler = NoLoneClientSpans(ALWAYS_ON)
    lone = sampler.should_sample(None, 1, "guahao_booking.find", SpanKind.CLIENT)
    assert lone.decision is Decision.DROP  # a lease renewal, a sweep: no trace of its own
    inside = sampler.should_sample(extract(TRACEPARENT), 1, "guahao_booking.find", SpanKind.CLIENT)
    assert inside.decision is Decision.RECORD_AND_SAMPLE
    root = sampler.should_sample(None, 1, "POST /api/v1/appointments", SpanKind.SERVER)
    assert root.decision is Decision.RECORD_AND_SAMPLE
