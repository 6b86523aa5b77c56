"""Issue 16 acceptance: one booking through the gateway is ONE trace, exported over
OTLP/HTTP (protobuf) by every process to a receiver the test runs: the gateway request,
the booking RPC, the store writes, the outbox publish, notify's handling, the WeChat
subscribe send and the hospital's webhook delivery; log lines carry its trace id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from shared.devstack import DevStack
from tests.harness import Api, delete_vhost, read_logs, start_stack
from tests.notify_kit import Receiver
from tests.otlp_kit import OtlpReceiver, ReceivedSpan
from tests.system_kit import id_number, make_hospital, make_schedule
from tests.test_notify_system import BOOKED, DAY_AFTER, subscribed_patient

pytestmark = pytest.mark.slow

SEND_PATH = "/cgi-bin/message/subscribe/send"
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[OtlpReceiver, DevStack]]:
    receiver = await OtlpReceiver().start()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    stack, vhost = await asyncio.to_thread(start_stack, tmp_path, env)
    try:
        yield receiver, stack
    finally:
        await asyncio.to_thread(stack.stop)
        delete_vhost(vhost)
        await receiver.close()


def url_of(span: ReceivedSpan) -> str:
    return str(span.attr("url.full", "http.url") or "")


async def test_one_booking_is_one_trace_across_every_hop(
    traced: tuple[OtlpReceiver, DevStack],
) -> None:
    otlp, stack = traced
    hook_receiver = await Receiver().start()
    hook_url = hook_receiver.url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = Api(stack, session)
        try:
            hospital = await make_hospital(api)
            hook = await api.request(
                "POST",
                f"/admin/hospitals/{hospital.id}/webhooks",
                token=hospital.staff_token,
                json={"url": hook_receiver.url, "events": ["appointment.*"]},
            )
            assert hook.status == 201, hook.body
            schedule = await make_schedule(api, hospital, capacity=5, date=DAY_AFTER)
            token, patient_id, _ = await subscribed_patient(api, 4601, BOOKED, 1)
            request_id = f"trace-test-{uuid.uuid4().hex[:8]}"
            booked = await api.request(
                "POST",
                "/appointments",
                token=token,
                json={"slot_id": schedule["slots"][0]["id"], "patient_id": patient_id},
                headers={
                    "Idempotency-Key": uuid.uuid4().hex,
                    "X-Request-ID": request_id,
                    # a client's own trace context is linked, never continued
                    "traceparent": f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01",
                },
            )
            assert booked.status == 201, booked.body
            appointment_id = booked.body["id"]
            [delivery] = await hook_receiver.wait_for(1, timeout=30)
        finally:
            await hook_receiver.close()

    def gateway_span() -> ReceivedSpan | None:
        return next(
            (
                s
                for s in otlp.spans
                if s.service == "gateway"
                and s.kind == "SERVER"
                and s.name == "POST /api/v1/appointments"
                and s.attributes.get("http.response.status_code") == 201
            ),
            None,
        )

    await otlp.wait_for(lambda: gateway_span() is not None)
    root = gateway_span()
    assert root is not None and root.parent_id == ""
    trace_id = root.trace_id
    assert trace_id != CLIENT_TRACE and root.links == (CLIENT_TRACE,)

    def find(service: str, kind: str, predicate: object = None) -> list[ReceivedSpan]:
        return [
            s
            for s in otlp.trace(trace_id)
            if s.service == service and s.kind == kind and (predicate is None or predicate(s))  # type: ignore[operator]
        ]

    def complete() -> bool:
        return all(
            [
                find("booking", "SERVER", lambda s: s.name == "booking.book"),
                find("booking", "CLIENT", lambda s: s.attributes.get("db.system") == "mongodb"),
                find("booking", "PRODUCER", lambda s: s.name == "appointment.booked publish"),
                find("notify", "CONSUMER", lambda s: s.name == "appointment.booked process"),
                find("notify", "CLIENT", lambda s: url_of(s).endswith(SEND_PATH)),
                find("notify", "INTERNAL", lambda s: s.name == "webhook deliver"),
                find("notify", "CLIENT", lambda s: url_of(s) == hook_url),
            ]
        )

    await otlp.wait_for(complete)
    spans = otlp.trace(trace_id)
    by_id = {s.span_id: s for s in spans}

    # one tree: the gateway's request is the only root, every other span's parent is here
    assert [s for s in spans if s.parent_id == ""] == [root]
    assert all(s.parent_id in by_id for s in spans if s is not root)

    def ancestors(span: ReceivedSpan) -> list[str]:
        chain = []
        while span.parent_id:
            span = by_id[span.parent_id]
            chain.append(span.name)
        return chain

    [book_client] = find("gateway", "CLIENT", lambda s: s.name == "booking.book")
    [book_server] = find("booking", "SERVER", lambda s: s.name == "booking.book")
    assert book_client.parent_id == root.span_id
    assert book_server.parent_id == book_client.span_id
    assert book_server.attributes["guahao.appointment_id"] == appointment_id
    assert book_server.attributes["guahao.hospital_id"] == hospital.id
    assert root.attributes["guahao.request_id"] == request_id
    # the store writes of the booking are children of the booking RPC
    writes = find(
        "booking",
        "CLIENT",
        lambda s: s.attributes.get("db.system") == "mongodb" and "booking.book" in ancestors(s),
    )
    assert any(s.name.endswith((".insert", ".update", ".findAndModify")) for s in writes), [
        s.name for s in writes
    ]
    [publish] = find("booking", "PRODUCER", lambda s: s.name == "appointment.booked publish")
    assert publish.attributes["guahao.appointment_id"] == appointment_id
    handled = find("notify", "CONSUMER", lambda s: s.name == "appointment.booked process")
    assert all(s.parent_id == publish.span_id for s in handled)
    [send] = find("notify", "CLIENT", lambda s: url_of(s).endswith(SEND_PATH))
    assert "appointment.booked process" in ancestors(send)
    [deliver] = find("notify", "INTERNAL", lambda s: s.name == "webhook deliver")
    assert deliver.attributes["guahao.event_type"] == "appointment.booked"
    assert "appointment.booked process" in ancestors(deliver)
    # the receiver was told the trace it belongs to (W3C traceparent)
    assert delivery.headers.get("traceparent", "").split("-")[1] == trace_id

    # no secret and no PII in any span of the trace: no query strings (WeChat's access
    # token), no ID number, no phone
    values = [str(v) for s in spans for v in s.attributes.values()]
    assert not [v for v in values if "access_token" in v or "?" in v]
    assert not [v for v in values if id_number(4601) in v or "13800000000" in v]

    # log lines written while serving the booking carry its trace id
    assert f'"trace_id": "{trace_id}"' in read_logs(stack)
