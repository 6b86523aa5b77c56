"""Signed caller identity across the broker: a request not signed with the deployment's key
is refused before it executes (unit checks of the signature, and forged requests published
straight to the real RabbitMQ)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.context import CallContext, Caller
from shared.errors import Unauthenticated
from shared.messaging.codec import encode
from shared.messaging.connection import connect_broker
from shared.messaging.identity import (
    RefusedRequest,
    RpcIdentity,
    RpcKeys,
    load_rpc_keys,
    new_rpc_key,
)
from shared.messaging.rpc import REPLY_TO, RpcClient, RpcServer, rpc_queue
from shared.metrics import Registry
from shared.settings import Settings

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN = Caller(user_id="u_admin", role="platform_admin")


def keys(*encoded: str) -> RpcKeys:
    return RpcKeys.parse(",".join(encoded))


def signed(
    identity: RpcIdentity,
    *,
    target: str = "booking",
    method: str = "cancel",
    body: bytes = b'{"id":"a1"}',
    caller: Caller | None = ADMIN,
    correlation_id: str = "c1",
    deadline: float | None = None,
) -> tuple[dict[str, object], bytes]:
    headers: dict[str, object] = {"x-deadline": int((deadline or time.time() + 5) * 1000)}
    if caller is not None:
        headers["x-caller"] = caller.model_dump_json()
    headers.update(identity.sign(target, method, correlation_id, headers, body))
    return headers, body


def test_signed_request_verifies_as_its_sender() -> None:
    key = new_rpc_key()
    headers, body = signed(RpcIdentity("gateway", keys(key)))
    assert (
        RpcIdentity("booking", keys(key)).verify("booking", "cancel", "c1", headers, body)
        == "gateway"
    )


@pytest.mark.parametrize(
    "tamper", ["body", "caller", "method", "target", "deadline", "correlation", "sender"]
)
def test_any_altered_part_of_a_signed_request_is_refused(tamper: str) -> None:
    key = new_rpc_key()
    headers, body = signed(RpcIdentity("gateway", keys(key)))
    target, method, cid = "booking", "cancel", "c1"
    if tamper == "body":
        body = b'{"id":"a2"}'
    elif tamper == "caller":
        headers["x-caller"] = Caller(user_id="u_other", role="platform_admin").model_dump_json()
    elif tamper == "method":
        method = "check_in"
    elif tamper == "target":
        target = "auth"
    elif tamper == "deadline":
        headers["x-deadline"] = int(headers["x-deadline"]) + 1000  # type: ignore[call-overload]
    elif tamper == "correlation":
        cid = "c2"
    elif tamper == "sender":
        headers["x-service"] = "booking"
    with pytest.raises(RefusedRequest) as refused:
        RpcIdentity(target, keys(key)).verify(target, method, cid, headers, body)
    assert refused.value.reason == "bad_signature"


def test_unsigned_other_key_replayed_and_far_deadline_requests_are_refused() -> None:
    key = new_rpc_key()
    server = RpcIdentity("booking", keys(key))
    headers, body = signed(RpcIdentity("gateway", keys(key)))
    unsigned = {k: v for k, v in headers.items() if k not in ("x-signature", "x-service")}
    cases = [
        (unsigned, "unsigned"),
        (signed(RpcIdentity("gateway", keys(new_rpc_key())))[0], "bad_signature"),
        (signed(RpcIdentity("gateway", keys(key)), deadline=time.time() + 3600)[0], "too_far"),
    ]
    for forged, reason in cases:
        with pytest.raises(RefusedRequest) as refused:
            server.verify("booking", "cancel", "c1", forged, body)
        assert refused.value.reason == reason
    assert server.verify("booking", "cancel", "c1", headers, body) == "gateway"
    with pytest.raises(RefusedRequest) as replayed:
        server.verify("booking", "cancel", "c1", headers, body)
    assert replayed.value.reason == "replayed"


def test_a_broker_redelivery_of_a_request_seen_before_is_not_a_replay() -> None:
    # a broker node died before the server acknowledged the request: the broker delivers
    # it again, flagged redelivered; a second publish of the same request is not flagged
    key = new_rpc_key()
    server = RpcIdentity("booking", keys(key))
    headers, body = signed(
        RpcIdentity("gateway", keys(key)), method="book", correlation_id="c-lost"
    )
    assert server.verify("booking", "book", "c-lost", headers, body) == "gateway"
    assert server.verify("booking", "book", "c-lost", headers, body, redelivered=True) == "gateway"
    with pytest.raises(RefusedRequest) as replayed:
        server.verify("booking", "book", "c-lost", headers, body)
    assert replayed.value.reason == "replayed"
    fresh, fresh_body = signed(
        RpcIdentity("gateway", keys(key)), method="book", correlation_id="c-new"
    )
    assert (
        server.verify("booking", "book", "c-new", fresh, fresh_body, redelivered=True) == "gateway"
    )


def test_key_rotation_verifies_with_every_listed_key_and_signs_with_the_first() -> None:
    old, new = new_rpc_key(), new_rpc_key()
    during = RpcIdentity("booking", keys(new, old))
    headers, body = signed(RpcIdentity("gateway", keys(old)), correlation_id="c-old")
    assert during.verify("booking", "cancel", "c-old", headers, body) == "gateway"
    headers, body = signed(during, target="auth", correlation_id="c-new")
    assert (
        RpcIdentity("auth", keys(new)).verify("auth", "cancel", "c-new", headers, body) == "booking"
    )
    with pytest.raises(RefusedRequest):
        RpcIdentity("auth", keys(old)).verify("auth", "cancel", "c-new", headers, body)


def test_short_or_malformed_keys_are_rejected_at_start(tmp_path: Path) -> None:
    for bad in ("", "not base64!", "c2hvcnQ="):
        with pytest.raises(ValueError):
            RpcKeys.parse(bad)
    first = load_rpc_keys(Settings(data_dir=tmp_path))
    assert load_rpc_keys(Settings(data_dir=tmp_path)) == first  # the dev key is generated once
    assert (tmp_path / "keys" / "rpc.key").stat().st_mode & 0o077 == 0


@pytest.fixture
async def broker() -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_broker(AMQP_URL, name="tests-identity")
    yield connection
    await connection.close()


async def raw_call(
    broker: AbstractRobustConnection,
    queue: str,
    method: str,
    headers: dict[str, object],
    body: bytes,
) -> dict[str, object]:
    """Publish a request straight to the broker, as a holder of broker credentials could."""
    channel = await broker.channel()
    replies: asyncio.Queue[bytes] = asyncio.Queue()
    reply_queue = await channel.declare_queue(REPLY_TO, passive=True)

    async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await replies.put(message.body)

    await reply_queue.consume(on_reply, no_ack=True)
    await channel.default_exchange.publish(
        aio_pika.Message(
            body=body,
            type=method,
            headers=headers,  # type: ignore[arg-type]
            correlation_id=uuid.uuid4().hex,
            reply_to=REPLY_TO,
        ),
        routing_key=queue,
    )
    try:
        async with asyncio.timeout(5):
            return dict(json.loads(await replies.get()))
    finally:
        await channel.close()


async def test_forged_requests_on_the_broker_are_refused_unexecuted_and_counted(
    broker: AbstractRobustConnection,
) -> None:
    service = f"test{uuid.uuid4().hex[:10]}"
    key = new_rpc_key()
    metrics = Registry()
    server = RpcServer(service, broker, metrics=metrics, identity=RpcIdentity(service, keys(key)))
    executed: list[CallContext] = []

    async def cancel_everything(params: None, ctx: CallContext) -> dict[str, bool]:
        executed.append(ctx)
        return {"cancelled": True}

    server.add_method("cancel_everything", cancel_everything)
    await server.start()
    try:
        deadline = int((time.time() + 5) * 1000)
        as_admin = {"x-deadline": deadline, "x-caller": ADMIN.model_dump_json()}
        unsigned = await raw_call(
            broker, rpc_queue(service), "cancel_everything", as_admin, encode({})
        )
        thief = RpcIdentity("gateway", keys(new_rpc_key()))
        wrong_key = {
            **as_admin,
            **thief.sign(service, "cancel_everything", "x", as_admin, encode({})),
        }
        forged = await raw_call(
            broker, rpc_queue(service), "cancel_everything", wrong_key, encode({})
        )
        for reply in (unsigned, forged):
            assert reply["error"]["code"] == Unauthenticated.code  # type: ignore[index]
        assert executed == []
        assert server._refused.value("unsigned") == 1
        assert server._refused.value("bad_signature") == 1
        assert "guahao_rpc_refused_total" in await metrics.render()

        client = RpcClient(broker, identity=RpcIdentity("gateway", keys(key)))
        assert await client.call(service, "cancel_everything", caller=ADMIN) == {"cancelled": True}
        assert [(c.service, c.caller) for c in executed] == [("gateway", ADMIN)]
    finally:
        await server.drain(1)
        channel = await broker.channel()
        await channel.queue_delete(rpc_queue(service))
        await channel.close()
