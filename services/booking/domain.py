"""The booking domain as types: the appointment life cycle, a clinic session's inventory, the
person a booking is for, and the per-person limits. No I/O here.

Life cycle (domain.md), with room for payment (`pending_payment`, issue 13):

    pending ─────────┐                       (a lottery entry waiting for the draw)
    pending_payment ─┼─▶ booked ──check-in──▶ checked_in ──done──▶ completed
                     │     │ cancel (patient / hospital / system)
                     └─────┴──────────────▶ cancelled
                           └─ end of day ─▶ no_show
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.contracts.catalog import BookingRules, PersonRef, ScheduleDefinition
from shared.errors import InvalidState
from shared.ids import new_id
from shared.rules import HOSPITAL_TZ, BookingWindow

Status = Literal[
    "pending", "pending_payment", "booked", "checked_in", "completed", "cancelled", "no_show"
]
CancelledBy = Literal["patient", "hospital", "system"]

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"pending_payment", "booked", "cancelled"}),
    "pending_payment": frozenset({"booked", "cancelled"}),
    "booked": frozenset({"checked_in", "cancelled", "no_show"}),
    "checked_in": frozenset({"completed"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
    "no_show": frozenset(),
}
# statuses that hold a unit of a slot and count towards the per-person limits
HOLDING: frozenset[str] = frozenset({"pending", "pending_payment", "booked"})


def check_transition(current: str, target: str) -> None:
    """Refuse a move the life cycle does not allow (409 INVALID_STATE)."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidState(status=current)


def appointment_id_for(user_id: str, idempotency_key: str | None) -> str:
    """Retries of one Idempotency-Key by one user land on the same appointment id."""
    if idempotency_key is None:
        return new_id("apt")
    digest = hashlib.sha256(f"{user_id}\n{idempotency_key}".encode()).hexdigest()
    return f"apt_{digest[:24]}"


def request_hash(slot_id: str, patient_id: str) -> str:
    """What a replay of an Idempotency-Key must repeat to get the first result."""
    return hashlib.sha256(f"{slot_id}|{patient_id}".encode()).hexdigest()


def iso_local(value: dt.datetime) -> str:
    return value.astimezone(HOSPITAL_TZ).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PatientRef:
    """What booking keeps of a patient profile (fed by auth's `patient.*` events)."""

    id: str
    user_id: str
    id_hash: str  # keyed hash of the ID number: the person, across accounts
    name: str
    id_number_masked: str

    def snapshot(self) -> dict[str, str]:
        """The patient as an appointment shows it (never the full ID number)."""
        return {"id": self.id, "name": self.name, "id_number_masked": self.id_number_masked}


@dataclass(frozen=True)
class SlotInfo:
    """The unchanging facts of one slot (a time slice of a session)."""

    id: str
    schedule_id: str
    hospital_id: str
    doctor: PersonRef
    department: PersonRef
    date: str
    session: str
    start: str
    end: str
    fee_cents: int

    @property
    def doctor_id(self) -> str:
        return self.doctor.id

    @property
    def department_id(self) -> str:
        return self.department.id

    def window(self, rules: BookingRules) -> BookingWindow:
        return BookingWindow(rules, dt.date.fromisoformat(self.date), self.session, self.start)


@dataclass
class SlotStock:
    """A slot's inventory inside its session document."""

    capacity: int
    booked: int
    holders: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return max(0, self.capacity - self.booked)


@dataclass
class Session:
    """A clinic session (出诊) as booking holds it: its slots' stock, its 就诊序号 counter and
    whether it was stopped (停诊). One document, so reserving a unit and numbering the visit
    is one write, and stopping is one write."""

    id: str
    hospital_id: str
    doctor: PersonRef
    department: PersonRef
    date: str
    session: str
    fee_cents: int
    stopped: bool
    stop_reason: str | None
    slots: dict[str, tuple[str, str]]  # slot id → (start, end), in time order
    stock: dict[str, SlotStock]
    version: int = 0

    def slot(self, slot_id: str) -> SlotInfo:
        start, end = self.slots[slot_id]
        return SlotInfo(
            id=slot_id,
            schedule_id=self.id,
            hospital_id=self.hospital_id,
            doctor=self.doctor,
            department=self.department,
            date=self.date,
            session=self.session,
            start=start,
            end=end,
            fee_cents=self.fee_cents,
        )

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Session:
        slots = sorted(doc["slots"].items(), key=lambda item: item[1]["start"])
        return cls(
            id=doc["_id"],
            hospital_id=doc["hospital_id"],
            doctor=PersonRef.model_validate(doc["doctor"]),
            department=PersonRef.model_validate(doc["department"]),
            date=doc["date"],
            session=doc["session"],
            fee_cents=doc["fee_cents"],
            stopped=bool(doc["stopped"]),
            stop_reason=doc.get("stop_reason"),
            slots={sid: (s["start"], s["end"]) for sid, s in slots},
            stock={
                sid: SlotStock(int(s["capacity"]), int(s["booked"]), list(s["holders"]))
                for sid, s in slots
            },
            version=int(doc.get("v", 0)),
        )

    @staticmethod
    def new_doc(definition: ScheduleDefinition) -> dict[str, Any]:
        """The document that starts holding a published schedule's inventory."""
        return {
            "_id": definition.id,
            "hospital_id": definition.hospital_id,
            "doctor": definition.doctor.model_dump(exclude_none=True),
            "department": definition.department.model_dump(exclude_none=True),
            "doctor_id": definition.doctor.id,
            "department_id": definition.department.id,
            "date": definition.date.isoformat(),
            "session": definition.session,
            "fee_cents": definition.fee_cents,
            "stopped": False,
            "seq": 0,
            "v": 0,
            "slots": {
                s.id: {
                    "start": s.start,
                    "end": s.end,
                    "capacity": s.capacity,
                    "booked": 0,
                    "holders": [],
                }
                for s in definition.slots
            },
        }


@dataclass(frozen=True)
class PersonLimits:
    """The per-person rules a booking's hold on the person document enforces."""

    hospital_id: str
    day_key: str  # hospital|department|date
    per_department_per_day: int
    max_active: int

    @classmethod
    def of(cls, slot: SlotInfo, rules: BookingRules) -> PersonLimits:
        return cls(
            slot.hospital_id,
            day_key(slot.hospital_id, slot.department_id, slot.date),
            rules.per_department_per_day,
            rules.max_active,
        )


def day_key(hospital_id: str, department_id: str, date: str) -> str:
    return f"{hospital_id}|{department_id}|{date}"


def ban_until(
    no_show_dates: list[str], rules: BookingRules, now: dt.datetime
) -> dt.datetime | None:
    """The end of a no-show ban in force at `now`, if any (domain.md: `no_show_limit` within
    `no_show_window_days` bans for `ban_days` after the last one)."""
    today = now.astimezone(HOSPITAL_TZ).date()
    since = (today - dt.timedelta(days=rules.no_show_window_days)).isoformat()
    recent = sorted(d for d in no_show_dates if d >= since)
    if len(recent) < rules.no_show_limit or rules.ban_days == 0:
        return None
    last = dt.date.fromisoformat(recent[-1])
    until = dt.datetime.combine(
        last + dt.timedelta(days=rules.ban_days + 1), dt.time(), tzinfo=HOSPITAL_TZ
    )
    return until if until > now else None
