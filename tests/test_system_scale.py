"""Scale-out on one machine: 2 gateways, 3 booking and 2 notify processes against one broker
and one store."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from shared.devstack import DevStack
from shared.storage.testing import free_port
from tests.harness import Api
from tests.system_kit import make_hospital, make_schedule, patient

pytestmark = pytest.mark.slow

EXTRA = ("booking#2", "booking#3", "notify#2")


def handled(metrics_text: str, method: str) -> int:
    pattern = rf'guahao_rpc_handled_total{{method="{method}",outcome="[a-z_]+"}} (\d+)'
    return sum(int(n) for n in re.findall(pattern, metrics_text))


async def test_400_bookings_on_5_slots_over_2_gateways_and_3_booking_processes(
    api: Api, stack: DevStack, hospital_events: Any
) -> None:
    second_port = free_port()
    for name in EXTRA:
        stack.start_process(name)
    stack.start_process("gateway#2", GATEWAY_PORT=str(second_port))
    gateways = [stack.gateway_url, f"http://127.0.0.1:{second_port}"]
    try:
        await asyncio.sleep(3)  # the new processes connect and start consuming
        h = await make_hospital(api)
        await hospital_events.bind(h.id)
        schedule = await make_schedule(
            api, h, capacity=10, starts=("08:00", "08:30", "09:00", "09:30", "10:00"))
        slots = [s["id"] for s in schedule["slots"]]
        patients = []
        for batch in range(0, 400, 50):
            patients += await asyncio.gather(*(patient(api, 8000 + batch + i)
                                               for i in range(50)))
        async with aiohttp.ClientSession() as session:
            async def attempt(i: int, token: str, pid: str) -> tuple[int, str | None]:
                # as the mini-program does: a 503 (deadline passed on an overloaded 2-core
                # box) is retried with the same Idempotency-Key, so nothing is booked twice
                url = f"{gateways[i % 2]}/api/v1/appointments"
                for _ in range(5):
                    async with session.post(
                            url, json={"slot_id": slots[i % 5], "patient_id": pid},
                            headers={"Authorization": f"Bearer {token}",
                                     "Idempotency-Key": f"scale-{i}-{pid}"}) as r:
                        body = await r.json()
                        if r.status != 503:
                            return r.status, body.get("id")
                    await asyncio.sleep(0.5)
                return 503, None

            outcomes = await asyncio.gather(
                *(attempt(i, t, p) for i, (t, p) in enumerate(patients)))
            statuses = Counter(200 if s == 201 else s for s, _ in outcomes)
            assert statuses == {200: 50, 409: 350}, Counter(s for s, _ in outcomes)
            assert len({aid for s, aid in outcomes if s in (200, 201)}) == 50
            for name in ("booking", *[n for n in EXTRA if n.startswith("booking")]):
                async with session.get(f"{stack.ops_url(name)}/metrics") as resp:
                    assert handled(await resp.text(), "book") > 0, f"{name} handled none"
        booked: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(booked) < 50:
            for message in await hospital_events.collect(until=500, timeout=1):
                if message.type == "appointment.booked":
                    booked.add(json.loads(message.body)["id"])
        assert len(booked) == 50
        client: AsyncMongoClient[Any] = AsyncMongoClient(stack.env["MONGO_URL"])
        processed = client["guahao_notify"]["processed_events"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            keys = [f"evt.notify.{q}:{e}" for q in ("messages", "reminders", "webhooks")
                    for e in booked]
            done = {"_id": {"$in": keys}, "state": "done"}
            seen = Counter([doc["_id"].rsplit(":", 1)[0] async for doc in processed.find(done)])
            if seen == {"evt.notify.messages": 50, "evt.notify.reminders": 50,
                        "evt.notify.webhooks": 50}:
                break
            await asyncio.sleep(0.5)
        assert seen == {"evt.notify.messages": 50, "evt.notify.reminders": 50,
                        "evt.notify.webhooks": 50}
        await client.close()
    finally:
        for name in (*EXTRA, "gateway#2"):
            stack.stop_process(name)
