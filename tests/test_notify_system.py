"""Issue 4 acceptance through the gateway: subscriptions and messages from real bookings,
停诊 messages, and the webhook admin API. Skipped until the gateway routes the notify
methods and the dev stack runs notify."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from shared.rules import HOSPITAL_TZ
from shared.wechat.fake import DEFAULT_TEMPLATES
from tests.harness import Api
from tests.notify_kit import Receiver, verify
from tests.system_kit import book, eventually, id_number, make_hospital, make_schedule

BOOKED = DEFAULT_TEMPLATES["booking_confirmed"].template_id
CANCELLED = DEFAULT_TEMPLATES["appointment_cancelled"].template_id
DAY_AFTER = (dt.datetime.now(HOSPITAL_TZ) + dt.timedelta(days=2)).date()


async def subscribed_patient(
    api: Api, n: int, template_id: str, accepts: int
) -> tuple[str, str, str]:
    """A logged-in patient with a profile who accepted `template_id` `accepts` times (our
    ledger through the API, WeChat's own count through the fake)."""
    openid = f"o_{uuid.uuid4().hex[:12]}"
    token = await api.patient_token(openid)
    profile = await api.request(
        "POST",
        "/patients",
        token=token,
        json={
            "name": "患者",
            "id_number": id_number(n),
            "phone": "13800000000",
            "relation": "self",
        },
    )
    assert profile.status == 201, profile.body
    for _ in range(accepts):
        granted = await api.request(
            "POST", "/subscriptions", token=token, json={"results": {template_id: "accept"}}
        )
        assert granted.status == 200, granted.body
    await api.fake("POST", "quota", openid=openid, template_id=template_id, count=accepts)
    return token, profile.body["id"], openid


async def messages(api: Api, openid: str) -> list[dict[str, Any]]:
    return list((await api.fake("GET", "messages", touser=openid))["items"])


async def test_templates_are_public_and_unknown_template_ids_are_refused(api: Api) -> None:
    templates = await api.request("GET", "/subscriptions/templates")
    assert templates.status == 200
    assert {i["kind"] for i in templates.body["items"]} == set(DEFAULT_TEMPLATES)
    token = await api.patient_token()
    refused = await api.request(
        "POST", "/subscriptions", token=token, json={"results": {"tmpl_nope": "accept"}}
    )
    assert refused.status == 422 and refused.error_code == "VALIDATION_FAILED"
    quota = await api.request("GET", "/subscriptions", token=token)
    assert quota.status == 200 and all(i["remaining"] == 0 for i in quota.body["items"])


async def test_one_accept_one_message_and_the_next_booking_still_succeeds(api: Api) -> None:
    hospital = await make_hospital(api)
    first = await make_schedule(api, hospital, capacity=5, date=DAY_AFTER)
    second = await make_schedule(api, hospital, capacity=5, date=DAY_AFTER + dt.timedelta(days=1))
    token, patient_id, openid = await subscribed_patient(api, 4101, BOOKED, 1)
    assert (await book(api, token, first["slots"][0]["id"], patient_id)).status == 201

    async def one_message() -> bool:
        return len(await messages(api, openid)) == 1

    await eventually(one_message)
    quota = await api.request("GET", "/subscriptions", token=token)
    assert {i["kind"]: i["remaining"] for i in quota.body["items"]}["booking_confirmed"] == 0
    assert (await book(api, token, second["slots"][0]["id"], patient_id)).status == 201
    await asyncio.sleep(2)
    [message] = await messages(api, openid)
    assert message["template_id"] == BOOKED


async def test_stop_clinic_sends_three_messages_that_say_so(api: Api) -> None:
    hospital = await make_hospital(api)
    schedule = await make_schedule(api, hospital, capacity=5, date=DAY_AFTER)
    patients = [await subscribed_patient(api, 4200 + n, CANCELLED, 1) for n in range(3)]
    for token, patient_id, _ in patients:
        assert (await book(api, token, schedule["slots"][0]["id"], patient_id)).status == 201
    stopped = await api.request(
        "POST",
        f"/admin/hospitals/{hospital.id}/schedules/{schedule['id']}/stop",
        token=hospital.staff_token,
        json={"reason": "医生外出会诊"},
    )
    assert stopped.status == 200, stopped.body
    for _, _, openid in patients:

        async def arrived(openid: str = openid) -> bool:
            return len(await messages(api, openid)) == 1

        await eventually(arrived)
        [message] = await messages(api, openid)
        assert message["template_id"] == CANCELLED
        assert message["data"]["thing4"]["value"].startswith("停诊")


async def test_webhook_admin_api_and_signed_delivery(api: Api) -> None:
    hospital = await make_hospital(api)
    base = f"/admin/hospitals/{hospital.id}/webhooks"
    assert api.stack.env.get("WEBHOOK_ALLOW_HTTP") == "1", "the harness allows local receivers"
    receiver = await Receiver().start()
    try:
        created = await api.request(
            "POST",
            base,
            token=hospital.staff_token,
            json={"url": receiver.url, "events": ["appointment.*"]},
        )
        assert created.status == 201, created.body
        hook = created.body
        listed = await api.request("GET", base, token=hospital.staff_token)
        assert [w["id"] for w in listed.body["items"]] == [hook["id"]]
        assert "secret" not in listed.body["items"][0]
        schedule = await make_schedule(api, hospital, capacity=5, date=DAY_AFTER)
        token, patient_id, _ = await subscribed_patient(api, 4301, BOOKED, 0)
        assert (await book(api, token, schedule["slots"][0]["id"], patient_id)).status == 201
        [got] = await receiver.wait_for(1, timeout=20)
        assert verify(hook["secret"], got.headers, got.body)
        assert got.event["type"] == "appointment.booked"
        deliveries = await api.request(
            "GET", f"{base}/{hook['id']}/deliveries", token=hospital.staff_token
        )
        assert deliveries.status == 200
        [delivery] = deliveries.body["items"]
        replay = await api.request(
            "POST",
            f"{base}/{hook['id']}/deliveries/{delivery['id']}/redeliver",
            token=hospital.staff_token,
        )
        assert replay.status == 200 and replay.body["status"] == "pending"
        again = await receiver.wait_for(2, timeout=20)
        assert again[1].event["id"] == got.event["id"]
        rotated = await api.request(
            "POST", f"{base}/{hook['id']}/rotate-secret", token=hospital.staff_token
        )
        assert rotated.status == 200 and rotated.body["secret"] != hook["secret"]
        other = await make_hospital(api)
        foreign = await api.request(
            "GET", f"{base}/{hook['id']}/deliveries", token=other.staff_token
        )
        assert foreign.status == 404
        deleted = await api.request("DELETE", f"{base}/{hook['id']}", token=hospital.staff_token)
        assert deleted.status in (200, 204)
    finally:
        await receiver.close()
