"""Fair release measured: a flash crowd at the release instant, first come vs lottery.

N patients; half ("early") tap within the first 0.5 s after release, half ("late") tap
5–9 s after it — all inside the lottery window (10 s). One slot of capacity C. Reports, per
mode, the share of early and late arrivals that got a number (fairness: equal shares), and
whether anything was oversold. First come hands everything to the early tappers (the bots);
the lottery should not.

    python -m bench.lottery_release --patients 200 --capacity 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.booking_flash import ADMIN, Client
from shared.devstack import DevStack
from shared.rules import HOSPITAL_TZ
from shared.storage.testing import free_port

WINDOW_DAYS = 7


async def hospital_with_session(
    client: Client, mode: str, capacity: int, release: dt.datetime
) -> str:
    _, login = await client.call(
        "POST", "/auth/staff/login", json={"username": ADMIN[0], "password": ADMIN[1]}
    )
    admin = login["access_token"]
    _, hospital = await client.call(
        "POST",
        "/admin/hospitals",
        admin,
        json={
            "name": f"放号医院{uuid.uuid4().hex[:4]}",
            "rules": {
                "window_days": WINDOW_DAYS,
                "release_time": release.strftime("%H:%M"),
                "release_mode": mode,
                "lottery_window_seconds": 10,
            },
        },
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
            "name": "放号医生",
            "title": "主任医师",
            "department_id": dep["id"],
            "fee_cents": 1000,
            "published": True,
        },
    )
    date = (release.date() + dt.timedelta(days=WINDOW_DAYS)).isoformat()
    status, schedule = await client.call(
        "POST",
        f"/admin/hospitals/{hid}/doctors/{doctor['id']}/schedules",
        admin,
        json={
            "date": date,
            "session": "am",
            "slots": [{"start": "08:00", "end": "08:30", "capacity": capacity}],
        },
    )
    assert status == 201, schedule
    return str(schedule["slots"][0]["id"])


async def crowd(
    client: Client, mode: str, patients: list[tuple[str, str]], capacity: int
) -> dict[str, Any]:
    now = dt.datetime.now(HOSPITAL_TZ)
    release = (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (release - now).total_seconds() < 15:
        release += dt.timedelta(minutes=1)
    slot = await hospital_with_session(client, mode, capacity, release)
    half = len(patients) // 2
    loop = asyncio.get_running_loop()
    start = loop.time() + (release - dt.datetime.now(HOSPITAL_TZ)).total_seconds()

    async def tap(i: int, token: str, pid: str) -> tuple[str, str, str]:
        offset = 0.05 + (i % 10) * 0.04 if i < half else 5 + 4 * (i - half) / half
        await asyncio.sleep(max(0.0, start + offset - loop.time()))
        _, body = await client.call(
            "POST",
            "/appointments",
            token,
            json={"slot_id": slot, "patient_id": pid},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        return (
            token,
            str(body.get("id", "")),
            str(body.get("status") or body.get("error", {}).get("code")),
        )

    taps = await asyncio.gather(*(tap(i, t, p) for i, (t, p) in enumerate(patients)))
    await asyncio.sleep(max(0.0, start + 13 - loop.time()))  # window closed, draw done
    final = []
    for token, aid, status in taps:
        if aid and status == "pending":
            for _ in range(50):
                _, body = await client.call("GET", f"/appointments/{aid}", token)
                status = body["status"]
                if status != "pending":
                    break
                await asyncio.sleep(0.2)
        final.append(status == "booked")
    early, late = final[:half], final[half:]
    return {
        "mode": mode,
        "successes": sum(final),
        "oversold": sum(final) > capacity,
        "early_share": round(sum(early) / len(early), 3),
        "late_share": round(sum(late) / len(late), 3),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = {
        **os.environ,
        "GUAHAO_ADMIN_USERNAME": ADMIN[0],
        "GUAHAO_ADMIN_PASSWORD": ADMIN[1],
        "GUAHAO_DEMO": "0",
        "GUAHAO_RATE_LIMITS": "ip=1000000/s:1000000,login=1000000/min:1000000,"
        "user=1000000/s:1000000,book=1000000/s:1000000,"
        "wechat_login=1000000/s:1000000",
    }
    stack = DevStack(
        Path(tempfile.mkdtemp(prefix="guahao-bench-")),
        env=env,
        gateway_port=free_port(),
        log_dir=Path(tempfile.mkdtemp()),
    )
    stack.start()
    try:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=500)
        ) as session:
            client = Client(session, stack.gateway_url, stack.wechat_url)
            results = []
            for offset, mode in enumerate(("first_come", "lottery")):
                patients: list[tuple[str, str]] = []
                for start in range(0, args.patients, 50):
                    patients += await asyncio.gather(
                        *(
                            client.patient(offset * 10_000 + start + i)
                            for i in range(min(50, args.patients - start))
                        )
                    )
                results.append(await crowd(client, mode, patients, args.capacity))
    finally:
        stack.stop()
    return {
        "params": {
            "patients": args.patients,
            "capacity": args.capacity,
            "early": "first 0.5 s",
            "late": "5–9 s after release",
            "lottery_window_s": 10,
        },
        "runs": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lottery_release")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--capacity", type=int, default=20)
    print(json.dumps(asyncio.run(run(parser.parse_args(argv))), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
