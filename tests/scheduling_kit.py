"""Test kit of the scheduling tests (no tests here): a booking double that holds slot
inventory the way booking does (pull-through from the catalog's sessions, capacity that
cannot go below what is booked, 停诊 that cancels), and a scheduler wired to a test store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pymongo.asynchronous.database import AsyncDatabase

from services.catalog.scheduling import FaultPoint, Scheduler
from services.catalog.scheduling_repository import SchedulingRepository
from shared.contracts.booking import Availability, ScheduleAvailability, SlotAvailability
from shared.contracts.scheduling import TemplateCreateParams
from shared.errors import InvalidState, NotFound
from shared.storage.mongo import Document
from tests.catalog_kit import CatalogKit, World


@dataclass
class BookingDouble:
    """Inventory per slot: [capacity, booked]; schedules it has seen; stops it made."""

    db: AsyncDatabase[Document]
    slots: dict[str, list[int]] = field(default_factory=dict)
    schedule_of: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    stopped: dict[str, str] = field(default_factory=dict)  # schedule id → reason
    cancelled: dict[str, int] = field(default_factory=dict)  # schedule id → cancelled
    capacity_calls: list[tuple[str, int]] = field(default_factory=list)

    async def _register(self, schedule_id: str) -> None:
        if schedule_id in self.seen:
            return
        doc = await self.db["schedules"].find_one({"_id": schedule_id})
        if doc is None:
            raise NotFound()
        self.seen.add(schedule_id)
        for slot in doc["slots"]:
            self.slots.setdefault(slot["id"], [slot["capacity"], 0])
            self.schedule_of[slot["id"]] = schedule_id

    async def book(self, schedule_id: str, units: int = 1) -> None:
        """Patients book `units` in the first slot of a session."""
        await self._register(schedule_id)
        slot_id = next(s for s, sch in self.schedule_of.items() if sch == schedule_id)
        self.slots[slot_id][1] += units

    async def availability(self, schedule_ids: list[str]) -> Availability:
        return Availability(
            items=[
                ScheduleAvailability(
                    schedule_id=sid,
                    stopped=sid in self.stopped,
                    slots=[
                        SlotAvailability(id=slot_id, capacity=cap, remaining=max(0, cap - booked))
                        for slot_id, (cap, booked) in self.slots.items()
                        if self.schedule_of[slot_id] == sid
                    ],
                )
                for sid in schedule_ids
                if sid in self.seen
            ]
        )

    async def change_capacity(self, hospital_id: str, slot_id: str, delta: int) -> None:
        if slot_id not in self.slots:
            doc = await self.db["schedules"].find_one({"slots": {"$elemMatch": {"id": slot_id}}})
            if doc is None:
                raise NotFound()
            await self._register(doc["_id"])
        capacity, booked = self.slots[slot_id]
        if capacity + delta < booked:
            raise InvalidState()
        self.slots[slot_id][0] = capacity + delta
        self.capacity_calls.append((slot_id, delta))

    async def stop_schedule(self, hospital_id: str, schedule_id: str, reason: str) -> int:
        await self._register(schedule_id)
        self.stopped[schedule_id] = reason
        cancelled = 0
        for slot_id, sid in self.schedule_of.items():
            if sid == schedule_id:
                cancelled += self.slots[slot_id][1]
                self.slots[slot_id][1] = 0
        self.cancelled[schedule_id] = self.cancelled.get(schedule_id, 0) + cancelled
        return cancelled


def build_scheduler(
    kit: CatalogKit,
    booking: BookingDouble | None = None,
    *,
    fault: FaultPoint | None = None,
    batch: int = 500,
) -> Scheduler:
    return Scheduler(
        kit.repo,
        SchedulingRepository(kit.db),
        kit.service,
        booking or BookingDouble(kit.db),
        fault=fault,
        batch=batch,
    )


def weekly(
    world: World,
    weekdays: list[int],
    *,
    session: str = "am",
    start: str = "08:00",
    end: str = "10:00",
    slice_minutes: int = 30,
    capacity: int = 2,
    weeks: str = "every",
    valid_from: dt.date = dt.date(2026, 1, 1),
    valid_to: dt.date | None = None,
    doctor_id: str | None = None,
    fee_cents: int | None = None,
) -> TemplateCreateParams:
    return TemplateCreateParams.model_validate(
        {
            "hospital_id": world.hospital_id,
            "doctor_id": doctor_id or world.doctor_id,
            "weekdays": weekdays,
            "session": session,
            "start": start,
            "end": end,
            "slice_minutes": slice_minutes,
            "capacity_per_slice": capacity,
            "weeks": weeks,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "fee_cents": fee_cents,
        }
    )
