"""Beyond one broker: the whole system on a three-node RabbitMQ cluster (tests/rabbit_cluster.py)
while a node is killed (`kill -9` of its Erlang VM) or stopped gracefully in the middle of a
flash crowd. Every process lists the three nodes (AMQP_URLS) and prefers the first, so the
first node holds every connection and leads every queue: killing it is the worst case."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from shared.devstack import DevStack
from tests.harness import Api, start_stack
from tests.rabbit_cluster import RabbitCluster, available
from tests.system_kit import (
    Booking,
    flash_crowd,
    hospital_events_queue,
    make_hospital,
    make_schedule,
    patient,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None, reason=str(available())),
]

BOOKING_REPLICAS = ("booking#2", "booking#3")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    # in a temporary folder of its own: pytest's are closed to the rabbitmq user
    with RabbitCluster.start() as started:
        yield started


@pytest.fixture(scope="module")
def cluster_stack(
    cluster: RabbitCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevStack]:
    stack, _ = start_stack(Path(tmp_path_factory.mktemp("system")), amqp_urls=cluster.urls)
    try:
        for name in BOOKING_REPLICAS:
            stack.start_process(name)
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def capi(cluster_stack: DevStack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Api(cluster_stack, session)


@pytest.fixture
async def his(cluster_stack: DevStack) -> AsyncIterator[Any]:
    async for events in hospital_events_queue(cluster_stack):
        yield events


def leaders(cluster: RabbitCluster) -> dict[str, int]:
    """Queue name → index of the node leading it, for the quorum queues of the system."""
    node_index = {n.name: i for i, n in enumerate(cluster.nodes)}
    for i in cluster.running():
        done = cluster.ctl(
            i, "list_queues", "name", "type", "leader", "--no-table-headers", check=False
        )
        if done.returncode == 0:
            return {
                parts[0]: node_index[parts[2]]
                for line in done.stdout.splitlines()
                if len(parts := line.split()) == 3
                and parts[1] == "quorum"
                and parts[2] in node_index
            }
    return {}


async def until_serving(api: Api, token: str, since: float, timeout: float = 120) -> float:
    """Seconds from `since` until a booking-backed read answers 200 again."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            resp = await api.request("GET", "/appointments", token=token)
            if resp.status == 200:
                return time.monotonic() - since
            last = (resp.status, resp.body)
        except aiohttp.ClientError as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"the system did not serve again: {last}\n{log_tails(api.stack)}")


def log_tails(stack: DevStack, lines: int = 40) -> str:
    assert stack.log_dir is not None
    return "\n".join(
        f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        for path in sorted(stack.log_dir.glob("*.log"))
        if path.stem != "wechat-fake"
    )


def check_outcomes(bookings: list[Booking], capacity: int) -> dict[str, Any]:
    """Exactly `capacity` booked, the rest refused; no 5xx but 503s, each retried (same key)
    until answered. Returns figures to print."""
    finals = Counter(200 if b.status == 201 else b.status for b in bookings)
    assert finals == {200: capacity, 409: len(bookings) - capacity}, Counter(
        (t.status, t.code) for b in bookings for t in b.tries
    )
    ids = {b.appointment_id for b in bookings if b.appointment_id}
    assert len(ids) == capacity
    tries = [t for b in bookings for t in b.tries]
    assert {t.status for t in tries if t.status >= 500} <= {503}, Counter(t.status for t in tries)
    unavailable = [t for t in tries if t.status == 503]
    return {
        "attempts_503": len(unavailable),
        "patients_who_retried": sum(1 for b in bookings if len(b.tries) > 1),
        "slowest_503_s": round(max((t.ended - t.started for t in unavailable), default=0), 2),
    }


async def delivered_once(stack: DevStack, his: Any, ids: set[str]) -> dict[str, int]:
    """Every booking's `appointment.booked` reached the hospital's queue (deduplicated by
    event id: at-least-once delivery) and was handled by notify exactly once."""
    booked: dict[str, str] = {}  # event id → appointment id
    copies = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(booked) < len(ids):
        for message in await his.collect(until=1000, timeout=1):
            if message.type == "appointment.booked":
                event = json.loads(message.body)
                copies += 1
                booked[event["id"]] = event["data"]["appointment"]["id"]
    assert sorted(booked.values()) == sorted(ids)  # one event per booking, none missing
    client: AsyncMongoClient[Any] = AsyncMongoClient(stack.env["MONGO_URL"])
    try:
        notify = client["guahao_notify"]
        deadline = time.monotonic() + 60
        while True:
            reminders = await notify.reminders.count_documents({"_id": {"$in": sorted(ids)}})
            messages = await notify.messages.count_documents(
                {"_id": {"$in": [f"{e}:booking_confirmed" for e in booked]}}
            )
            if (reminders, messages) == (len(ids), len(ids)) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert (reminders, messages) == (len(ids), len(ids))
    finally:
        await client.close()
    return {"events": len(booked), "copies_received": copies}


