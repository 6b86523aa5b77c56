"""Issue 14 through the real gateway, RabbitMQ, nx-27017 and the WeChat fake: a template
becomes bookable sessions, leave cancels the booked patient and notifies them like 停诊,
and the statistics follow from the events, as JSON and as CSV."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from shared.rules import HOSPITAL_TZ
from shared.wechat.fake import DEFAULT_TEMPLATES
from tests.harness import Api
from tests.system_kit import book, eventually, make_hospital

CANCELLED = DEFAULT_TEMPLATES["appointment_cancelled"].template_id
DAY_AFTER = (dt.datetime.now(HOSPITAL_TZ) + dt.timedelta(days=2)).date()


async def test_template_to_booking_to_leave_to_statistics(api: Api) -> None:
    from tests.test_notify_system import messages, subscribed_patient

    h = await make_hospital(api)
    base = f"/admin/hospitals/{h.id}"
    created = await api.request(
        "POST",
        f"{base}/doctors/{h.doctor_id}/templates",
        token=h.staff_token,
        json={
            "weekdays": [DAY_AFTER.isoweekday()],
            "session": "am",
            "start": "08:00",
            "end": "09:00",
            "slice_minutes": 30,
            "capacity_per_slice": 2,
            "clinic_type": "expert",
            "valid_from": DAY_AFTER.isoformat(),
        },
    )
    assert created.status == 201, created.body
    assert created.body["regeneration"]["created"] >= 1
    overlapping = await api.request(
        "POST",
        f"{base}/doctors/{h.doctor_id}/templates",
        token=h.staff_token,
        json={
            "weekdays": [DAY_AFTER.isoweekday()],
            "session": "am",
            "start": "08:00",
            "end": "09:00",
            "slice_minutes": 30,
            "capacity_per_slice": 2,
            "valid_from": DAY_AFTER.isoformat(),
        },
    )
    assert (
        overlapping.status == 422 and "weekdays" in overlapping.body["error"]["details"]["fields"]
    )

    listed = await api.request(
        "GET",
        f"/doctors/{h.doctor_id}/schedules",
        params={"from": DAY_AFTER.isoformat(), "to": DAY_AFTER.isoformat()},
    )
    assert listed.status == 200, listed.body
    (session,) = listed.body["items"]
    assert [(s["start"], s["capacity"]) for s in session["slots"]] == [("08:00", 2), ("08:30", 2)]

    preview = await api.request(
        "POST",
        f"{base}/schedules:preview",
        token=h.staff_token,
        params={
            "from": DAY_AFTER.isoformat(),
            "to": (DAY_AFTER + dt.timedelta(days=13)).isoformat(),
        },
    )
    assert preview.status == 200, preview.body
    assert {i["action"] for i in preview.body["items"]} <= {"keep", "create"}

    token, patient_id, openid = await subscribed_patient(api, 5101, CANCELLED, 1)
    booked = await book(api, token, session["slots"][0]["id"], patient_id)
    assert booked.status == 201, booked.body

    query = {"from": DAY_AFTER.isoformat(), "to": DAY_AFTER.isoformat(), "group_by": "doctor"}

    async def stats() -> dict[str, Any]:
        resp = await api.request("GET", f"{base}/stats", token=h.staff_token, params=query)
        assert resp.status == 200, resp.body
        return dict(resp.body["items"][0]) if resp.body["items"] else {}

    async def counted_booking() -> bool:
        row = await stats()
        return row.get("booked") == 1 and row.get("capacity") == 4

    await eventually(counted_booking)
    row = await stats()
    assert (row["key"], row["name"], row["utilization"]) == (h.doctor_id, "王医生", 0.25)

    leave = await api.request(
        "POST",
        f"{base}/doctors/{h.doctor_id}/leave",
        token=h.staff_token,
        json={"from": DAY_AFTER.isoformat(), "to": DAY_AFTER.isoformat(), "reason": "外出会诊"},
    )
    assert leave.status == 201, leave.body
    assert leave.body["stopped"] == [session["id"]] and leave.body["cancelled"] == 1
    mine = await api.request("GET", f"/appointments/{booked.body['id']}", token=token)
    assert mine.body["status"] == "cancelled" and mine.body["cancelled_by"] == "hospital"
    assert "外出会诊" in mine.body["reason"]

    async def notified() -> bool:
        return len(await messages(api, openid)) == 1

    await eventually(notified)
    [message] = await messages(api, openid)
    assert message["template_id"] == CANCELLED
    assert message["data"]["thing4"]["value"].startswith("停诊")

    async def counted_leave() -> bool:
        row = await stats()
        return row.get("cancelled_by_hospital") == 1 and row.get("capacity") == 0

    await eventually(counted_leave)
    csv = await api.request(
        "GET", f"{base}/stats", token=h.staff_token, params=query, headers={"Accept": "text/csv"}
    )
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.body.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("key,name,booked,cancelled_by_patient,cancelled_by_hospital")
    assert lines[1].startswith(f"{h.doctor_id},王医生,1,0,1,")

    # the stopped session stays listed as 停诊; the generation job does not replace it
    await asyncio.sleep(6)
    again = await api.request(
        "GET",
        f"/doctors/{h.doctor_id}/schedules",
        params={"from": DAY_AFTER.isoformat(), "to": DAY_AFTER.isoformat()},
    )
    assert [(s["id"], s["status"]) for s in again.body["items"]] == [(session["id"], "stopped")]
