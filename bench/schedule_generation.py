"""Generating 6 months of clinic sessions for 200 doctors from weekly templates.

One hospital, 200 doctors in 10 departments, 2–3 templates each (am every weekday, pm on
some, odd/even-week alternation, an evening clinic), this year's official holidays loaded.
Times the generator over [today, today + N days] on the embedded store (nx-27017 started
for the run, as `make run` does), then a second run over the same range (idempotent: it
must create nothing), and reports sessions and slots per second. The sessions'
`schedule.published` events are written into each session's outbox in the same insert;
publishing them is the relay's work afterwards and not part of this figure.

    python -m bench.schedule_generation --doctors 200 --days 183
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
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from services.catalog import holidays
from services.catalog.repository import CatalogRepository
from services.catalog.scheduling import Scheduler
from services.catalog.scheduling_repository import SchedulingRepository
from services.catalog.service import CatalogService, Clock
from shared.contracts.booking import Availability
from shared.contracts.catalog import DepartmentCreate, DoctorCreate, HospitalCreate
from shared.contracts.scheduling import TemplateFields
from shared.messaging.events import EventEnvelope
from shared.messaging.outbox import OutboxRelay
from shared.storage.lease import Lease
from shared.storage.mongo import Document
from shared.storage.testing import start_embedded_mongo

HOSPITAL_ID = "h_bench"


class NoBooking:
    """A fresh range has nothing to replace: booking is never asked."""

    async def availability(self, schedule_ids: list[str]) -> Availability:
        return Availability(items=[])

    async def change_capacity(self, hospital_id: str, slot_id: str, delta: int) -> None:
        raise AssertionError("not expected in this bench")

    async def stop_schedule(self, hospital_id: str, schedule_id: str, reason: str) -> int:
        raise AssertionError("not expected in this bench")


class DiscardingPublisher:
    async def publish(self, event: EventEnvelope) -> None:
        return None


def templates_of(n: int) -> list[dict[str, Any]]:
    """A realistic mix: weekday mornings, some afternoons, alternating weeks, an evening."""
    base = {"valid_from": "2026-01-01", "capacity_per_slice": 3, "clinic_type": "general"}
    specs: list[dict[str, Any]] = [
        {
            **base,
            "weekdays": [1, 2, 3, 4, 5],
            "session": "am",
            "start": "08:00",
            "end": "11:30",
            "slice_minutes": 30,
        },
    ]
    if n % 3 == 0:
        specs.append(
            {
                **base,
                "weekdays": [1, 3, 5],
                "session": "pm",
                "start": "13:30",
                "end": "16:30",
                "slice_minutes": 30,
                "weeks": "odd",
            }
        )
        specs.append(
            {
                **base,
                "weekdays": [2, 4],
                "session": "pm",
                "start": "13:30",
                "end": "16:30",
                "slice_minutes": 30,
                "weeks": "even",
            }
        )
    elif n % 3 == 1:
        specs.append(
            {
                **base,
                "weekdays": [2, 4, 6],
                "session": "pm",
                "start": "14:00",
                "end": "17:00",
                "slice_minutes": 15,
                "clinic_type": "expert",
            }
        )
    else:
        specs.append(
            {
                **base,
                "weekdays": [3],
                "session": "evening",
                "start": "18:00",
                "end": "20:30",
                "slice_minutes": 30,
            }
        )
    return [
        {
            "id": f"tpl_bench_{n}_{i}",
            **TemplateFields.model_validate(spec).model_dump(mode="json", exclude_none=True),
        }
        for i, spec in enumerate(specs)
    ]


async def run(args: argparse.Namespace, mongo_url: str) -> dict[str, Any]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client["bench_schedule_generation"]
    await client.drop_database(db.name)
    try:
        repo = CatalogRepository(db)
        await repo.ensure_indexes()
        relay = OutboxRelay(
            DiscardingPublisher(),
            repo.outbox_collections,
            Lease(db["leases"], "bench", "bench", dt.timedelta(seconds=10)),
        )
        await relay.ensure_indexes()
        clock: Clock = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
        catalog = CatalogService(repo, relay, NoBooking(), clock)
        store = SchedulingRepository(db)
        await store.ensure_indexes()
        scheduler = Scheduler(repo, store, catalog, NoBooking())
        await catalog.seed_hospital(HOSPITAL_ID, HospitalCreate(name="排班压测医院"))
        for d in range(10):
            await catalog.seed_department(
                f"dep_bench_{d}", HOSPITAL_ID, DepartmentCreate(name=f"科室{d}")
            )
        for n in range(args.doctors):
            doctor_id = f"doc_bench_{n}"
            await catalog.seed_doctor(
                doctor_id,
                HOSPITAL_ID,
                DoctorCreate(
                    name=f"医生{n}",
                    title="主治医师",
                    department_id=f"dep_bench_{n % 10}",
                    fee_cents=1000 + n,
                    published=True,
                ),
            )
            await store.save_templates(doctor_id, HOSPITAL_ID, 0, templates_of(n), clock())
        year = catalog.today().year
        for y in (year, year + 1):
            if holidays.shipped(y).exists():
                await holidays.load(
                    repo, store, HOSPITAL_ID, holidays.read_file(holidays.shipped(y))
                )
        first = catalog.today()
        last = first + dt.timedelta(days=args.days - 1)

        started = time.perf_counter()
        report = await scheduler.generate(HOSPITAL_ID, first, last)
        generate_s = time.perf_counter() - started
        sessions = await db["schedules"].count_documents({})
        slots = 0
        async for doc in db["schedules"].find({}, projection={"slots": 1}):
            slots += len(doc["slots"])

        started = time.perf_counter()
        again = await scheduler.generate(HOSPITAL_ID, first, last)
        regenerate_s = time.perf_counter() - started
        assert again.created == again.replaced == again.removed == 0
        assert await db["schedules"].count_documents({}) == sessions
    finally:
        await client.drop_database("bench_schedule_generation")
        await client.close()
    return {
        "params": {
            "doctors": args.doctors,
            "days": args.days,
            "from": first.isoformat(),
            "to": last.isoformat(),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "store": "nx-27017 (embedded)" if not os.environ.get("MONGO_URL") else "MONGO_URL",
        },
        "sessions_created": report.created,
        "slots": slots,
        "generate_s": round(generate_s, 2),
        "sessions_per_s": round(sessions / generate_s, 1),
        "slots_per_s": round(slots / generate_s, 1),
        "regenerate_same_range_s": round(regenerate_s, 2),
        "under_60_s": generate_s < 60,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.schedule_generation")
    parser.add_argument("--doctors", type=int, default=200)
    parser.add_argument("--days", type=int, default=183)
    args = parser.parse_args(argv)
    if os.environ.get("MONGO_URL"):
        result = asyncio.run(run(args, os.environ["MONGO_URL"]))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
            proc, url = start_embedded_mongo(Path(tmp))
            try:
                result = asyncio.run(run(args, url))
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
