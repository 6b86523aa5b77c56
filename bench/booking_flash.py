"""Flash crowd on one session: N patients, slot capacity C, K requests in flight.

Starts its own system (as `make run` does, in a temporary folder) unless --gateway is given,
prepares a hospital, a session and N logged-in patients with a profile each, then fires the
bookings through the gateway and reports throughput and latency. In the same run it
measures the floors the end-to-end figure is built on:
  - a bare RPC round trip through RabbitMQ (`booking.ping`),
  - a bare guarded `find_one_and_update` (the capacity reservation) on the same store,
and prints the ratio of each floor to the end-to-end latency.

    python -m bench.booking_flash --patients 400 --capacity 50 --concurrency 50
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from shared.devstack import DevStack
from shared.idcard import check_character
from shared.messaging.connection import connect_broker
from shared.messaging.identity import RpcIdentity
from shared.messaging.rpc import RpcClient
from shared.rules import HOSPITAL_TZ
from shared.settings import Settings
from shared.storage.testing import free_port

ADMIN = ("bench_admin", "bench-admin-password")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def id_number(n: int) -> str:
    first17 = f"3201021990{n % 12 + 1:02d}{n % 28 + 1:02d}{n % 1000:03d}"
    return first17 + check_character(first17)


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, fake: str | None) -> None:
        self.session, self.base, self.fake = session, base.rstrip("/") + "/api/v1", fake

    async def call(self, method: str, path: str, token: str | None = None,
                   **kwargs: Any) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + path, headers=headers,
                                        **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def patient(self, n: int) -> tuple[str, str]:
        assert self.fake, "the benchmark needs the WeChat fake to log patients in"
        async with self.session.post(f"{self.fake}/__fake__/codes",
                                     json={"openid": f"bench_{uuid.uuid4().hex}"}) as resp:
            code = (await resp.json())["code"]
        _, login = await self.call("POST", "/auth/wechat/login", json={"code": code})
        token = login["access_token"]
        status, profile = await self.call("POST", "/patients", token, json={
            "name": "压测患者", "id_number": id_number(n), "phone": "13900000000",
            "relation": "self"})
        assert status == 201, profile
        return token, profile["id"]


async def prepare(client: Client, capacity: int) -> str:
    _, login = await client.call("POST", "/auth/staff/login",
                                 json={"username": ADMIN[0], "password": ADMIN[1]})
    admin = login["access_token"]
    _, hospital = await client.call("POST", "/admin/hospitals", admin,
                                    json={"name": f"压测医院{uuid.uuid4().hex[:4]}"})
    hid = hospital["id"]
    _, dep = await client.call("POST", f"/admin/hospitals/{hid}/departments", admin,
                               json={"name": "全科"})
    _, doctor = await client.call("POST", f"/admin/hospitals/{hid}/doctors", admin, json={
        "name": "压测医生", "title": "主治医师", "department_id": dep["id"], "fee_cents": 1000,
        "published": True})
    tomorrow = (dt.datetime.now(HOSPITAL_TZ) + dt.timedelta(days=1)).date().isoformat()
    status, schedule = await client.call(
        "POST", f"/admin/hospitals/{hid}/doctors/{doctor['id']}/schedules", admin,
        json={"date": tomorrow, "session": "am",
              "slots": [{"start": "08:00", "end": "08:30", "capacity": capacity}]})
    assert status == 201, schedule
    return str(schedule["slots"][0]["id"])


async def rpc_floor(settings: Settings, rounds: int) -> list[float]:
    connection = await connect_broker(settings.amqp_url, name="bench")
    rpc = RpcClient(connection, identity=RpcIdentity.from_settings("bench", settings))
    await rpc.call("booking", "ping")
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await rpc.call("booking", "ping")
        samples.append(time.perf_counter() - started)
    await connection.close()
    return samples


async def store_floor(mongo_url: str, rounds: int) -> list[float]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    collection = client["guahao_bench"]["slots"]
    await collection.delete_many({})
    await collection.insert_one({"_id": "s", "capacity": rounds + 1, "booked": 0, "holders": [],
                                 "stopped": False})
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        await collection.find_one_and_update(
            {"_id": "s", "stopped": False, "holders": {"$nin": [f"a{i}"]},
             "$expr": {"$lt": ["$booked", "$capacity"]}},
            {"$push": {"holders": f"a{i}"}, "$inc": {"booked": 1}})
        samples.append(time.perf_counter() - started)
    await client.drop_database("guahao_bench")
    await client.close()
    return samples


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack: DevStack | None = None
    base, fake = args.gateway, args.wechat_fake
    mongo_url = os.environ.get("MONGO_URL", "")
    if base is None:
        env = {**os.environ, "GUAHAO_ADMIN_USERNAME": ADMIN[0],
               "GUAHAO_ADMIN_PASSWORD": ADMIN[1], "GUAHAO_DEMO": "0",
               "GUAHAO_RATE_LIMITS": "ip=1000000/s:1000000,login=1000000/min:1000000,"
                                     "user=1000000/s:1000000,book=1000000/s:1000000"}
        stack = DevStack(Path(tempfile.mkdtemp(prefix="guahao-bench-")), env=env,
                         gateway_port=free_port(), log_dir=Path(tempfile.mkdtemp()))
        for extra in range(1, args.booking_processes):
            stack.services = (*stack.services, f"booking#{extra + 1}")
        stack.start()
        base, fake = stack.gateway_url, stack.wechat_url
        mongo_url = stack.env["MONGO_URL"]
    try:
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=args.concurrency + 10)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            client = Client(session, base, fake)
            slot_id = await prepare(client, args.capacity)
            patients: list[tuple[str, str]] = []
            for start in range(0, args.patients, 50):
                patients += await asyncio.gather(*(client.patient(start + i) for i in
                                                   range(min(50, args.patients - start))))
            gate = asyncio.Semaphore(args.concurrency)
            latencies: list[float] = []
            outcomes: Counter[str] = Counter()

            async def attempt(token: str, patient_id: str) -> None:
                async with gate:
                    started = time.perf_counter()
                    status, body = await client.call(
                        "POST", "/appointments", token,
                        json={"slot_id": slot_id, "patient_id": patient_id},
                        headers={"Idempotency-Key": uuid.uuid4().hex})
                    latencies.append(time.perf_counter() - started)
                    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                    outcomes[f"{status} {code or ''}".strip()] += 1

            started = time.perf_counter()
            await asyncio.gather(*(attempt(t, p) for t, p in patients))
            elapsed = time.perf_counter() - started
        rpc = await rpc_floor(Settings.from_env(stack.env if stack else None),
                              args.floor_rounds)
        store = await store_floor(mongo_url, args.floor_rounds) if mongo_url else []
    finally:
        if stack is not None:
            stack.stop()
    p50 = statistics.median(latencies)
    report = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "params": {"patients": args.patients, "capacity": args.capacity,
                   "concurrency": args.concurrency, "booking_processes": args.booking_processes},
        "attempts_per_s": round(len(latencies) / elapsed, 1),
        "successes": outcomes.get("201", 0),
        "oversold": outcomes.get("201", 0) > args.capacity,
        "outcomes": dict(outcomes),
        "errors_5xx": sum(n for k, n in outcomes.items() if k.startswith("5")),
        "latency_ms": {q: round(percentile(latencies, v) * 1000, 1)
                       for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "floor_rpc_round_trip_ms_p50": round(statistics.median(rpc) * 1000, 2),
        "floor_guarded_update_ms_p50": round(statistics.median(store) * 1000, 2) if store
        else None,
    }
    report["ratio_e2e_p50_to_rpc_floor"] = round(p50 / statistics.median(rpc), 1)
    if store:
        report["ratio_e2e_p50_to_store_floor"] = round(p50 / statistics.median(store), 1)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.booking_flash")
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--booking-processes", type=int, default=1)
    parser.add_argument("--floor-rounds", type=int, default=300)
    parser.add_argument("--gateway", help="an already running gateway (else one is started)")
    parser.add_argument("--wechat-fake", help="its WeChat fake (needed to log patients in)")
    report = asyncio.run(run(parser.parse_args(argv)))
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
