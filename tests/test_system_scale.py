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
from tests.system_kit import flash_crowd, make_hospital, make_schedule, patient

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
            api, h, capacity=10, starts=("08:00", "08:30", "09:00", "09:30", "10:00")
        )
        slots = [s["id"] for s in schedule["slots"]]
        patients = []
        for batch in range(0, 400, 50):
            patients += await asyncio.gather(*(patient(api, 8000 + batch + i) for i in range(50)))
        async with aiohttp.ClientSession() as session:
            bookings = await flash_crowd(session, gateways, slots, patients, key_prefix="scale")
            statuses = Counter(200 if b.status == 201 else b.status for b in bookings)
            assert statuses == {200: 50, 409: 350}, Counter(b.status for b in bookings)
            assert len({b.appointment_id for b in bookings if b.appointment_id}) == 50
            for name in ("booking", *[n for n in EXTRA if n.startswith("booking")]):
                async with session.get(f"{stack.ops_url(name)}/metrics") as resp:
                    assert handled(await resp.text(), "book") > 0, f"{name} handled none"
        booked: dict[str, str] = {}  # event id → appointment id
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(booked) < 50:
            for message in await hospital_events.collect(until=500, timeout=1):
                if message.type == "appointment.booked":
                    event = json.loads(message.body)
                    booked[event["id"]] = event["data"]["appointment"]["id"]
        assert len(booked) == 50
        # each event was handled by one notify process: one reminder per appointment, one
        # decision per message (the two notify processes compete on one queue)
        client: AsyncMongoClient[Any] = AsyncMongoClient(stack.env["MONGO_URL"])
        notify_db = client["guahao_notify"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reminders = await notify_db.reminders.count_documents(
                {"_id": {"$in": list(booked.values())}}
            )
            messages = await notify_db.messages.count_documents(
                {"_id": {"$in": [f"{e}:booking_confirmed" for e in booked]}}
            )
            if (reminders, messages) == (50, 50):
                break
            await asyncio.sleep(0.5)
        assert (reminders, messages) == (50, 50)
        await client.close()
    finally:
        for name in (*EXTRA, "gateway#2"):
            stack.stop_process(name)
