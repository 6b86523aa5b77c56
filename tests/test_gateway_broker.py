"""The gateway end to end on the real RabbitMQ: a real RpcServer under a unique service
name serves the routes, the gateway talks to it through a real RpcClient."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.routes import ROUTES
from gateway.testing import Client, TokenSigner, bearer, signing_keys
from shared.context import CallContext
from shared.contracts.patients import PatientCreate
from shared.errors import LimitReached
from shared.messaging.connection import connect_broker
from shared.messaging.rpc import RpcClient, RpcServer, rpc_queue
from shared.settings import DEFAULT_AMQP_URL, Settings

AMQP_URL = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
PATIENT_BODY = {
    "name": "张三",
    "id_number": "11010519491231002X",
    "phone": "13800138000",
    "relation": "self",
}


class FakeAuthService:
    """Just enough of auth, served over RabbitMQ under a unique name."""

    def __init__(self, name: str, signer: TokenSigner, connection: AbstractRobustConnection):
        self.name = name
        self.signer = signer
        self.server = RpcServer(name, connection)
        self.contexts: list[CallContext] = []
        self.server.add_method("signing_keys", self.signing_keys)
        self.server.add_method("create_patient", self.create_patient)

    async def signing_keys(self, params: None, ctx: CallContext) -> dict[str, Any]:
        return signing_keys(self.signer)

    async def create_patient(self, params: PatientCreate, ctx: CallContext) -> dict[str, Any]:
        self.contexts.append(ctx)
        if params.name == "满员":
            raise LimitReached(limit=5)
        return {"id": "p_1", "name": params.name, "relation": params.relation}


@pytest.fixture
async def broker() -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_broker(AMQP_URL, name="test-gateway")
    yield connection
    await connection.close()


@pytest.fixture
async def auth_service(broker: AbstractRobustConnection) -> AsyncIterator[FakeAuthService]:
    service = FakeAuthService(f"gwtest_{uuid.uuid4().hex[:10]}", TokenSigner(), broker)
    await service.server.start()
    yield service
    await service.server.drain(1.0)
    channel = await broker.channel()
    await channel.queue_delete(rpc_queue(service.name))
    await channel.close()


def isolated_app(
    service: str, rpc: RpcClient | None = None, *, amqp_url: str = AMQP_URL, **options: Any
) -> web.Application:
    """The gateway with every route (and the signing keys) pointed at `service`."""
    routes = tuple(replace(route, service=service) for route in ROUTES)
    # a gateway that connects itself generates its dev RPC key there: not in the repo's .data
    data_dir = Path(tempfile.gettempdir()) / "guahao-test-gateway"
    return create_app(
        Settings(amqp_url=amqp_url, data_dir=data_dir),
        rpc=rpc,
        routes=routes,
        auth_service=service,
        **options,
    )


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, broker: AbstractRobustConnection, auth_service: FakeAuthService
) -> Client:
    rpc = RpcClient(broker, default_timeout=3.0)
    return await aiohttp_client(
        isolated_app(auth_service.name, rpc, required_services=(auth_service.name,))
    )


async def test_request_travels_to_the_service_with_caller_and_request_id(
    client: Client, auth_service: FakeAuthService
) -> None:
    token = auth_service.signer.token("u_42")
    r = await client.post(
        "/api/v1/patients", json=PATIENT_BODY, headers={**bearer(token), "X-Request-ID": "e2e-1"}
    )
    assert r.status == 201, await r.text()
    assert await r.json() == {"id": "p_1", "name": "张三", "relation": "self"}
    assert r.headers["X-Request-ID"] == "e2e-1"
    [ctx] = auth_service.contexts
    assert ctx.request_id == "e2e-1"
    assert ctx.caller is not None and (ctx.caller.user_id, ctx.caller.role) == ("u_42", "patient")


async def test_domain_error_raised_by_the_service_reaches_the_client(
    client: Client, auth_service: FakeAuthService
) -> None:
    body = {**PATIENT_BODY, "name": "满员"}
    r = await client.post(
        "/api/v1/patients", json=body, headers=bearer(auth_service.signer.token())
    )
    assert r.status == 409
    assert (await r.json())["error"] == {
        "code": "LIMIT_REACHED",
        "message": LimitReached.default_message,
        "details": {"limit": 5},
    }


async def test_service_nobody_serves_is_503_at_once(
    aiohttp_client: AiohttpClient, broker: AbstractRobustConnection
) -> None:
    rpc = RpcClient(broker, default_timeout=5.0)
    client = await aiohttp_client(isolated_app(f"nobody_{uuid.uuid4().hex[:10]}", rpc))
    started = time.monotonic()
    r = await client.post("/api/v1/auth/wechat/login", json={"code": "c"})
    assert r.status == 503
    assert (await r.json())["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert time.monotonic() - started < 1.0


async def test_readyz_is_ready_when_every_required_service_answers(
    client: Client, auth_service: FakeAuthService
) -> None:
    r = await client.get("/readyz")
    assert r.status == 200
    assert await r.json() == {
        "status": "ready",
        "broker": "connected",
        "services": {auth_service.name: "ok"},
    }


async def test_readyz_is_503_when_a_required_service_does_not_answer(
    aiohttp_client: AiohttpClient, broker: AbstractRobustConnection, auth_service: FakeAuthService
) -> None:
    missing = f"nobody_{uuid.uuid4().hex[:10]}"
    rpc = RpcClient(broker, default_timeout=3.0)
    app = isolated_app(auth_service.name, rpc, required_services=(auth_service.name, missing))
    client = await aiohttp_client(app)
    started = time.monotonic()
    r = await client.get("/readyz")
    assert time.monotonic() - started < 1.5
    assert r.status == 503
    body = await r.json()
    assert body["status"] == "not_ready"
    assert body["services"] == {auth_service.name: "ok", missing: "no such service"}


async def test_gateway_connects_to_the_broker_itself(
    aiohttp_client: AiohttpClient, auth_service: FakeAuthService
) -> None:
    app = isolated_app(
        auth_service.name,
        required_services=(auth_service.name,),
        signing_keys=auth_service.signer.configured_keys(),
    )
    client = await aiohttp_client(app)
    r = await client.get("/readyz")
    assert r.status == 200, await r.text()


# --- broker outage ------------------------------------------------------------------------


class CuttableProxy:
    """A TCP proxy to RabbitMQ whose link can be cut and restored, simulating an outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@pytest.mark.slow
