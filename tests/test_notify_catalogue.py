"""The HIS section of the README is the generator's output, and the generator's examples
are what the services really publish."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.notify import catalogue
from shared.contracts.booking import BookParams
from shared.contracts.events import EVENT_DATA, INTERNAL_TYPES
from shared.storage.mongo import Document
from tests.booking_kit import Kit, local

README = Path(__file__).resolve().parent.parent / "README.md"
API_TYPES = {
    "appointment.booked",
    "appointment.cancelled",
    "appointment.rescheduled",
    "appointment.checked_in",
    "appointment.no_show",
    "schedule.published",
    "schedule.stopped",
    "schedule.capacity_changed",
    "doctor.updated",
}


def shape(value: Any) -> Any:
    """The keys of nested objects (values ignored)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__ if isinstance(value, list) else None


def test_readme_carries_exactly_the_generated_section() -> None:
    section = catalogue.render()
    text = README.read_text(encoding="utf-8")
    assert section in text, "run `python -m services.notify.catalogue` and paste it into README.md"
    assert text.count(catalogue.TITLE) == 1


def test_every_event_type_of_the_contract_has_an_example_and_a_line() -> None:
    types = [e.type for e in catalogue.examples()]
    assert API_TYPES <= set(types) and len(types) == len(set(types))
    assert set(types) == set(catalogue.WHEN)
    assert all(e.hospital_id == catalogue.HOSPITAL_ID for e in catalogue.examples())


async def test_hand_written_examples_match_what_booking_publishes(
    mongo_db: AsyncDatabase[Document],
) -> None:
    kit = await Kit(mongo_db, local(2026, 12, 1, 9)).setup()
    schedule = kit.schedule(dt.date(2026, 12, 2), capacity=3)
    await kit.booker.book(
        "u_1",
        BookParams(
            slot_id=schedule.slots[0].id,
            patient_id=kit.patients.add("u_1"),
            idempotency_key=uuid.uuid4().hex,
        ),
    )
    await kit.admin.change_capacity(kit.hospital_id, schedule.slots[0].id, 1)
    await kit.admin.stop(kit.hospital_id, schedule.id, "医生外出会诊")
    real = {e.type: e for e in kit.publisher.events}
    for example in catalogue.examples():
        if example.type in real:
            assert shape(example.data) == shape(real[example.type].data), example.type


def test_every_catalogue_example_is_its_type_s_model() -> None:
    """The README's examples are instances of the event models (shared/contracts/events.py),
    field for field: a model change without a catalogue change (or back) fails here."""
    for example in catalogue.examples():
        model = EVENT_DATA[example.type]
        parsed = model.model_validate(example.data)
        assert parsed.model_dump(mode="json", exclude_none=True) == example.data, example.type
    hospital_facing = set(EVENT_DATA) - INTERNAL_TYPES - {"waitlist.joined", "waitlist.promoted"}
    assert hospital_facing <= {e.type for e in catalogue.examples()}


async def test_what_booking_publishes_is_its_type_s_model(
    mongo_db: AsyncDatabase[Document],
) -> None:
    kit = await Kit(mongo_db, local(2026, 12, 1, 9)).setup()
    schedule = kit.schedule(dt.date(2026, 12, 2), capacity=2, starts=("08:00", "08:30"))
    user = "u_typed"
    booked, _ = await kit.booker.book(
        user,
        BookParams(
            slot_id=schedule.slots[0].id,
            patient_id=kit.patients.add(user),
            idempotency_key=uuid.uuid4().hex,
        ),
    )
    await kit.lifecycle.move_by_hospital(kit.hospital_id, booked.id, schedule.slots[1].id)
    await kit.lifecycle.cancel_by_hospital(kit.hospital_id, booked.id, "医生调班")
    await kit.admin.change_capacity(kit.hospital_id, schedule.slots[0].id, 1)
    await kit.admin.stop(kit.hospital_id, schedule.id, "停诊")
    assert {e.type for e in kit.publisher.events} >= {
        "appointment.booked",
        "appointment.rescheduled",
        "appointment.cancelled",
        "schedule.capacity_changed",
        "schedule.stopped",
    }
    for event in kit.publisher.events:
        EVENT_DATA[event.type].model_validate(event.data)
