"""The broker restarting under the system: fast 503s while it is down, no process restarted,
nothing committed lost.

These tests stop a RabbitMQ node, so they run the system on a node of their own (a
one-node `RabbitCluster`): the machine's broker — the session stack's, a developer's
`make run`, another test run's — is never stopped. Here `stack` (and with it `api` and
`hospital_events`) is overridden by a stack on that node.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from shared.devstack import DevStack
from tests.harness import Api, start_stack
from tests.rabbit_cluster import RabbitCluster, available
from tests.system_kit import book, make_hospital, make_schedule, patient
from tests.test_system_faults import booked_ids, events_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_broker() -> Iterator[RabbitCluster]:
    reason = available()
    if reason:
        pytest.skip(reason)
    with RabbitCluster.start(size=1) as node:
        yield node


@pytest.fixture(scope="module")
def stack(
    own_broker: RabbitCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevStack]:
    started, _ = start_stack(tmp_path_factory.mktemp("own-broker"), amqp_urls=own_broker.urls)
    try:
        yield started
    finally:
        started.stop()


async def test_broker_restart_needs_no_process_restart(
    api: Api, stack: DevStack, own_broker: RabbitCluster
) -> None:
    assert (await api.request("GET", "/me", token=await api.patient_token())).status == 200
    await asyncio.to_thread(own_broker.stop_app, 0)
    try:
        down = await api.request("POST", "/auth/wechat/login", json={"code": "whatever"})
        assert down.status == 503
    finally:
        await asyncio.to_thread(own_broker.start_app, 0)
    deadline = time.monotonic() + 40
    status = 0
    while time.monotonic() < deadline:
        resp = await api.request(
            "POST", "/auth/wechat/login", json={"code": await api.login_code()}
        )
        status = resp.status
        if status == 200:
            break
        await asyncio.sleep(0.5)
    assert status == 200
    pids = {name: proc.pid for name, proc in stack.procs.items()}
    assert all(proc.poll() is None for proc in stack.procs.values()), pids


async def test_broker_restart_under_load_loses_no_committed_event(
    api: Api, stack: DevStack, hospital_events: Any, own_broker: RabbitCluster
) -> None:
    h = await make_hospital(api)
    await hospital_events.bind(h.id)
    schedule = await make_schedule(api, h, capacity=100)
    slot = schedule["slots"][0]["id"]
    patients = await asyncio.gather(*(patient(api, 6000 + i) for i in range(40)))

    async def keep_booking() -> list[Any]:
        results = []
        for t, p in patients:
            results.append(await book(api, t, slot, p))
            await asyncio.sleep(0.05)
        return results

    load = asyncio.create_task(keep_booking())
    await asyncio.sleep(0.3)
    await asyncio.to_thread(own_broker.stop_app, 0)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(own_broker.start_app, 0)
    results = await load
    assert all(r.status in (201, 503) for r in results), Counter(r.status for r in results)
    assert all(proc.poll() is None for proc in stack.procs.values())
    # afterwards everything works without restarting anything
    deadline = time.monotonic() + 40
    retry = None
    while time.monotonic() < deadline:
        try:
            token, pid = await patient(api, 6100)  # asserts its own calls succeed
            retry = await book(api, token, slot, pid)
        except AssertionError:
            retry = None  # the processes are still reconnecting: a fast 503, try again
        if retry is not None and retry.status == 201:
            break
        await asyncio.sleep(1)
    assert retry is not None and retry.status == 201
    wanted = await booked_ids(stack, h.id)
    assert len(wanted) >= sum(r.status == 201 for r in results)
    assert wanted <= await events_for(hospital_events, wanted)