async def test_broker_outage_gives_fast_503_and_recovers_without_restart(
    aiohttp_client: AiohttpClient, auth_service: FakeAuthService
) -> None:
    proxy = CuttableProxy("127.0.0.1", 5672)
    await proxy.start()
    url = AMQP_URL.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    assert url != AMQP_URL, "outage test needs RabbitMQ on 127.0.0.1:5672"
    app = isolated_app(
        auth_service.name,
        amqp_url=url,
        required_services=(auth_service.name,),
        signing_keys=auth_service.signer.configured_keys(),
    )
    client = await aiohttp_client(app)
    token = bearer(auth_service.signer.token())
    first = await client.post("/api/v1/patients", json=PATIENT_BODY, headers=token)
    assert first.status == 201, await first.text()

    await proxy.cut()
    for _ in range(3):  # while reconnect attempts keep failing
        await asyncio.sleep(0.7)
        started = time.monotonic()
        r = await client.post("/api/v1/patients", json=PATIENT_BODY, headers=token)
        assert r.status == 503
        assert time.monotonic() - started < 1.0
    readiness = await client.get("/readyz")
    assert readiness.status == 503
    assert (await readiness.json())["broker"] == "disconnected"

    await proxy.start()
    deadline = time.monotonic() + 20
    status = 0
    while time.monotonic() < deadline and status != 201:
        await asyncio.sleep(0.5)
        with contextlib.suppress(Exception):
            status = (
                await client.post("/api/v1/patients", json=PATIENT_BODY, headers=token)
            ).status
    assert status == 201
    assert (await client.get("/readyz")).status == 200
    await proxy.cut()
