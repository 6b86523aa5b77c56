"""What booking needs from other services, as small interfaces (RPC adapters in app.py)."""

from __future__ import annotations

from typing import Protocol

from shared.contracts.catalog import BookingRules, ScheduleDefinition
from shared.contracts.patients import ResolvedPatient


class CatalogPort(Protocol):
    async def rules(self, hospital_id: str) -> BookingRules: ...

    async def schedule_for_slot(self, slot_id: str) -> ScheduleDefinition | None: ...

    async def schedule_definition(self, schedule_id: str) -> ScheduleDefinition | None: ...

    async def hospital_of(self, doctor_id: str | None, department_id: str | None) -> str: ...


class WaitlistPort(Protocol):
    async def hand_over(self, slot_id: str, from_appointment_id: str | None) -> bool: ...


class PatientPort(Protocol):
    async def resolve(self, user_id: str, patient_id: str) -> ResolvedPatient: ...
