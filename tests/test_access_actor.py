"""Service-side access checks per role, and the actor they stamp on events."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from shared.access import (
    require_hospital,
    require_hospital_admin,
    require_hospital_desk,
    require_patient,
)
from shared.context import CallContext, Caller
from shared.errors import Forbidden, NotFound
from shared.messaging.events import EventEnvelope, new_event

DESK = Caller(user_id="s_d", role="desk", hospital_id="h_1")
ADMIN = Caller(user_id="s_a", role="hospital_admin", hospital_id="h_1")
ROOT = Caller(user_id="s_root", role="platform_admin")


def ctx(caller: Caller | None) -> CallContext:
    return CallContext("r1", caller=caller)


def test_desk_passes_front_desk_checks_and_fails_admin_ones() -> None:
    assert require_hospital_desk(ctx(DESK), "h_1") == DESK
    assert require_hospital(ctx(DESK), "h_1") == DESK
    with pytest.raises(Forbidden):
        require_hospital_admin(ctx(DESK), "h_1")
    for check in (require_hospital_desk, require_hospital_admin):
        with pytest.raises(NotFound):
            check(ctx(DESK), "h_2")
        with pytest.raises(NotFound):
            check(ctx(ADMIN), "h_2")
        assert check(ctx(ROOT), "h_2") == ROOT
        with pytest.raises(Forbidden):
            check(ctx(Caller(user_id="u_1", role="patient")), "h_1")


def test_events_created_after_a_staff_check_name_the_actor() -> None:
    def serve(caller: Caller) -> EventEnvelope:
        require_hospital_desk(ctx(caller), "h_1")
        return new_event("appointment.checked_in", "h_1", {"appointment": {"id": "a"}})

    event = contextvars.copy_context().run(serve, DESK)
    assert event.actor is not None and (event.actor.id, event.actor.role) == ("s_d", "desk")
    assert event.model_dump()["actor"] == {"id": "s_d", "role": "desk"}


def test_events_without_a_staff_caller_have_no_actor_field() -> None:
    def serve() -> EventEnvelope:
        require_patient(ctx(Caller(user_id="u_1", role="patient")))
        return new_event("appointment.booked", "h_1", {})

    event = contextvars.copy_context().run(serve)
    assert event.actor is None
    assert "actor" not in event.model_dump() and '"actor"' not in event.model_dump_json()
    assert EventEnvelope.model_validate(event.model_dump()) == event


async def test_the_actor_of_one_request_does_not_leak_into_another() -> None:
    async def request(caller: Caller | None) -> EventEnvelope:
        if caller is not None:
            require_hospital_desk(ctx(caller), "h_1")
        await asyncio.sleep(0)
        return new_event("schedule.stopped", "h_1", {})

    staff, internal = await asyncio.gather(
        asyncio.create_task(request(ADMIN)), asyncio.create_task(request(None))
    )
    assert staff.actor is not None and staff.actor.id == "s_a"
    assert internal.actor is None
