"""What an idle `make run` costs: CPU of every process it starts (the embedded store, the
WeChat fake, the services, the gateway) over a quiet minute, with an empty store and again
with 100 000 appointments in it (background jobs must stay flat as data grows).

    python -m bench.idle_cpu --seconds 60 --appointments 100000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from shared.devstack import DevStack
from shared.storage.testing import free_port

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(stack: DevStack, seconds: float) -> dict[str, Any]:
    pids = {name: proc.pid for name, proc in stack.procs.items()}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    total = sum(used.values())
    return {
        "percent_of_one_core": round(100 * total / seconds, 2),
        "per_process_percent": {n: round(100 * u / seconds, 2) for n, u in used.items()},
    }


async def fill(mongo_url: str, appointments: int) -> None:
    """Appointments as booking stores them: mostly history, some upcoming."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, tz_aware=True)
    collection = client["guahao_booking"]["appointments"]
    now = dt.datetime.now(dt.UTC)
    statuses = ["completed", "cancelled", "no_show", "completed", "booked"]
    batch: list[dict[str, Any]] = []
    for n in range(appointments):
        day = (now - dt.timedelta(days=n % 300 - 7)).date().isoformat()
        status = statuses[n % len(statuses)] if day < now.date().isoformat() else "booked"
        batch.append(
            {
                "_id": f"apt_{uuid.uuid4().hex[:24]}",
                "status": status,
                "user_id": f"u_{n % 9000}",
                "hospital_id": "h_bench",
                "slot_id": f"slot_{n % 4000}",
                "schedule_id": f"sch_{n % 1000}",
                "doctor_id": "doc_1",
                "department_id": "dep_1",
                "date": day,
                "session": "am",
                "start": "08:00",
                "end": "08:30",
                "seq_no": n,
                "patient": {"id": f"p_{n}", "name": "患者", "id_number_masked": "11**"},
                "id_hash": f"{n % 9000:064x}",
                "person_key": f"h_bench|dep_1|{day}",
                "fee_cents": 1000,
                "created_at": now,
                "updated_at": now,
                "cancel_deadline": now,
                "outbox": [],
                "outbox_pending": False,
            }
        )
        if len(batch) == 2000:
            await collection.insert_many(batch)
            batch = []
    if batch:
        await collection.insert_many(batch)
    await client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_cpu")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--settle", type=float, default=20, help="wait after start")
    args = parser.parse_args(argv)
    stack = DevStack(
        Path(tempfile.mkdtemp(prefix="guahao-idle-")),
        env={**os.environ, "GUAHAO_DEMO": "1"},
        gateway_port=free_port(),
        log_dir=Path(tempfile.mkdtemp()),
    )
    stack.start()
    try:
        time.sleep(args.settle)
        empty = measure(stack, args.seconds)
        started = time.perf_counter()
        asyncio.run(fill(stack.env["MONGO_URL"], args.appointments))
        filled_in = time.perf_counter() - started
        time.sleep(args.settle)
        full = measure(stack, args.seconds)
    finally:
        stack.stop()
    print(
        json.dumps(
            {
                "seconds": args.seconds,
                "empty_store": empty,
                f"with_{args.appointments}_appointments": full,
                "fill_seconds": round(filled_in, 1),
            },
            ensure_ascii=False,
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
