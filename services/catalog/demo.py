"""The demo hospital (`GUAHAO_DEMO=1`): one hospital, a department tree, four doctors with
weekly templates (排班), this year's official holidays, and the booking window's sessions
generated from them exactly as a hospital's would be.

Every document has a fixed id, so seeding again (a restart, another replica) adds only what
is missing; the generation job keeps the window filled day after day. A lease keeps
replicas that start together from doing the work twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from services.catalog import holidays
from services.catalog.scheduling import Scheduler
from services.catalog.service import CatalogService
from shared.contracts.catalog import DepartmentCreate, DoctorCreate, HospitalCreate
from shared.contracts.scheduling import TemplateFields
from shared.storage.lease import Lease

log = logging.getLogger("guahao.catalog.demo")

DEMO_HOSPITAL_ID = "h_demo"
RESEED_INTERVAL = 3600.0

HOSPITAL = HospitalCreate(
    name="协和示范医院 (Demo)",
    address="北京市东城区帅府园1号 (示例地址)",
    phone="010-00000000",
    level="三级甲等",
    latitude=39.9127,
    longitude=116.4131,
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
    DemoDoctor(
        "doc_demo_1", "张明华", "主任医师", "dep_demo_cardiology", "高血压、冠心病、心力衰竭", 10000
    ),
    DemoDoctor(
        "doc_demo_2", "李静", "副主任医师", "dep_demo_gastro", "胃炎、消化道溃疡、胃肠镜检查", 5000
    ),
    DemoDoctor(
        "doc_demo_3",
        "王建国",
        "主任医师",
        "dep_demo_orthopedics",
        "关节置换、运动损伤、脊柱疾病",
        10000,
    ),
    DemoDoctor(
        "doc_demo_4", "陈晓燕", "主治医师", "dep_demo_general_surgery", "甲状腺、乳腺、疝气", 2500
    ),
)


def _template(
    weekdays: list[int],
    session: str,
    start: str,
    end: str,
    *,
    clinic_type: str = "general",
    weeks: str = "every",
    slice_minutes: int = 30,
    capacity: int = 3,
    fee_cents: int | None = None,
) -> dict[str, Any]:
    return {
        "weekdays": weekdays,
        "session": session,
        "start": start,
        "end": end,
        "slice_minutes": slice_minutes,
        "capacity_per_slice": capacity,
        "clinic_type": clinic_type,
        "weeks": weeks,
        "fee_cents": fee_cents,
        "valid_from": "2026-01-01",
    }


EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]
# (template id, doctor id, template): a cardiologist's expert clinic every day, a
# gastroenterologist on weekdays with an evening clinic, an orthopaedist alternating
# weekdays by odd/even week plus a 特需 afternoon, a surgeon six days a week
TEMPLATES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "tpl_demo_1_am",
        "doc_demo_1",
        _template(EVERY_DAY, "am", "08:00", "11:30", clinic_type="expert"),
    ),
    (
        "tpl_demo_1_pm",
        "doc_demo_1",
        _template(EVERY_DAY, "pm", "13:30", "16:30", clinic_type="expert"),
    ),
    ("tpl_demo_2_am", "doc_demo_2", _template([1, 2, 3, 4, 5], "am", "08:00", "11:30")),
    ("tpl_demo_2_pm", "doc_demo_2", _template([2, 4], "pm", "13:30", "16:30")),
    ("tpl_demo_2_ev", "doc_demo_2", _template([3], "evening", "18:00", "20:30")),
    (
        "tpl_demo_3_odd",
        "doc_demo_3",
        _template([1, 3, 5], "am", "08:00", "11:30", clinic_type="expert", weeks="odd"),
    ),
    (
        "tpl_demo_3_even",
        "doc_demo_3",
        _template([2, 4], "am", "08:00", "11:30", clinic_type="expert", weeks="even"),
    ),
    (
        "tpl_demo_3_vip",
        "doc_demo_3",
        _template(
            [1],
            "pm",
            "14:00",
            "16:00",
            clinic_type="special",
            slice_minutes=20,
            capacity=1,
            fee_cents=30000,
        ),
    ),
    ("tpl_demo_4_am", "doc_demo_4", _template([1, 2, 3, 4, 5, 6], "am", "08:00", "11:30")),
    ("tpl_demo_4_pm", "doc_demo_4", _template([1, 2, 3, 4, 5, 6], "pm", "13:30", "16:30")),
)


@dataclass(frozen=True)
class SeedReport:
    hospitals: int = 0
    departments: int = 0
    doctors: int = 0
    schedules: int = 0


async def seed_demo(catalog: CatalogService, scheduler: Scheduler) -> SeedReport:
    """Create whatever part of the demo data does not exist yet, then generate the window."""
    hospitals = int(await catalog.seed_hospital(DEMO_HOSPITAL_ID, HOSPITAL))
    departments = 0
    for department_id, name, parent_id in DEPARTMENTS:
        departments += await catalog.seed_department(
            department_id, DEMO_HOSPITAL_ID, DepartmentCreate(name=name, parent_id=parent_id)
        )
    doctors = 0
    for doctor in DOCTORS:
        doctors += await catalog.seed_doctor(
            doctor.id,
            DEMO_HOSPITAL_ID,
            DoctorCreate(
                name=doctor.name,
                title=doctor.title,
                department_id=doctor.department_id,
                specialty=doctor.specialty,
                intro=f"{doctor.title}，擅长{doctor.specialty}。",
                fee_cents=doctor.fee_cents,
                published=True,
            ),
        )
    new_templates = 0
    for doctor in DOCTORS:
        templates = [
            {
                "id": tid,
                **TemplateFields.model_validate(spec).model_dump(mode="json", exclude_none=True),
            }
            for tid, did, spec in TEMPLATES
            if did == doctor.id
        ]
        new_templates += await scheduler.store.save_templates(
            doctor.id, DEMO_HOSPITAL_ID, 0, templates, catalog.clock()
        )
    year = catalog.today().year
    if new_templates and holidays.shipped(year).exists():
        await holidays.load(
            catalog.repo,
            scheduler.store,
            DEMO_HOSPITAL_ID,
            holidays.read_file(holidays.shipped(year)),
        )
    report = await scheduler.regenerate_window(DEMO_HOSPITAL_ID)  # booking down: the job
    return SeedReport(hospitals, departments, doctors, report.created)


async def keep_demo_fresh(catalog: CatalogService, scheduler: Scheduler, lease: Lease) -> None:
    """Reseed what went missing while the service runs for days (a background job; the
    generation job keeps the window's sessions)."""
    while True:
        await asyncio.sleep(RESEED_INTERVAL)
        await seed_demo_once(catalog, scheduler, lease)


async def seed_demo_once(
    catalog: CatalogService, scheduler: Scheduler, lease: Lease
) -> SeedReport | None:
    """Seed under the lease; None when another replica is seeding right now."""
    if await lease.acquire() is None:
        log.info("demo seed left to another replica")
        return None
    try:
        report = await seed_demo(catalog, scheduler)
    finally:
        await lease.release()
    log.info(
        "demo data seeded",
        extra={
            "hospitals": report.hospitals,
            "departments": report.departments,
            "doctors": report.doctors,
            "schedules": report.schedules,
        },
    )
    return report
