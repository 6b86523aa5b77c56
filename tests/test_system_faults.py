"""Faults while load runs: SIGTERM of a booking replica, the store restarting, the broker
restarting. Nothing accepted fails, nothing committed loses its event, nothing hangs."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.devstack import DevStack
from tests.harness import Api
from tests.system_kit import book, make_hospital, make_schedule, patient

pytestmark = pytest.mark.slow


async def booked_ids(stack: DevStack, hospital_id: str) -> set[str]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(stack.env["MONGO_URL"])
    ids = {
        d["_id"]
        async for d in client["guahao_booking"]["appointments"].find(
            {"hospital_id": hospital_id, "status": "booked"}
        )
    }
    await client.close()
    return ids


async def events_for(hospital_events: Any, wanted: set[str], timeout: float = 40) -> set[str]:
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not wanted <= seen:
        for message in await hospital_events.collect(until=500, timeout=1):
            if message.type == "appointment.booked":
                seen.add(json.loads(message.body)["data"]["appointment"]["id"])
    return seen


async def test_sigterm_of_a_booking_replica_under_load_fails_nothing(
    api: Api, stack: DevStack
) -> None:
    stack.start_process("booking#2")
    h = await make_hospital(api)
    schedule = await make_schedule(api, h, capacity=40, starts=("08:00", "08:30"))
    slots = [s["id"] for s in schedule["slots"]]
    patients = await asyncio.gather(*(patient(api, 4000 + i) for i in range(60)))
    burst = asyncio.gather(*(book(api, t, slots[i % 2], p) for i, (t, p) in enumerate(patients)))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await asyncio.to_thread(stack.stop_process, "booking", timeout=30)
    stopped_in = time.monotonic() - started
    results = await burst
    stack.start_process("booking")
    assert stopped_in < 25
    assert Counter(r.status for r in results) == {201: 60}, Counter(
        (r.status, r.error_code) for r in results
    )
    stack.stop_process("booking#2")


async def test_store_restart_gives_fast_503_then_recovers_without_restarts(
    api: Api, stack: DevStack, hospital_events: Any
) -> None:
    h = await make_hospital(api)
    await hospital_events.bind(h.id)
    schedule = await make_schedule(api, h, capacity=50)
    slot = schedule["slots"][0]["id"]
    patients = await asyncio.gather(*(patient(api, 5000 + i) for i in range(30)))
    before = await asyncio.gather(*(book(api, t, slot, p) for t, p in patients[:10]))
    assert {r.status for r in before} == {201}
    await asyncio.to_thread(stack.kill_process, "mongo")
    try:
        started = time.monotonic()
        down = await book(api, patients[10][0], slot, patients[10][1])
        assert down.status == 503 and time.monotonic() - started < 5.5
    finally:
        await asyncio.to_thread(stack.restart_store)
    deadline = time.monotonic() + 30
    after = []
    for t, p in patients[11:]:
        while True:
            resp = await book(api, t, slot, p)
            if resp.status != 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        after.append(resp)
    assert {r.status for r in after} == {201}, Counter((r.status, r.error_code) for r in after)
    assert all(proc.poll() is None for proc in stack.procs.values())
    wanted = await booked_ids(stack, h.id)
    assert wanted <= await events_for(hospital_events, wanted)