async def crowd_of(api: Api, n: int, first: int) -> list[tuple[str, str]]:
    patients: list[tuple[str, str]] = []
    for batch in range(0, n, 50):
        patients += await asyncio.gather(
            *(patient(api, first + batch + i) for i in range(min(50, n - batch)))
        )
    return patients


async def test_flash_crowd_survives_the_kill_of_the_node_leading_the_queues(
    cluster: RabbitCluster, cluster_stack: DevStack, capi: Api, his: Any
) -> None:
    await asyncio.sleep(2)  # the booking replicas connect and consume
    victim = cluster.leader("rpc.booking")
    led = sorted(q for q, i in leaders(cluster).items() if i == victim)
    assert any(q.startswith("evt.") for q in led), led
    h = await make_hospital(capi)
    await his.bind(h.id)
    schedule = await make_schedule(capi, h, capacity=50)
    slot = schedule["slots"][0]["id"]
    patients = await crowd_of(capi, 300, 20000)
    await asyncio.sleep(2)  # the profiles' events reach booking's projection

    twenty_booked = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        crowd = asyncio.create_task(
            flash_crowd(
                session,
                [cluster_stack.gateway_url],
                [slot],
                patients,
                key_prefix="chaos",
                concurrency=32,
                attempts=240,
                on_booked=lambda n: twenty_booked.set() if n >= 20 else None,
            )
        )
        await asyncio.wait_for(twenty_booked.wait(), 120)
        await asyncio.to_thread(cluster.kill, victim)
        killed_at = time.monotonic()
        recovered = await until_serving(capi, patients[0][0], killed_at)
        bookings = await asyncio.wait_for(crowd, 300)
    await asyncio.to_thread(cluster.restart, victim)

    figures = check_outcomes(bookings, 50)
    figures.update(
        await delivered_once(
            cluster_stack, his, {b.appointment_id for b in bookings if b.appointment_id}
        )
    )
    print(
        f"\nkilled {cluster.nodes[victim].name} (leading {len(led)} queues: rpc.booking "
        f"and {sum(q.startswith('evt.') for q in led)} event queues); serving again "
        f"{recovered:.2f} s after the kill; {figures}"
    )


async def test_a_minority_node_stopped_gracefully_and_back_loses_nothing(
    cluster: RabbitCluster, cluster_stack: DevStack, capi: Api, his: Any
) -> None:
    for i in range(len(cluster.nodes)):  # the previous test may have left one restarting
        cluster.wait_running(i)
    victim = (cluster.leader("rpc.booking") + 1) % 3
    h = await make_hospital(capi)
    await his.bind(h.id)
    schedule = await make_schedule(capi, h, capacity=20)
    slot = schedule["slots"][0]["id"]
    patients = await crowd_of(capi, 100, 30000)
    await asyncio.sleep(2)

    ten_booked = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        crowd = asyncio.create_task(
            flash_crowd(
                session,
                [cluster_stack.gateway_url],
                [slot],
                patients,
                key_prefix="minority",
                concurrency=16,
                attempts=240,
                on_booked=lambda n: ten_booked.set() if n >= 10 else None,
            )
        )
        await asyncio.wait_for(ten_booked.wait(), 120)
        await asyncio.to_thread(cluster.stop_app, victim)
        stopped_at = time.monotonic()
        serving = await until_serving(capi, patients[0][0], stopped_at)
        bookings = await asyncio.wait_for(crowd, 300)
    await asyncio.to_thread(cluster.start_app, victim)

    figures = check_outcomes(bookings, 20)
    figures.update(
        await delivered_once(
            cluster_stack, his, {b.appointment_id for b in bookings if b.appointment_id}
        )
    )
    # the node came back as a follower of everything; rebalancing hands it leaders again
    await asyncio.to_thread(cluster.rebalance)
    spread = Counter(leaders(cluster).values())
    assert spread[victim] > 0, spread
    print(
        f"\nstopped {cluster.nodes[victim].name}; serving {serving:.2f} s after; "
        f"leaders after rebalance by node: {dict(spread)}; {figures}"
    )
