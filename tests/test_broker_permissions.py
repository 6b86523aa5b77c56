"""Least privilege on the real RabbitMQ: the users of `deploy/rabbitmq/definitions.json`
(imported into a fresh vhost under prefixed names) can do their process kind's work and
nothing else, and a hospital user provisioned by `shared.broker_admin` receives only its own
hospital's events and can delete nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import ChannelAccessRefused, ChannelNotFoundEntity

from services.notify import catalogue
from shared import broker_admin
from shared.messaging.connection import connect_broker
from shared.messaging.events import EVENTS_EXCHANGE, EventPublisher, new_event
from shared.messaging.identity import RpcIdentity, RpcKeys, new_rpc_key
from shared.messaging.rpc import RpcClient, RpcServer

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
KINDS = ("operator", "gateway", "auth", "catalog", "booking", "notify", "payment")

pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl for the local broker"
)


@dataclass
class Deployment:
    vhost: str
    prefix: str
    password: str
    hospital_users: list[str] = field(default_factory=list)

    async def connect(self, kind: str) -> AbstractRobustConnection:
        """As the user of a process kind of the definitions file."""
        return await self.connect_as(self.prefix + kind)

    def url_of(self, user: str) -> str:
        return f"amqp://{user}:{self.password}@127.0.0.1:5672/{quote(self.vhost, safe='')}"

    async def connect_as(self, user: str) -> AbstractRobustConnection:
        return await connect_broker(self.url_of(user), name=f"test-{user}")


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    vhost = f"guahao_test_perm_{uuid.uuid4().hex[:8]}"
    prefix = f"t{uuid.uuid4().hex[:6]}_"
    definitions = broker_admin.retarget(
        broker_admin.load_definitions(DEFINITIONS), vhost=vhost, user_prefix=prefix
    )
    deployment = Deployment(vhost, prefix, secrets.token_urlsafe(12))
    try:
        broker_admin.import_definitions(
            broker_admin.with_passwords(
                definitions, {u["name"]: deployment.password for u in definitions["users"]}
            )
        )
        yield deployment
    finally:
        try:
            names = [
                line.split("\t")[0] for line in broker_admin.rabbitmqctl("list_users").splitlines()
            ]
            broker_admin.delete_users(
                [n for n in names if n.startswith(prefix) or n in deployment.hospital_users]
            )
        finally:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


async def refused(
    connection: AbstractRobustConnection, action: Callable[[AbstractChannel], Awaitable[Any]]
) -> bool:
    """Whether the broker refuses `action` (ACCESS_REFUSED closes the channel)."""
    channel = await connection.channel(publisher_confirms=True)
    try:
        await action(channel)
    except ChannelAccessRefused:
        return True
    await channel.close()
    return False


async def purge(channel: AbstractChannel, name: str) -> None:
    queue = await channel.declare_queue(name, passive=True)
    await queue.purge()


async def ignore(message: AbstractIncomingMessage) -> None:
    return None


async def publish_event(channel: AbstractChannel, routing_key: str) -> None:
    exchange = await channel.declare_exchange(EVENTS_EXCHANGE, passive=True)
    await exchange.publish(aio_pika.Message(b"{}"), routing_key=routing_key)


def test_definitions_grant_what_each_kind_needs_and_no_shovel_user() -> None:
    definitions = broker_admin.load_definitions(DEFINITIONS)
    users = {u["name"]: u for u in definitions["users"]}
    assert set(KINDS) | {"his_h_demo"} == set(users)
    assert [n for n, u in users.items() if "administrator" in u["tags"]] == ["operator"]
    assert all(u["password_hash"] == "" for u in users.values()), "passwords come from .env"
    example = [
        g
        for key in ("permissions", "topic_permissions")
        for g in definitions[key]
        if g["user"] == "his_h_demo"
    ]
    grants = broker_admin.hospital_grants("h_demo")
    assert example == grants["permissions"] + grants["topic_permissions"]
    exchanges = {e["name"]: e for e in definitions["exchanges"]}
    assert exchanges[EVENTS_EXCHANGE]["type"] == "topic" and exchanges[EVENTS_EXCHANGE]["durable"]


@pytest.mark.slow  # rabbitmqctl starts an Erlang VM per call: seconds each
async def test_each_process_kind_works_with_its_own_user_and_is_refused_the_rest(
    deployment: Deployment,
) -> None:
    keys = RpcKeys.parse(new_rpc_key())
    booking = await deployment.connect("booking")
    gateway = await deployment.connect("gateway")
    catalog = await deployment.connect("catalog")
    auth = await deployment.connect("auth")
    server = RpcServer("booking", booking, identity=RpcIdentity("booking", keys))
    try:
        # the work of each kind: booking serves rpc.booking and publishes its events,
        # the gateway calls it over direct reply-to
        await server.start()
        events = EventPublisher(booking)
        await events.start()
        await events.publish(new_event("appointment.booked", "h_1", {}))
        client = RpcClient(gateway, identity=RpcIdentity("gateway", keys))
        assert (await client.call("booking", "ping"))["service"] == "booking"

        async def consume_rpc_booking(channel: AbstractChannel) -> None:
            queue = await channel.declare_queue("rpc.booking", passive=True)
            await queue.consume(ignore)

        assert await refused(gateway, consume_rpc_booking)
        assert await refused(gateway, lambda ch: ch.declare_queue("rpc.gateway_own"))
        assert await refused(gateway, lambda ch: publish_event(ch, "appointment.booked.h_1"))
        assert await refused(gateway, lambda ch: ch.exchange_delete(EVENTS_EXCHANGE))
        # a service cannot take another's requests or publish another's event types
        assert await refused(catalog, consume_rpc_booking)
        assert await refused(catalog, lambda ch: ch.queue_delete("rpc.booking"))
        assert await refused(catalog, lambda ch: publish_event(ch, "appointment.cancelled.h_1"))
        assert not await refused(catalog, lambda ch: publish_event(ch, "doctor.updated.h_1"))
        assert await refused(booking, lambda ch: publish_event(ch, "doctor.updated.h_1"))
        assert await refused(auth, lambda ch: publish_event(ch, "appointment.booked.h_1"))
    finally:
        await server.drain(1)
        for connection in (booking, gateway, catalog, auth):
            await connection.close()


@pytest.mark.slow  # rabbitmqctl starts an Erlang VM per call: seconds each
async def test_a_hospital_user_receives_only_its_own_events_and_can_delete_nothing(
    deployment: Deployment,
) -> None:
    ours, theirs = f"h_{uuid.uuid4().hex[:10]}", f"h_{uuid.uuid4().hex[:10]}"
    deployment.hospital_users += [broker_admin.hospital_user(h) for h in (ours, theirs)]
    # the operator's provisioning command, run for real
    assert (
        broker_admin.main(
            ["add-hospital", ours, "--vhost", deployment.vhost, "--password", deployment.password]
        )
        == 0
    )
    their_user = broker_admin.hospital_user(theirs)
    broker_admin.import_definitions(
        {
            "users": [
                {
                    "name": their_user,
                    "tags": "",
                    "password_hash": broker_admin.password_hash(deployment.password),
                }
            ],
            **broker_admin.hospital_grants(theirs, deployment.vhost),
        }
    )
    his = await deployment.connect_as(broker_admin.hospital_user(ours))
    other = await deployment.connect_as(their_user)
    booking = await deployment.connect("booking")
    try:
        other_channel = await other.channel()
        await other_channel.declare_queue(f"his.{theirs}.events", durable=True)

        async def bind(channel: AbstractChannel, key: str) -> None:
            exchange = await channel.declare_exchange(EVENTS_EXCHANGE, passive=True)
            queue = await channel.declare_queue(f"his.{ours}.audit", durable=True)
            await queue.bind(exchange, routing_key=key)

        assert await refused(his, lambda ch: bind(ch, "#"))
        assert await refused(his, lambda ch: bind(ch, f"*.*.{theirs}"))
        assert await refused(his, lambda ch: bind(ch, "appointment.booked.*"))
        assert await refused(his, lambda ch: ch.exchange_delete(EVENTS_EXCHANGE))
        assert await refused(
            his,
            lambda ch: ch.declare_exchange(
                EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            ),
        )
        assert await refused(his, lambda ch: ch.queue_delete(f"his.{theirs}.events"))
        assert await refused(his, lambda ch: purge(ch, f"his.{theirs}.events"))
        assert await refused(his, lambda ch: ch.declare_queue(f"his.{theirs}.mine"))
        assert await refused(his, lambda ch: publish_event(ch, f"appointment.booked.{ours}"))
        assert await refused(
            his,
            lambda ch: ch.default_exchange.publish(
                aio_pika.Message(b"{}"), routing_key=f"his.{theirs}.events"
            ),
        )
        assert not await refused(his, lambda ch: bind(ch, f"*.*.{ours}"))

        # the README's consumer, run as is with the hospital's account
        handled: list[dict[str, Any]] = []
        readme: dict[str, Any] = {
            "already_handled": lambda message_id: False,
            "handle": handled.append,
            "remember": lambda message_id: None,
        }
        exec(catalogue.CONSUMER_SNIPPET.replace(catalogue.HOSPITAL_ID, ours), readme)
        consumer = asyncio.create_task(
            readme["consume"](deployment.url_of(broker_admin.hospital_user(ours)))
        )
        channel = await his.channel()
        async with asyncio.timeout(10):
            while True:  # consuming means declared and bound
                try:
                    probe = await channel.declare_queue(f"his.{ours}.events", passive=True)
                except ChannelNotFoundEntity:
                    channel = await his.channel()
                else:
                    if probe.declaration_result.consumer_count:
                        break
                await asyncio.sleep(0.1)

        events = EventPublisher(booking)
        for hid in (theirs, ours, theirs):
            await events.publish(new_event("appointment.booked", hid, {"n": hid}))
        queue = await channel.declare_queue(f"his.{ours}.audit", passive=True)
        received: list[str] = []
        async with asyncio.timeout(5):
            while not received:
                message = await queue.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                received.append(json.loads(message.body)["hospital_id"])
                await message.ack()
        await asyncio.sleep(0.3)
        assert await queue.get(fail=False) is None
        assert received == [ours]
        assert [event["hospital_id"] for event in handled] == [ours]
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        own = await other_channel.declare_queue(f"his.{theirs}.events", passive=True)
        assert own.declaration_result.message_count == 0  # theirs was never bound: dropped
    finally:
        for connection in (his, other, booking):
            await connection.close()


def test_add_hospital_prints_the_commands_for_an_operator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert broker_admin.main(["add-hospital", "h_42", "--password", "pw", "--print"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "rabbitmqctl add_user his_h_42 pw"
    assert "'^[^.]+\\.[^.]+\\.h_42$'" in lines[2]
    with pytest.raises(SystemExit):
        broker_admin.main(["add-hospital", "h.*", "--print"])


def test_compose_gives_each_process_kind_its_own_broker_user() -> None:
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for kind in ("gateway", "auth", "catalog", "booking", "notify", "payment"):
        url = services[kind]["environment"]["AMQP_URL"]
        assert url.startswith(f"amqp://{kind}:${{RABBITMQ_{kind.upper()}_PASSWORD:?"), kind
        assert (
            services[kind]["depends_on"]["broker-users"]["condition"]
            == "service_completed_successfully"
        )
    mounts = services["rabbitmq"]["volumes"]
    assert "./deploy/rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro" in mounts
    conf = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "definitions.local.path = /etc/rabbitmq/definitions.json" in conf
    script = (ROOT / "deploy" / "rabbitmq" / "set-passwords.sh").read_text()
    assert "for kind in " + " ".join(KINDS) + ";" in script
    for kind in KINDS:
        assert f"RABBITMQ_{kind.upper()}_PASSWORD" in services["broker-users"]["environment"]
