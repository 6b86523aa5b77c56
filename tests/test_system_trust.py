"""Trust across the broker in the running system: a request published straight to a
service's queue, claiming to come from a platform admin, is refused and not executed; the
same request signed with the deployment's RPC key is served."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aio_pika
import aiohttp

from shared.context import Caller
from shared.devstack import DevStack
from shared.messaging.codec import encode
from shared.messaging.identity import RpcIdentity, RpcKeys, new_rpc_key
from shared.messaging.rpc import REPLY_TO
from shared.settings import Settings
from tests.harness import Api

ADMIN = Caller(user_id="u_forged_admin", role="platform_admin")


async def publish_request(
    url: str, method: str, params: dict[str, Any], identity: RpcIdentity | None
) -> dict[str, Any]:
    """One request to `rpc.auth` over a bare aio-pika connection; returns the reply."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await replies.put(message.body)

        reply_queue = await channel.declare_queue(REPLY_TO, passive=True)
        await reply_queue.consume(on_reply, no_ack=True)
        body, correlation_id = encode(params), uuid.uuid4().hex
        headers: dict[str, Any] = {
            "x-deadline": int((time.time() + 5) * 1000),
            "x-caller": ADMIN.model_dump_json(),
        }
        if identity is not None:
            headers.update(identity.sign("auth", method, correlation_id, headers, body))
        await channel.default_exchange.publish(
            aio_pika.Message(
                body=body,
                type=method,
                headers=headers,
                correlation_id=correlation_id,
                reply_to=REPLY_TO,
            ),
            routing_key="rpc.auth",
        )
        async with asyncio.timeout(5):
            return dict(json.loads(await replies.get()))
    finally:
        await connection.close()


async def test_forged_broker_request_to_a_running_service_is_refused_and_not_executed(
    api: Api,
    stack: DevStack,
) -> None:
    admin = await api.admin_token()
    hospital = await api.request(
        "POST",
        "/admin/hospitals",
        token=admin,
        json={"name": f"信任测试医院 {uuid.uuid4().hex[:6]}"},
    )
    assert hospital.status == 201, hospital.body
    url = stack.env["AMQP_URL"]

    def staff(username: str) -> dict[str, str]:
        return {
            "hospital_id": hospital.body["id"],
            "username": username,
            "password": "a-long-enough-password-1",
        }

    async def can_log_in(username: str) -> bool:
        r = await api.request(
            "POST",
            "/auth/staff/login",
            json={"username": username, "password": "a-long-enough-password-1"},
        )
        return r.status == 200

    unsigned, wrong_key, genuine = (f"forged_{uuid.uuid4().hex[:8]}" for _ in range(3))
    reply = await publish_request(url, "create_staff", staff(unsigned), None)
    assert reply["error"]["code"] == "UNAUTHENTICATED"
    thief = RpcIdentity("gateway", RpcKeys.parse(new_rpc_key()))
    reply = await publish_request(url, "create_staff", staff(wrong_key), thief)
    assert reply["error"]["code"] == "UNAUTHENTICATED"
    assert not await can_log_in(unsigned) and not await can_log_in(wrong_key)

    # the dev key `make run` generated into the data dir is the deployment's key
    deployment = RpcIdentity.from_settings("gateway", Settings(data_dir=stack.data_dir))
    reply = await publish_request(url, "create_staff", staff(genuine), deployment)
    assert reply["ok"]["username"] == genuine, reply
    assert await can_log_in(genuine)

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.ops_url('auth')}/metrics") as resp:
            metrics = await resp.text()
    assert 'guahao_rpc_refused_total{reason="unsigned"}' in metrics
    assert 'guahao_rpc_refused_total{reason="bad_signature"}' in metrics
