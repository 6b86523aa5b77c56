"""The demo hospital (`GUAHAO_DEMO=1`): one hospital, a department tree, four doctors and a
week of sessions.

Every document has a fixed id, so seeding again (a restart, another replica, the next day)
adds only what is missing — on a later day, only the new dates. A lease keeps replicas that
start together from doing the work twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from dataclasses import dataclass

from services.catalog.service import CatalogService
from shared.contracts.catalog import (
    DepartmentCreate,
    DoctorCreate,
    HospitalCreate,
    ScheduleCreate,
    Session,
    SlotSpec,
)
from shared.storage.lease import Lease

log = logging.getLogger("guahao.catalog.demo")

DEMO_HOSPITAL_ID = "h_demo"
DEMO_DAYS = 7
SLOT_CAPACITY = 3
SLOT_MINUTES = 30
SESSION_HOURS: dict[Session, tuple[str, str]] = {
    "am": ("08:00", "11:30"), "pm": ("13:30", "16:30"),
}
RESEED_INTERVAL = 3600.0

HOSPITAL = HospitalCreate(
    name="协和示范医院 (Demo)", address="北京市东城区帅府园1号 (示例地址)",
    phone="010-00000000", level="三级甲等", latitude=39.9127, longitude=116.4131,
)

# (id, name, parent id); parents first
DEPARTMENTS: tuple[tuple[str, str, str | None], ...] = (
    ("dep_demo_internal", "内科", None),
    ("dep_demo_surgery", "外科", None),
    ("dep_demo_cardiology", "心血管内科", "dep_demo_internal"),
    ("dep_demo_gastro", "消化内科", "dep_demo_internal"),
    ("dep_demo_orthopedics", "骨科", "dep_demo_surgery"),
    ("dep_demo_general_surgery", "普通外科", "dep_demo_surgery"),
)


@dataclass(frozen=True)
class DemoDoctor:
    id: str
    name: str
    title: str
    department_id: str
    specialty: str
    fee_cents: int


DOCTORS: tuple[DemoDoctor, ...] = (
    DemoDoctor("doc_demo_1", "张明华", "主任医师", "dep_demo_cardiology",
               "高血压、冠心病、心力衰竭", 10000),
    DemoDoctor("doc_demo_2", "李静", "副主任医师", "dep_demo_gastro",
               "胃炎、消化道溃疡、胃肠镜检查", 5000),
    DemoDoctor("doc_demo_3", "王建国", "主任医师", "dep_demo_orthopedics",
               "关节置换、运动损伤、脊柱疾病", 10000),
    DemoDoctor("doc_demo_4", "陈晓燕", "主治医师", "dep_demo_general_surgery",
               "甲状腺、乳腺、疝气", 2500),
)


@dataclass(frozen=True)
class SeedReport:
    hospitals: int = 0
    departments: int = 0
    doctors: int = 0
    schedules: int = 0


def slices(start: str, end: str) -> list[SlotSpec]:
    """`start`–`end` cut into SLOT_MINUTES slots."""
    day = dt.date(2000, 1, 1)
    t = dt.datetime.combine(day, dt.time.fromisoformat(start))
    stop = dt.datetime.combine(day, dt.time.fromisoformat(end))
    step = dt.timedelta(minutes=SLOT_MINUTES)
    out: list[SlotSpec] = []
    while t + step <= stop:
        out.append(SlotSpec(start=t.strftime("%H:%M"), end=(t + step).strftime("%H:%M"),
                            capacity=SLOT_CAPACITY))
        t += step
    return out


def schedule_id(doctor_id: str, date: dt.date, session: str) -> str:
    return "sch_demo_" + re.sub(r"[^A-Za-z0-9]", "", f"{doctor_id}_{date.isoformat()}_{session}")


def demo_sessions(doctor_id: str, today: dt.date) -> list[tuple[str, ScheduleCreate]]:
    """am and pm, today and the DEMO_DAYS - 1 days after it."""
    sessions: list[tuple[str, ScheduleCreate]] = []
    for offset in range(DEMO_DAYS):
        date = today + dt.timedelta(days=offset)
        for session, (start, end) in SESSION_HOURS.items():
            sessions.append((schedule_id(doctor_id, date, session), ScheduleCreate(
                date=date, session=session, slots=slices(start, end))))
    return sessions


async def seed_demo(catalog: CatalogService) -> SeedReport:
    """Create whatever part of the demo data does not exist yet."""
    hospitals = int(await catalog.seed_hospital(DEMO_HOSPITAL_ID, HOSPITAL))
    departments = 0
    for department_id, name, parent_id in DEPARTMENTS:
        departments += await catalog.seed_department(
            department_id, DEMO_HOSPITAL_ID, DepartmentCreate(name=name, parent_id=parent_id))
    doctors = schedules = 0
    today = catalog.today()
    for doctor in DOCTORS:
        doctors += await catalog.seed_doctor(doctor.id, DEMO_HOSPITAL_ID, DoctorCreate(
            name=doctor.name, title=doctor.title, department_id=doctor.department_id,
            specialty=doctor.specialty, intro=f"{doctor.title}，擅长{doctor.specialty}。",
            fee_cents=doctor.fee_cents, published=True,
        ))
        schedules += await catalog.seed_schedules(doctor.id, demo_sessions(doctor.id, today))
    return SeedReport(hospitals, departments, doctors, schedules)


async def seed_demo_once(catalog: CatalogService, lease: Lease) -> SeedReport | None:
    """Seed under the lease; None when another replica is seeding right now."""
    if await lease.acquire() is None:
        log.info("demo seed left to another replica")
        return None
    try:
        report = await seed_demo(catalog)
    finally:
        await lease.release()
    log.info("demo data seeded", extra={
        "hospitals": report.hospitals, "departments": report.departments,
        "doctors": report.doctors, "schedules": report.schedules})
    return report


async def keep_demo_fresh(catalog: CatalogService, lease: Lease) -> None:
    """Add the new day's sessions while the service runs for days (a background job)."""
    while True:
        await asyncio.sleep(RESEED_INTERVAL)
        await seed_demo_once(catalog, lease)
