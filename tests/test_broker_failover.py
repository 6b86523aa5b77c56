"""Client failover across broker nodes, on the dev broker: two TCP proxies in front of it
stand for two nodes, and "killing a node" drops every connection through one proxy.
(The real three-node cluster is in test_system_cluster.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.context import CallContext
from shared.devstack import StackError, check_broker
from shared.errors import ServiceUnavailable
from shared.messaging.connection import FailoverConnection, broker_urls, connect_broker
from shared.messaging.consumer import EventConsumer
from shared.messaging.events import EventEnvelope, EventPublisher, new_event
from shared.messaging.rpc import RpcClient, RpcServer
from shared.settings import Settings
from shared.storage.testing import free_port
from tests.harness import amqp_url, create_vhost, delete_vhost


class Proxy:
    """A TCP relay to the dev broker that can be killed like a node (connections reset)."""

    def __init__(self, port: int) -> None:
        self.port = free_port()
        self.target = port
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def url(self, vhost: str) -> str:
        return amqp_url(vhost).replace(":5672/", f":{self.port}/")

    async def kill(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.links:
            writer.transport.abort()
        self.links.clear()


@pytest.fixture
def vhost() -> Iterator[str]:
    name = create_vhost()
    yield name
    delete_vhost(name)


@pytest.fixture
async def proxies() -> AsyncIterator[list[Proxy]]:
    started = [Proxy(5672), Proxy(5672)]
    for proxy in started:
        await proxy.start()
    yield started
    for proxy in started:
        with contextlib.suppress(Exception):
            await proxy.kill()


def test_amqp_urls_wins_over_amqp_url_and_is_split_on_commas() -> None:
    one = Settings.from_env({"AMQP_URL": "amqp://a:5672/"})
    assert one.broker_urls == ["amqp://a:5672/"] and not one.clustered
    many = Settings.from_env(
        {
            "AMQP_URL": "amqp://a:5672/",
            "AMQP_URLS": "amqp://b:5672/, amqp://c:5672/,,amqp://d:5672/",
        }
    )
    assert many.broker_urls == ["amqp://b:5672/", "amqp://c:5672/", "amqp://d:5672/"]
    assert many.clustered
    assert broker_urls("amqp://x/") == ["amqp://x/"]
    with pytest.raises(ValueError):
        broker_urls(" , ")


async def test_first_connect_skips_a_dead_node(vhost: str) -> None:
    dead = amqp_url(vhost).replace(":5672/", f":{free_port()}/")
    broker = await connect_broker([dead, amqp_url(vhost)], name="tests")
    try:
        assert isinstance(broker, FailoverConnection)
        assert broker.node == "127.0.0.1:5672"
    finally:
        await broker.close()


async def test_a_node_dies_calls_in_flight_fail_fast_and_both_sides_fail_over(
    vhost: str, proxies: list[Proxy]
) -> None:
    nodes = [p.url(vhost) for p in proxies]
    service = f"test{uuid.uuid4().hex[:8]}"
    server_side = await connect_broker(nodes, name="tests-server")
    client_side = await connect_broker(nodes, name="tests-client")
    released = asyncio.Event()

    async def slow(params: None, ctx: CallContext) -> str:
        await released.wait()
        return "late"

    async def echo(params: dict[str, Any], ctx: CallContext) -> str:
        return "here"

    server = RpcServer(service, server_side, replicated=True)
    server.add_method("slow", slow)
    server.add_method("echo", echo)
    try:
        await server.start()
        client = RpcClient(client_side, default_timeout=60)
        assert await client.call(service, "echo") == "here"
        assert isinstance(client_side, FailoverConnection)
        assert isinstance(server_side, FailoverConnection)
        assert client_side.node == f"127.0.0.1:{proxies[0].port}"

        in_flight = asyncio.create_task(client.call(service, "slow"))
        await asyncio.sleep(0.3)
        await proxies[0].kill()  # the node both connections are on
        # its reply could only come back on the lost connection: 503 now, not after 60 s
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(in_flight, 30)
        released.set()

        await asyncio.wait_for(_reconnected(client_side, server_side), 30)
        assert client_side.node == server_side.node == f"127.0.0.1:{proxies[1].port}"
        # the reply consumer came back on the client, the server consumes again
        assert await asyncio.wait_for(_call_until_served(client, service), 30) == "here"
    finally:
        await server.drain(1)
        await client_side.close()
        await server_side.close()


async def _reconnected(*connections: AbstractRobustConnection) -> None:
    for connection in connections:
        while not connection.connected.is_set():
            await asyncio.sleep(0.1)


async def _call_until_served(client: RpcClient, service: str) -> Any:
    while True:  # restoring channels and consumers follows the reconnect closely
        try:
            return await client.call(service, "echo", timeout=2)
        except ServiceUnavailable:
            await asyncio.sleep(0.2)


async def test_after_a_node_dies_events_are_published_and_consumed_through_the_other(
    vhost: str, proxies: list[Proxy]
) -> None:
    nodes = [p.url(vhost) for p in proxies]
    consuming = await connect_broker(nodes, name="tests-consumer")
    publishing = await connect_broker(nodes, name="tests-publisher")
    hospital = f"h{uuid.uuid4().hex[:8]}"
    heard: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        heard.append(event.id)

    consumer = EventConsumer(
        consuming,
        None,
        service="tests",
        purpose=f"f{hospital}",
        bindings=[f"*.*.{hospital}"],
        handler=handler,
    )
    try:
        await consumer.start()
        publisher = EventPublisher(publishing)
        before = new_event("appointment.booked", hospital, {})
        await publisher.publish(before)
        await asyncio.wait_for(_until(lambda: before.id in heard), 30)

        await proxies[0].kill()
        await asyncio.wait_for(_reconnected(consuming, publishing), 30)
        after = new_event("appointment.booked", hospital, {})
        await asyncio.wait_for(_publish_until_confirmed(publisher, after), 30)
        # the consumer consumes again on the other node (its quorum queue kept the binding)
        await asyncio.wait_for(_until(lambda: after.id in heard), 30)
        # at least once: an ack cut by the kill is redelivered (ProcessedEvents dedupes)
        assert set(heard) == {before.id, after.id}
    finally:
        await consumer.drain(1)
        await publishing.close()
        await consuming.close()


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.05)


async def _publish_until_confirmed(publisher: EventPublisher, event: EventEnvelope) -> None:
    while True:  # as the outbox relay does: an unconfirmed publish is published again
        try:
            await publisher.publish(event)
            return
        except Exception:
            await asyncio.sleep(0.2)


def test_the_dev_stack_needs_one_reachable_node_of_the_list() -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    check_broker(f"{dead},amqp://guest:guest@127.0.0.1:5672/")
    with pytest.raises(StackError) as refused:
        check_broker(f"{dead}, {dead.replace('127.0.0.1', '127.0.0.2')}")
    assert str(refused.value).count("127.0.0.") == 2


async def test_on_a_cluster_no_reply_goes_to_a_caller_whose_node_is_down(vhost: str) -> None:
    # RabbitMQ 3.10 crashes the replying channel (and connection) on a reply-to address of
    # a node that is down; such a caller's call failed fast already, so no reply is sent
    broker = await connect_broker(amqp_url(vhost), name="tests")
    try:
        clustered = RpcServer("x", broker, replicated=True)
        single = RpcServer("x", broker)
        dead = f"127.0.0.1:{free_port()}"
        assert await clustered._caller_node_up("127.0.0.1:5672")
        assert not await clustered._caller_node_up(dead)
        assert await clustered._caller_node_up(None)  # a caller that names no node
        assert await single._caller_node_up(dead)  # one node: nothing to check
    finally:
        await broker.close()


async def test_on_a_cluster_an_rpc_channel_that_gets_no_reply_is_replaced(vhost: str) -> None:
    # two names of the dev broker stand for two nodes: the client is "clustered"
    nodes = [amqp_url(vhost), amqp_url(vhost).replace("127.0.0.1", "localhost")]
    broker = await connect_broker(nodes, name="tests")
    service = f"test{uuid.uuid4().hex[:8]}"
    released = asyncio.Event()

    async def silent(params: None, ctx: CallContext) -> str:
        await released.wait()  # a server that never answers in time
        return "late"

    server = RpcServer(service, broker)
    server.add_method("silent", silent)
    try:
        await server.start()
        client = RpcClient(broker, default_timeout=10)
        waiting = asyncio.create_task(client.call(service, "silent"))
        await asyncio.sleep(0.2)
        first = client._channel
        with pytest.raises(ServiceUnavailable):
            await client.call(service, "silent", timeout=0.5)
        assert client._channel is None  # the next call opens a new one
        with pytest.raises(ServiceUnavailable):  # its reply could only come on the old one
            await asyncio.wait_for(waiting, 5)
        released.set()
        await client.start()
        assert client._channel is not None and client._channel is not first
    finally:
        released.set()
        await server.drain(1)
        await broker.close()
