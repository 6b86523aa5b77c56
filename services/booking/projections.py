"""What booking knows of its neighbours and of its own stock without asking on every request.

A booking is decided without a synchronous call to auth or catalog: the patient profile, the
hospital's rules and the slot's facts come from projections fed by events, each with a
read-through on first sight. Each process also keeps a short-lived note of the slots it saw
sold out, so the crowd that arrives after the last unit is refused without touching the
store.

- `PatientDirectory`: profiles by id, in memory (bounded) over the `patients` projection,
  falling back to auth once; a deleted profile is refused by the person document itself
  (`Persons.hold`), so a stale memory entry can never book it.
- `RulesBook`: each hospital's rules, fetched once per change (`hospital.rules_updated`).
- `SessionBook`: the unchanging facts of slots (time, doctor, fee), read once per process.
- `SoldOutBoard`: slots seen sold out, with the appointments that held them then (a replay
  of one of those is still answered with its appointment), forgotten when this process
  frees a unit, when an event says a unit was freed, or after `ttl`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from services.booking.domain import PatientRef, Session, SlotInfo
from services.booking.repository import Patients, Persons, Sessions
from shared.contracts.catalog import BookingRules, ScheduleDefinition
from shared.errors import NotFound


class CatalogPort(Protocol):
    async def rules(self, hospital_id: str) -> BookingRules: ...

    async def schedule_for_slot(self, slot_id: str) -> ScheduleDefinition | None: ...

    async def schedule_definition(self, schedule_id: str) -> ScheduleDefinition | None: ...

    async def hospital_of(self, doctor_id: str | None, department_id: str | None) -> str: ...


class AuthPort(Protocol):
    async def resolve(self, user_id: str, patient_id: str) -> PatientRef: ...


class PatientDirectory:
    def __init__(
        self, projection: Patients, persons: Persons, auth: AuthPort, *, capacity: int = 200_000
    ) -> None:
        self.projection = projection
        self.persons = persons
        self.auth = auth
        self.capacity = capacity
        self._memory: OrderedDict[str, PatientRef] = OrderedDict()

    async def patient(self, user_id: str, patient_id: str) -> PatientRef:
        """The profile `patient_id` of `user_id` (NotFound for anyone else's)."""
        patient = self._memory.get(patient_id)
        if patient is None:
            patient = await self.projection.get(patient_id)
            if patient is None:
                patient = await self.auth.resolve(user_id, patient_id)
                await self.learn(patient)
            else:
                self._remember(patient)
        if patient.user_id != user_id:
            raise NotFound("就诊人不存在 / patient not found")
        return patient

    async def learn(self, patient: PatientRef) -> None:
        """A profile was created or changed (an event, or a first sight through auth)."""
        if await self.persons.add_profile(patient.id_hash, patient.id, patient.user_id):
            await self.projection.put(patient)
            self._remember(patient)

    def remember(self, patient: PatientRef) -> None:
        """Warm this process's memory (every replica hears `patient.*`)."""
        self._remember(patient)

    async def forget(self, patient_id: str, id_hash: str) -> None:
        """A profile was deleted: it can never book again, on any replica."""
        await self.persons.forget_profile(id_hash, patient_id)
        await self.projection.delete(patient_id)
        self._memory.pop(patient_id, None)

    def drop(self, patient_id: str) -> None:
        self._memory.pop(patient_id, None)

    def knows(self, patient_id: str) -> bool:
        """Whether this process holds the profile in memory."""
        return patient_id in self._memory

    def _remember(self, patient: PatientRef) -> None:
        self._memory[patient.id] = patient
        self._memory.move_to_end(patient.id)
        while len(self._memory) > self.capacity:
            self._memory.popitem(last=False)


class RulesBook:
    def __init__(self, catalog: CatalogPort, *, ttl: float = 300.0) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self._rules: dict[str, tuple[float, BookingRules]] = {}

    async def rules(self, hospital_id: str) -> BookingRules:
        cached = self._rules.get(hospital_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        rules = await self.catalog.rules(hospital_id)
        self._rules[hospital_id] = (time.monotonic(), rules)
        return rules

    def changed(self, hospital_id: str, rules: BookingRules | None = None) -> None:
        """`hospital.rules_updated`: take the new rules (or fetch them on next use)."""
        if rules is None:
            self._rules.pop(hospital_id, None)
        else:
            self._rules[hospital_id] = (time.monotonic(), rules)


class SessionBook:
    def __init__(
        self, sessions: Sessions, catalog: CatalogPort, *, capacity: int = 100_000
    ) -> None:
        self.sessions = sessions
        self.catalog = catalog
        self.capacity = capacity
        self._slots: OrderedDict[str, SlotInfo] = OrderedDict()

    async def slot(self, slot_id: str) -> SlotInfo:
        info = self._slots.get(slot_id)
        if info is not None:
            return info
        schedule_id = await self.sessions.schedule_of(slot_id)
        session = await self.sessions.get(schedule_id) if schedule_id else None
        if session is None:
            definition = await self.catalog.schedule_for_slot(slot_id)
            if definition is None:
                raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
            await self.sessions.register(definition)
            session = await self.sessions.get(definition.id)
        if session is None or slot_id not in session.slots:
            raise NotFound("号源不存在 / slot not found", slot_id=slot_id)
        self.learn(session)
        return self._slots[slot_id]

    async def session(self, schedule_id: str, hospital_id: str | None = None) -> Session:
        """The session with its current stock (always read: stock changes)."""
        session = await self.sessions.get(schedule_id)
        if session is None:
            definition = await self.catalog.schedule_definition(schedule_id)
            if definition is not None:
                await self.sessions.register(definition)
                session = await self.sessions.get(schedule_id)
        if session is None or (hospital_id and session.hospital_id != hospital_id):
            raise NotFound("出诊不存在 / schedule not found", schedule_id=schedule_id)
        self.learn(session)
        return session

    def learn(self, session: Session) -> None:
        for slot_id in session.slots:
            self._slots[slot_id] = session.slot(slot_id)
            self._slots.move_to_end(slot_id)
        while len(self._slots) > self.capacity:
            self._slots.popitem(last=False)


@dataclass(frozen=True)
class SoldOut:
    holders: frozenset[str]
    stopped: bool
    until: float


class SoldOutBoard:
    def __init__(self, *, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._slots: dict[str, SoldOut] = {}

    def seen(self, slot_id: str) -> SoldOut | None:
        note = self._slots.get(slot_id)
        if note is None:
            return None
        if note.until < time.monotonic():
            del self._slots[slot_id]
            return None
        return note

    def sold_out(self, slot_id: str, holders: list[str], *, stopped: bool = False) -> None:
        self._slots[slot_id] = SoldOut(frozenset(holders), stopped, time.monotonic() + self.ttl)

    def freed(self, slot_id: str) -> None:
        self._slots.pop(slot_id, None)
