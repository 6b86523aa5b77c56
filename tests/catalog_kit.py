"""Test kit of the catalog tests (no tests here): a settable clock on the hospital's wall
clock, a stub booking inventory, a recording event publisher, and a builder that wires the
catalog service to a test database without a broker."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pymongo.asynchronous.database import AsyncDatabase

from services.catalog.repository import CatalogRepository
from services.catalog.service import CatalogService
from shared.context import Caller
from shared.contracts.booking import Availability, ScheduleAvailability, SlotAvailability
from shared.contracts.catalog import (
    DepartmentCreateParams,
    DoctorCreateParams,
    HospitalCreate,
    Schedule,
    ScheduleCreateParams,
    SlotSpec,
)
from shared.errors import ServiceUnavailable
from shared.messaging.events import EventEnvelope
from shared.messaging.outbox import OutboxRelay
from shared.rules import HOSPITAL_TZ
from shared.storage.lease import Lease
from shared.storage.mongo import Document

PLATFORM_ADMIN = Caller(user_id="s_platform", role="platform_admin")
PATIENT = Caller(user_id="u_patient", role="patient")
# 2026-12-01 is a Tuesday; 09:00 on the hospital clock
START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=HOSPITAL_TZ)
TODAY = START.date()


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


class FakeClock:
    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set_local(self, date: dt.date, clock: str) -> None:
        hour, minute = (int(part) for part in clock.split(":"))
        self.now = dt.datetime.combine(date, dt.time(hour, minute), tzinfo=HOSPITAL_TZ)


@dataclass
class StubBooking:
    """Availability from a table; schedules it does not hold are simply not in the reply."""

    schedules: dict[str, ScheduleAvailability] = field(default_factory=dict)
    down: bool = False
    calls: list[list[str]] = field(default_factory=list)

    async def availability(self, schedule_ids: list[str]) -> Availability:
        self.calls.append(list(schedule_ids))
        if self.down:
            raise ServiceUnavailable(service="booking", reason="timeout")
        return Availability(
            items=[self.schedules[sid] for sid in schedule_ids if sid in self.schedules]
        )

    def set_remaining(self, schedule: Schedule, remaining: int, *, stopped: bool = False) -> None:
        self.schedules[schedule.id] = ScheduleAvailability(
            schedule_id=schedule.id,
            stopped=stopped,
            slots=[
                SlotAvailability(id=slot.id, capacity=slot.capacity, remaining=remaining)
                for slot in schedule.slots
            ],
        )


@dataclass
class RecordingPublisher:
    events: list[EventEnvelope] = field(default_factory=list)
    failing: bool = False

    async def publish(self, event: EventEnvelope) -> None:
        if self.failing:
            raise ConnectionError("broker down")
        self.events.append(event)


@dataclass
class CatalogKit:
    service: CatalogService
    repo: CatalogRepository
    relay: OutboxRelay
    publisher: RecordingPublisher
    booking: StubBooking
    clock: FakeClock
    db: AsyncDatabase[Document]

    @property
    def events(self) -> list[EventEnvelope]:
        return self.publisher.events


async def build_catalog(db: AsyncDatabase[Document]) -> CatalogKit:
    repo = CatalogRepository(db)
    await repo.ensure_indexes()
    clock = FakeClock()
    publisher = RecordingPublisher()
    relay = OutboxRelay(
        publisher,  # records instead of publishing
        repo.outbox_collections,
        Lease(db["leases"], "catalog.outbox", "test", dt.timedelta(seconds=10)),
    )
    await relay.ensure_indexes()
    booking = StubBooking()
    service = CatalogService(repo, relay, booking, clock)
    return CatalogKit(service, repo, relay, publisher, booking, clock, db)


def hospital_admin(hospital_id: str) -> Caller:
    return Caller(user_id=f"s_{hospital_id}", role="hospital_admin", hospital_id=hospital_id)


@dataclass
class World:
    """A hospital with an admin, a two-level department and one published doctor."""

    hospital_id: str
    admin: Caller
    department_id: str
    sub_department_id: str
    doctor_id: str


async def add_world(kit: CatalogKit, name: str = "测试医院", fee_cents: int = 5000) -> World:
    hospital = await kit.service.create_hospital(PLATFORM_ADMIN, HospitalCreate(name=name))
    admin = hospital_admin(hospital.id)
    top = await kit.service.create_department(
        admin, DepartmentCreateParams(hospital_id=hospital.id, name="内科")
    )
    sub = await kit.service.create_department(
        admin, DepartmentCreateParams(hospital_id=hospital.id, name="心血管内科", parent_id=top.id)
    )
    doctor = await kit.service.create_doctor(
        admin,
        DoctorCreateParams(
            hospital_id=hospital.id,
            name="张三",
            title="主任医师",
            department_id=sub.id,
            specialty="高血压",
            fee_cents=fee_cents,
            published=True,
        ),
    )
    return World(hospital.id, admin, top.id, sub.id, doctor.id)


def am_session(
    world: World,
    date: dt.date,
    *,
    capacity: int = 3,
    fee_cents: int | None = None,
    doctor_id: str | None = None,
) -> ScheduleCreateParams:
    return ScheduleCreateParams(
        hospital_id=world.hospital_id,
        doctor_id=doctor_id or world.doctor_id,
        date=date,
        session="am",
        fee_cents=fee_cents,
        slots=[
            SlotSpec(start="08:00", end="08:30", capacity=capacity),
            SlotSpec(start="08:30", end="09:00", capacity=capacity),
        ],
    )
