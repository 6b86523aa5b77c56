"""What one appointment event costs notify, counted from the driver's command monitoring:
one delivery (one handler call) does the webhooks, the reminder and the message, in at most
three store operations for a hospital without webhooks; a redelivery sends nothing again."""

from __future__ import annotations

import secrets

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notify.handlers import NotifyEvents
from services.notify.repository import Deliveries, Webhooks
from services.notify.webhooks import SecretBox, UrlPolicy, WebhookService
from shared.storage.mongo import Document
from shared.storage.opcount import counting
from tests.notify_kit import (
    Clock,
    Fake,
    StubOpenids,
    appointment,
    build_notify,
    event,
    grant,
    new_patient,
)

pytest_plugins = ["tests.notify_fixtures"]
HOSPITAL = "h_budget"


async def events_of(
    db: AsyncDatabase[Document],
    http: aiohttp.ClientSession,
    fake: Fake,
    clock: Clock,
    openids: StubOpenids,
) -> tuple[NotifyEvents, object]:
    notify = await build_notify(db, http, fake, clock, openids)
    hooks = WebhookService(
        Webhooks(db),
        Deliveries(db),
        SecretBox(secrets.token_bytes(32)),
        UrlPolicy(allow_http=True, allow_private=True),
        clock,
    )
    return NotifyEvents(hooks, notify.reminders, notify.messages), notify


@pytest.mark.parametrize("quota", [0, 1])
async def test_an_appointment_event_costs_at_most_three_store_operations(
    counted_db: AsyncDatabase[Document],
    http: aiohttp.ClientSession,
    fake: Fake,
    clock: Clock,
    openids: StubOpenids,
    quota: int,
) -> None:
    events, notify = await events_of(counted_db, http, fake, clock, openids)
    await events.on_event(
        event("appointment.booked", appointment("u_warm"), hospital_id=HOSPITAL)
    )  # this replica read the hospital's hooks
    patient = await new_patient(fake, openids)
    if quota:
        await grant(notify, fake, patient, "booking_confirmed", quota)  # type: ignore[arg-type]
    booked = event("appointment.booked", appointment(patient.user_id), hospital_id=HOSPITAL)
    with counting() as ops:
        await events.on_event(booked)
    assert len(ops) <= 3, ops
    sent = (await fake.control("GET", "messages", touser=patient.openid))["items"]
    assert len(sent) == quota
    with counting() as again:
        await events.on_event(booked)  # the outbox may publish twice
    assert len(again) <= 3, again
    assert len((await fake.control("GET", "messages", touser=patient.openid))["items"]) == quota
