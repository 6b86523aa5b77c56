"""Subscribe messages against the real WeChat fake: templates, the quota ledger, WeChat's
answers, the access token across two notify processes, and 停诊 end to end from booking."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notify.templates import (
    KINDS,
    TemplateConfigError,
    appointment_fields,
    load_templates,
)
from shared.contracts.booking import BookParams
from shared.errors import ValidationFailed
from shared.storage.mongo import Document
from shared.wechat.fake import DEFAULT_TEMPLATES, miniprogram_pages
from shared.wechat.keywords import validate_keyword
from tests.booking_kit import Kit
from tests.booking_kit import local as booking_local
from tests.notify_kit import (
    Clock,
    Fake,
    Notify,
    Patient,
    StubOpenids,
    appointment,
    build_notify,
    event,
    grant,
    new_patient,
)

BOOKED = DEFAULT_TEMPLATES["booking_confirmed"].template_id
CANCELLED = DEFAULT_TEMPLATES["appointment_cancelled"].template_id

pytest_plugins = ["tests.notify_fixtures"]


@pytest.fixture
async def patient(fake: Fake, openids: StubOpenids) -> Patient:
    return await new_patient(fake, openids)


async def sent_to(fake: Fake, patient: Patient) -> list[dict[str, object]]:
    items = (await fake.control("GET", "messages", touser=patient.openid))["items"]
    return list(items)


async def remaining(notify: Notify, patient: Patient, kind: str) -> int:
    view = await notify.subscriptions.quota(patient.user_id)
    return next(item.remaining for item in view.items if item.kind == kind)


# templates


def test_dev_templates_cover_every_kind_with_the_fakes_ids() -> None:
    templates = load_templates(None)
    assert {t.kind: t.template_id for t in templates} == {
        kind: t.template_id for kind, t in DEFAULT_TEMPLATES.items()
    }


def test_every_page_a_notification_can_carry_is_a_page_of_app_json() -> None:
    pages = miniprogram_pages()
    templates = load_templates(None)
    assert {t.kind for t in templates} == set(KINDS)
    for template in templates:
        booked = appointment("u_1")
        _, page = template.render(appointment_fields(template.kind, booked))
        assert page is not None, f"{template.kind} opens no page"
        path, _, query = page.partition("?")
        assert path in pages, f"{template.kind} opens {path}, not a page of app.json"
        assert query == f"id={booked['id']}", "the detail page reads the appointment from ?id="


def test_unknown_keyword_type_or_field_refuses_to_start(tmp_path: Path) -> None:
    config = {"booking_confirmed": {"template_id": "t1", "keywords": {"colour1": "{doctor}"}}}
    with pytest.raises(TemplateConfigError, match="unknown keyword type 'colour'"):
        load_templates(json.dumps(config))
    config = {"booking_confirmed": {"template_id": "t1", "keywords": {"thing1": "{doktor}"}}}
    with pytest.raises(TemplateConfigError, match="unknown field"):
        load_templates(json.dumps(config))
    with pytest.raises(TemplateConfigError, match="unknown kind"):
        load_templates(json.dumps({"birthday": {"template_id": "t", "keywords": {}}}))
    path = tmp_path / "templates.json"
    path.write_text(
        json.dumps(
            {
                "visit_reminder": {
                    "template_id": "t9",
                    "page": "pages/a?id={id}",
                    "keywords": {"time1": "{visit_time}"},
                }
            }
        )
    )
    assert [t.template_id for t in load_templates(str(path))] == ["t9"]


# the ledger


async def test_accepts_add_quota_and_unknown_template_ids_are_refused(
    notify: Notify, patient: Patient
) -> None:
    view = await notify.subscriptions.record(
        patient.user_id, {BOOKED: "accept", CANCELLED: "reject"}
    )
    assert {i.kind: i.remaining for i in view.items}["booking_confirmed"] == 1
    await notify.subscriptions.record(patient.user_id, {BOOKED: "accept"})
    assert await remaining(notify, patient, "booking_confirmed") == 2
    assert await remaining(notify, patient, "appointment_cancelled") == 0
    with pytest.raises(ValidationFailed) as refused:
        await notify.subscriptions.record(patient.user_id, {"tmpl_nope": "accept"})
    assert "results.tmpl_nope" in refused.value.details["fields"]
    assert await remaining(notify, patient, "booking_confirmed") == 2


async def test_without_an_accept_nothing_is_sent(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    booked = event("appointment.booked", appointment(patient.user_id))
    await notify.messages.on_event(booked)
    assert await sent_to(fake, patient) == []
    entry = await notify.message_log.get(f"{booked.id}:booking_confirmed")
    assert entry is not None and entry["status"] == "skipped_no_quota"
    assert await fake.calls("subscribe_send") == 0


async def test_one_accept_sends_exactly_one_valid_message_and_spends_the_quota(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 1)
    booked = appointment(patient.user_id)
    await notify.messages.on_event(event("appointment.booked", booked))
    await notify.messages.on_event(event("appointment.booked", appointment(patient.user_id)))
    [message] = await sent_to(fake, patient)
    values = {key: entry["value"] for key, entry in message["data"].items()}  # type: ignore[attr-defined]
    assert values == {
        "thing1": "心血管内科 李明",
        "time2": "2026年12月2日 08:30",
        "name3": "张三",
        "character_string4": "7",
        "thing5": "请提前15分钟到院取号",
    }
    assert message["page"] == f"pages/appointment-detail/index?id={booked['id']}"
    assert await remaining(notify, patient, "booking_confirmed") == 0
    assert notify.metrics.messages.value("booking_confirmed", "sent") == 1


async def test_three_accepts_give_three_messages_over_three_bookings(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 3)
    for day in ("2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05"):
        await notify.messages.on_event(
            event("appointment.booked", appointment(patient.user_id, date=day))
        )
    assert len(await sent_to(fake, patient)) == 3
    assert await remaining(notify, patient, "booking_confirmed") == 0


async def test_a_redelivered_event_never_sends_twice(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 2)
    booked = event("appointment.booked", appointment(patient.user_id))
    await asyncio.gather(*[notify.messages.on_event(booked) for _ in range(3)])
    await notify.messages.on_event(booked)
    assert len(await sent_to(fake, patient)) == 1
    assert await remaining(notify, patient, "booking_confirmed") == 1


async def test_values_are_fitted_to_the_keyword_rules(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 1)
    long = appointment(
        patient.user_id,
        department={"id": "d", "name": "心血管内科介入治疗中心特需专家门诊部"},
        patient={"id": "p", "name": "欧阳娜娜娜娜娜娜娜娜娜娜", "id_number_masked": "x"},
    )
    await notify.messages.on_event(event("appointment.booked", long))
    [message] = await sent_to(fake, patient)
    data = {key: entry["value"] for key, entry in message["data"].items()}  # type: ignore[attr-defined]
    assert len(data["thing1"]) == 20 and len(data["name3"]) == 10
    assert all(validate_keyword(key, value) is None for key, value in data.items())


# WeChat's answers


async def test_43101_zeroes_the_templates_quota(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    for _ in range(3):
        await notify.subscriptions.record(patient.user_id, {BOOKED: "accept"})
    booked = event("appointment.booked", appointment(patient.user_id))
    await notify.messages.on_event(booked)  # WeChat's own count is 0: it refuses
    entry = await notify.message_log.get(f"{booked.id}:booking_confirmed")
    assert entry is not None and (entry["status"], entry["errcode"]) == ("failed", 43101)
    assert await remaining(notify, patient, "booking_confirmed") == 0


async def test_47003_is_a_configuration_fault_logged_counted_and_not_retried(
    notify: Notify, fake: Fake, patient: Patient, caplog: pytest.LogCaptureFixture
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 1)
    await fake.fail_next("subscribe_send", 47003)
    booked = event("appointment.booked", appointment(patient.user_id))
    with caplog.at_level(logging.ERROR, logger="guahao.notify.messages"):
        await notify.messages.on_event(booked)
    assert await fake.calls("subscribe_send") == 1 and notify.sleeps == []
    entry = await notify.message_log.get(f"{booked.id}:booking_confirmed")
    assert entry is not None and (entry["status"], entry["errcode"]) == ("config_fault", 47003)
    assert notify.metrics.config_faults.value("booking_confirmed") == 1
    assert any(
        r.levelno == logging.ERROR and "configuration fault" in r.message for r in caplog.records
    )
    assert await remaining(notify, patient, "booking_confirmed") == 1  # not the user's fault


async def test_wechat_busy_once_is_retried_and_delivered_once(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 1)
    await fake.fail_next("subscribe_send", -1)
    booked = event("appointment.booked", appointment(patient.user_id))
    await notify.messages.on_event(booked)
    assert len(await sent_to(fake, patient)) == 1
    assert notify.sleeps == [1.0]
    entry = await notify.message_log.get(f"{booked.id}:booking_confirmed")
    assert entry is not None and (entry["status"], entry["attempts"]) == ("sent", 2)
    assert await remaining(notify, patient, "booking_confirmed") == 0


async def test_wechat_unreachable_is_retried_with_backoff_then_refunded(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 1)
    await fake.fail_next("subscribe_send", "network", times=10)
    booked = event("appointment.booked", appointment(patient.user_id))
    await notify.messages.on_event(booked)
    assert notify.sleeps == [1.0, 2.0, 4.0]
    entry = await notify.message_log.get(f"{booked.id}:booking_confirmed")
    assert entry is not None and (entry["status"], entry["attempts"]) == ("failed", 4)
    assert await remaining(notify, patient, "booking_confirmed") == 1


async def test_a_user_auth_does_not_know_gets_nothing_and_keeps_the_quota(
    notify: Notify, fake: Fake, patient: Patient, openids: StubOpenids
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 1)
    del openids.openids[patient.user_id]
    await notify.messages.on_event(event("appointment.booked", appointment(patient.user_id)))
    assert await sent_to(fake, patient) == []
    assert await remaining(notify, patient, "booking_confirmed") == 1


# the access token


async def test_token_expired_by_wechats_clock_is_refreshed_and_the_send_succeeds(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    await grant(notify, fake, patient, "booking_confirmed", 2)
    await notify.messages.on_event(event("appointment.booked", appointment(patient.user_id)))
    await fake.advance(7200 + 60)  # WeChat expired it; the client still thinks it is fresh
    await notify.messages.on_event(event("appointment.booked", appointment(patient.user_id)))
    assert len(await sent_to(fake, patient)) == 2
    assert await fake.calls("stable_token") == 2
    assert notify.sleeps == []


async def test_two_notify_processes_never_cause_a_40001_for_each_other(
    mongo_db: AsyncDatabase[Document],
    http: aiohttp.ClientSession,
    fake: Fake,
    clock: Clock,
    openids: StubOpenids,
) -> None:
    first = await build_notify(mongo_db, http, fake, clock, openids)
    second = await build_notify(mongo_db, http, fake, clock, openids)
    patients = [await new_patient(fake, openids) for _ in range(10)]
    for p in patients:
        await grant(first, fake, p, "booking_confirmed", 2)
    await asyncio.gather(
        *[
            process.messages.on_event(event("appointment.booked", appointment(p.user_id)))
            for p in patients
            for process in (first, second)
        ]
    )
    assert len((await fake.control("GET", "messages"))["items"]) == 20
    # one token fetch per process and not one retried send: nobody's token was superseded
    assert await fake.calls("stable_token") == 2
    assert await fake.calls("subscribe_send") == 20


# 停诊, end to end from booking's own events


async def test_stop_clinic_tells_each_booked_patient_the_clinic_was_stopped(
    mongo_db: AsyncDatabase[Document], notify: Notify, fake: Fake, openids: StubOpenids
) -> None:
    kit = await Kit(mongo_db, booking_local(2026, 12, 1, 9)).setup()
    schedule = kit.schedule(booking_local(2026, 12, 2).date(), capacity=10)
    patients = [await new_patient(fake, openids) for _ in range(3)]
    for p in patients:
        await grant(notify, fake, p, "appointment_cancelled", 1)
        await kit.booker.book(
            p.user_id,
            BookParams(
                slot_id=schedule.slots[0].id,
                patient_id=kit.patients.add(p.user_id),
                idempotency_key=uuid.uuid4().hex,
            ),
        )
    await kit.admin.stop(kit.hospital_id, schedule.id, "医生外出会诊")
    for published in kit.publisher.events:
        await notify.messages.on_event(published)
    for p in patients:
        [message] = await sent_to(fake, p)
        assert message["template_id"] == CANCELLED
        reason = message["data"]["thing4"]["value"]  # type: ignore[index]
        assert reason.startswith("停诊") and "医生外出会诊" in reason


async def test_moved_message_names_the_previous_time(
    notify: Notify, fake: Fake, patient: Patient
) -> None:
    await grant(notify, fake, patient, "appointment_moved", 1)
    moved = appointment(patient.user_id, date="2026-12-03", start="10:00")
    await notify.messages.on_event(
        event(
            "appointment.rescheduled",
            moved,
            previous={
                "slot_id": "s0",
                "date": "2026-12-02",
                "start": "08:30",
                "end": "09:00",
                "seq_no": 7,
            },
        )
    )
    [message] = await sent_to(fake, patient)
    data = message["data"]
    assert data["time2"]["value"] == "2026年12月3日 10:00"  # type: ignore[index]
    assert data["thing4"]["value"] == "原定2026年12月2日 08:30"  # type: ignore[index]
