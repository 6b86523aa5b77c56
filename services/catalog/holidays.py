"""A year's official holidays (法定节假日) and 调休 workdays, loaded into a hospital's calendar.

    python -m services.catalog.holidays load <hospital_id> <file.json | 2026>

The file (see `data/holidays-2026.json`, shipped) lists closed ranges and make-up
workdays:

    {"year": 2026, "source": "…",
     "closed":   [{"from": "2026-10-01", "to": "2026-10-07", "reason": "国庆节"}],
     "workdays": [{"date": "2026-10-10", "workday_as": 3, "reason": "国庆节调休上班"}]}

Loading replaces what the calendar says about those dates (days set by hand on other
dates stay) and marks the hospital for regeneration: the generation job applies it to the
booking window within a minute.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from services.catalog.repository import CatalogRepository
from services.catalog.scheduling_repository import SchedulingRepository
from shared.contracts.scheduling import CalendarEntry
from shared.errors import NotFound

DATA = Path(__file__).with_name("data")


def shipped(year: int) -> Path:
    """The holiday file shipped for `year`."""
    return DATA / f"holidays-{year}.json"


def official_days(spec: dict[str, Any]) -> list[CalendarEntry]:
    """Every calendar day a holiday file names, closed ranges expanded day by day."""
    days: dict[dt.date, CalendarEntry] = {}
    for closed in spec.get("closed", []):
        date = dt.date.fromisoformat(closed["from"])
        last = dt.date.fromisoformat(closed["to"])
        if last < date or (last - date).days > 31:
            raise ValueError(f"bad holiday range {closed['from']}..{closed['to']}")
        while date <= last:
            days[date] = CalendarEntry(
                date=date, closed=True, reason=closed["reason"], source="official"
            )
            date += dt.timedelta(days=1)
    for workday in spec.get("workdays", []):
        date = dt.date.fromisoformat(workday["date"])
        if date in days:
            raise ValueError(f"{date} is both a holiday and a workday")
        weekday = int(workday["workday_as"])
        if not 1 <= weekday <= 7:
            raise ValueError(f"workday_as of {date} must be 1..7")
        days[date] = CalendarEntry(
            date=date,
            closed=False,
            workday_as=weekday,
            reason=workday.get("reason"),
            source="official",
        )
    return [days[date] for date in sorted(days)]


def read_file(path: Path) -> list[CalendarEntry]:
    return official_days(json.loads(path.read_text(encoding="utf-8")))


async def load(
    repo: CatalogRepository,
    store: SchedulingRepository,
    hospital_id: str,
    days: list[CalendarEntry],
) -> int:
    """Write the days into the hospital's calendar; returns how many."""
    if await repo.hospital(hospital_id) is None:
        raise NotFound("医院不存在 / no such hospital")
    for day in days:
        fields: dict[str, Any] = {"closed": day.closed, "source": day.source}
        if day.reason is not None:
            fields["reason"] = day.reason
        if day.workday_as is not None:
            fields["workday_as"] = day.workday_as
        await store.put_calendar_day(hospital_id, day.date, fields)
    await store.bump_inputs(hospital_id)
    return len(days)


async def _load_command(hospital_id: str, source: str) -> int:
    from shared.settings import Settings
    from shared.storage.mongo import connect_mongo, service_database

    path = shipped(int(source)) if source.isdigit() else Path(source)
    days = read_file(path)
    settings = Settings.from_env()
    mongo = connect_mongo(settings, app_name="catalog-holidays")
    try:
        db = service_database(mongo, settings, "catalog")
        store = SchedulingRepository(db)
        await store.ensure_indexes()
        return await load(CatalogRepository(db), store, hospital_id, days)
    finally:
        await mongo.close()


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "load":
        print(
            "usage: python -m services.catalog.holidays load <hospital_id> <file.json|year>",
            file=sys.stderr,
        )
        return 2
    count = asyncio.run(_load_command(argv[1], argv[2]))
    print(f"loaded {count} calendar days into {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
