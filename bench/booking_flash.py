"""Flash crowd on one session: N patients, slot capacity C, K requests in flight.

Starts its own system (as `make run` does, in a temporary folder, with generous per-IP
limits) unless --gateway is given, prepares a hospital, a session and N logged-in patients
with a profile each (each accepted the booking-confirmed subscribe message once), then
fires the bookings through the gateway and reports throughput, latency and how long after
the crowd notify's last confirmation reached WeChat. In the same run it measures the floors
the end-to-end figure is read against:
  - a bare aio-pika direct-reply-to echo with the same number of calls in flight,
  - a bare guarded `find_one_and_update` (the capacity reservation) on the same store,
and prints attempts/s as a ratio of the echo's calls/s.

    python -m bench.booking_flash --patients 600 --capacity 100 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.floor import rpc_echo_floor, store_floor
from shared.devstack import DevStack
from shared.idcard import check_character
from shared.rules import HOSPITAL_TZ
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

    async def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, self.base + path, headers=headers, **kwargs
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def patient(self, n: int, template_id: str | None = None) -> tuple[str, str]:
        """A logged-in patient with a profile (who accepted one message of `template_id`)."""
        assert self.fake, "the benchmark needs the WeChat fake to log patients in"
        openid = f"bench_{uuid.uuid4().hex}"
        async with self.session.post(
            f"{self.fake}/__fake__/codes", json={"openid": openid}
        ) as resp:
            code = (await resp.json())["code"]
        _, login = await self.call("POST", "/auth/wechat/login", json={"code": code})
        token = login["access_token"]
        await self.call(
            "POST", "/me/consents", token, json={"kind": "patient_data", "version": "2026-12"}
        )
        status, profile = await self.call(
            "POST",
            "/patients",
            token,
            json={
                "name": "压测患者",
                "id_number": id_number(n),
                "phone": "13900000000",
                "relation": "self",
            },
        )
        assert status == 201, profile
        if template_id is None:
            return token, profile["id"]
        async with self.session.post(
            f"{self.fake}/__fake__/quota",
            json={"openid": openid, "template_id": template_id, "count": 1},
        ) as resp:
            assert resp.status == 200
        status, _ = await self.call(
            "POST", "/subscriptions", token, json={"results": {template_id: "accept"}}
        )
        assert status == 200
        return token, profile["id"]

    async def confirmations(self, template_id: str) -> int:
        """Booking confirmations WeChat (the fake) has received so far."""
        async with self.session.get(
            f"{self.fake}/__fake__/messages", params={"template_id": template_id}
        ) as resp:
            return len((await resp.json())["items"])


async def prepare(client: Client, capacity: int) -> str:
    _, login = await client.call(
        "POST", "/auth/staff/login", json={"username": ADMIN[0], "password": ADMIN[1]}
    )
    admin = login["access_token"]
    _, hospital = await client.call(
        "POST", "/admin/hospitals", admin, json={"name": f"压测医院{uuid.uuid4().hex[:4]}"}
    )
    hid = hospital["id"]
    _, dep = await client.call(
        "POST", f"/admin/hospitals/{hid}/departments", admin, json={"name": "全科"}
    )
    _, doctor = await client.call(
        "POST",
        f"/admin/hospitals/{hid}/doctors",
        admin,
        json={
            "name": "压测医生",
            "title": "主治医师",
            "department_id": dep["id"],
            "fee_cents": 1000,
            "published": True,
        },
    )
    tomorrow = (dt.datetime.now(HOSPITAL_TZ) + dt.timedelta(days=1)).date().isoformat()
    status, schedule = await client.call(
        "POST",
        f"/admin/hospitals/{hid}/doctors/{doctor['id']}/schedules",
        admin,
        json={
            "date": tomorrow,
            "session": "am",
            "slots": [{"start": "08:00", "end": "08:30", "capacity": capacity}],
        },
    )
    assert status == 201, schedule
    return str(schedule["slots"][0]["id"])


async def run(args: argparse.Namespace, base_env: dict[str, str] | None = None) -> dict[str, Any]:
    """One flash crowd; the system it starts gets `base_env` (default: this process's)."""
    stack: DevStack | None = None
    base, fake = args.gateway, args.wechat_fake
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    mongo_url = os.environ.get("MONGO_URL", "")
    if base is None:
        env = {
            **(os.environ if base_env is None else base_env),
            "GUAHAO_ADMIN_USERNAME": ADMIN[0],
            "GUAHAO_ADMIN_PASSWORD": ADMIN[1],
            "GUAHAO_DEMO": "0",
            "GUAHAO_RATE_LIMITS": "ip=1000000/s:1000000,login=1000000/min:1000000,"
            "refresh=1000000/min:1000000,"
            "wechat_login=1000000/s:1000000",
        }
        stack = DevStack(
            Path(tempfile.mkdtemp(prefix="guahao-bench-")),
            env=env,
            gateway_port=free_port(),
            log_dir=Path(tempfile.mkdtemp()),
        )
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
            _, templates = await client.call("GET", "/subscriptions/templates")
            confirmed = next(
                t["template_id"] for t in templates["items"] if t["kind"] == "booking_confirmed"
            )
            patients: list[tuple[str, str]] = []
            for start in range(0, args.patients, 50):
                patients += await asyncio.gather(
                    *(
                        client.patient(start + i, confirmed)
                        for i in range(min(50, args.patients - start))
                    )
                )
            await asyncio.sleep(2)  # the profiles' events reach booking's projection
            gate = asyncio.Semaphore(args.concurrency)
            latencies: list[float] = []
            outcomes: Counter[str] = Counter()

            async def attempt(token: str, patient_id: str) -> None:
                async with gate:
                    started = time.perf_counter()
                    status, body = await client.call(
                        "POST",
                        "/appointments",
                        token,
                        json={"slot_id": slot_id, "patient_id": patient_id},
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                    latencies.append(time.perf_counter() - started)
                    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                    outcomes[f"{status} {code or ''}".strip()] += 1

            started = time.perf_counter()
            await asyncio.gather(*(attempt(t, p) for t, p in patients))
            elapsed = time.perf_counter() - started
            crowd_over = time.perf_counter()
            sent = 0
            while time.perf_counter() - crowd_over < 30:
                sent = await client.confirmations(confirmed)
                if sent >= outcomes.get("201", 0):
                    break
                await asyncio.sleep(0.1)
            notify_lag = time.perf_counter() - crowd_over
        rpc = (
            await rpc_echo_floor(
                stack.env["AMQP_URL"] if stack else amqp_url,
                calls=args.floor_calls,
                concurrency=args.concurrency,
            )
            if args.floor_calls
            else None
        )  # 0: no floors
        store = await store_floor(mongo_url, 300) if mongo_url and args.floor_calls else None
    finally:
        if stack is not None:
            stack.stop()
    attempts_per_s = len(latencies) / elapsed
    report = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "params": {
            "patients": args.patients,
            "capacity": args.capacity,
            "concurrency": args.concurrency,
            "booking_processes": args.booking_processes,
        },
        "attempts_per_s": round(attempts_per_s, 1),
        "successes": outcomes.get("201", 0),
        "oversold": outcomes.get("201", 0) > args.capacity,
        "outcomes": dict(outcomes),
        "errors_5xx": sum(n for k, n in outcomes.items() if k.startswith("5")),
        "latency_ms": {
            q: round(percentile(latencies, v) * 1000, 1)
            for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "notify": {"confirmations_sent": sent, "last_sent_s_after_crowd": round(notify_lag, 2)},
        "floor_rpc_echo": rpc,
        "floor_guarded_update": store,
        "ratio_attempts_to_rpc_echo": round(attempts_per_s / rpc["calls_per_s"], 2)
        if rpc
        else None,
    }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.booking_flash")
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--booking-processes", type=int, default=1)
    parser.add_argument("--floor-calls", type=int, default=3000)
    parser.add_argument("--gateway", help="an already running gateway (else one is started)")
    parser.add_argument("--wechat-fake", help="its WeChat fake (needed to log patients in)")
    report = asyncio.run(run(parser.parse_args(argv)))
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
