"""Builders for booking tests: booking's collaborators on a real store, stub neighbours."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TypedDict

from pymongo.asynchronous.database import AsyncDatabase

from services.booking.app import build
from services.booking.domain import PatientRef
from shared.contracts.catalog import (
    BookingRules,
    PersonRef,
    ScheduleDefinition,
    Session,
    SlotDefinition,
)
from shared.errors import NotFound
from shared.faults import FaultPoints
from shared.messaging.events import EventEnvelope
from shared.messaging.outbox import OutboxRelay
from shared.rules import HOSPITAL_TZ
from shared.storage.lease import Lease
from shared.storage.mongo import Document


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []

    async def publish(self, event: EventEnvelope) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


@dataclass
class StubCatalog:
    rules_by_hospital: dict[str, BookingRules] = field(default_factory=dict)
    schedules: dict[str, ScheduleDefinition] = field(default_factory=dict)

    async def rules(self, hospital_id: str) -> BookingRules:
        if hospital_id not in self.rules_by_hospital:
            raise NotFound()
        return self.rules_by_hospital[hospital_id]

    async def schedule_for_slot(self, slot_id: str) -> ScheduleDefinition | None:
        return next(
            (s for s in self.schedules.values() if any(x.id == slot_id for x in s.slots)), None
        )

    async def schedule_definition(self, schedule_id: str) -> ScheduleDefinition | None:
        return self.schedules.get(schedule_id)

    async def hospital_of(self, doctor_id: str | None, department_id: str | None) -> str:
        for s in self.schedules.values():
            if s.doctor.id == doctor_id or s.department.id == department_id:
                return s.hospital_id
        raise NotFound()


@dataclass
class StubPatients:
    owners: dict[str, str] = field(default_factory=dict)  # patient id → user id
    people: dict[str, str] = field(default_factory=dict)  # patient id → id number

    def add(self, user_id: str, id_number: str | None = None) -> str:
        pid = f"pat_{uuid.uuid4().hex[:10]}"
        self.owners[pid] = user_id
        self.people[pid] = id_number or uuid.uuid4().hex
        return pid

    async def resolve(self, user_id: str, patient_id: str) -> PatientRef:
        if self.owners.get(patient_id) != user_id:
            raise NotFound()
        return PatientRef(
            id=patient_id,
            user_id=user_id,
            name="张三",
            id_number_masked="1101**********002X",
            id_hash=hashlib.sha256(self.people[patient_id].encode()).hexdigest(),
        )


class Stock(TypedDict):
    """A slot's stock as `Kit.stock` reads it."""

    capacity: int
    booked: int
    holders: list[str]
    stopped: bool


class Kit:
    """A booking service with one hospital; `schedule()` adds sessions."""

    def __init__(
        self, db: AsyncDatabase[Document], now: dt.datetime, rules: BookingRules | None = None
    ) -> None:
        self.db = db
        self.clock = Clock(now)
        self.hospital_id = f"h_{uuid.uuid4().hex[:8]}"
        self.catalog = StubCatalog({self.hospital_id: rules or BookingRules()})
        self.patients = StubPatients()
        self.publisher = RecordingPublisher()
        self.faults = FaultPoints()
        self.relay = OutboxRelay(
            self.publisher,
            [db.appointments, db.sessions, db.waitlist],
            Lease(db.leases, "outbox", "me", dt.timedelta(seconds=10)),
        )
        self.booking = build(
            db,
            catalog=self.catalog,
            auth=self.patients,
            outbox=self.relay,
            clock=self.clock,
            faults=self.faults,
        )
        self.booker = self.booking.booker
        self.lifecycle = self.booking.lifecycle
        self.admin = self.booking.admin
        self.queries = self.booking.queries
        self.waitlist = self.booking.waitlist
        self.appointments = self.booking.appointments
        self.sessions = self.booking.sessions
        self.persons = self.booking.persons
        self.entries = self.booking.entries

    async def setup(self) -> Kit:
        await self.booking.ensure_indexes()
        await self.relay.ensure_indexes()
        return self

    async def active_count(self, **query: str) -> int:
        """Appointments holding a unit (pending, booked) that match `query`."""
        return await self.appointments.collection.count_documents(
            {**query, "status": {"$in": ["pending", "pending_payment", "booked"]}}
        )

    async def stock(self, slot_id: str) -> Stock:
        """A slot's stock as stored: capacity, booked, holders, and its session's stop."""
        schedule_id = await self.sessions.schedule_of(slot_id)
        session = await self.sessions.get(schedule_id) if schedule_id else None
        if session is None:
            return {"capacity": 0, "booked": 0, "holders": [], "stopped": False}
        stock = session.stock[slot_id]
        return {
            "capacity": stock.capacity,
            "booked": stock.booked,
            "holders": list(stock.holders),
            "stopped": session.stopped,
        }

    def schedule(
        self,
        date: dt.date,
        session: Session = "am",
        *,
        capacity: int = 5,
        starts: tuple[str, ...] = ("08:00", "08:30"),
        department: str = "dep_1",
        doctor: str = "doc_1",
    ) -> ScheduleDefinition:
        sid = f"sch_{uuid.uuid4().hex[:10]}"
        definition = ScheduleDefinition(
            id=sid,
            hospital_id=self.hospital_id,
            doctor=PersonRef(id=doctor, name="李医生", title="主任医师"),
            department=PersonRef(id=department, name="心内科"),
            date=date,
            session=session,
            fee_cents=5000,
            slots=[
                SlotDefinition(
                    id=f"slot_{uuid.uuid4().hex[:10]}", start=s, end=_plus30(s), capacity=capacity
                )
                for s in starts
            ],
        )
        self.catalog.schedules[sid] = definition
        return definition


def _plus30(clock: str) -> str:
    h, m = (int(x) for x in clock.split(":"))
    total = h * 60 + m + 30
    return f"{total // 60:02d}:{total % 60:02d}"


def local(y: int, mo: int, d: int, h: int = 9, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=HOSPITAL_TZ)
