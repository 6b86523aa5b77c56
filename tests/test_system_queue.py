"""The live queue (候诊叫号) through the real gateway, RabbitMQ, nx-27017 and the WeChat fake:
desk staff check patients in and call them, the patient's /queue moves, another hospital's
staff get 404, the waiting-room display shows masked names only, and `queue_near` reaches
the patient's phone."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from shared.wechat.fake import DEFAULT_TEMPLATES
from tests.harness import Api
from tests.system_kit import book, eventually, make_hospital, todays_session
from tests.test_notify_system import messages, subscribed_patient
from tests.test_system_staff import add_staff, audit_until

NEAR = DEFAULT_TEMPLATES["queue_near"].template_id


async def test_desk_calls_the_queue_and_the_patient_sees_it_move(
    api: Api, hospital_events: Any
) -> None:
    h, other = await make_hospital(api), await make_hospital(api)
    await hospital_events.bind(h.id)
    desk, other_desk = await add_staff(api, h, "desk"), await add_staff(api, other, "desk")
    session = await todays_session(api, h, capacity=10)
    sid, slot = session["id"], session["slots"][0]["id"]
    patients: list[tuple[str, str, str]] = []  # (token, appointment id, openid)
    for n in range(6):
        token, patient_id, openid = await subscribed_patient(api, 7300 + n, NEAR, 1)
        booked = await book(api, token, slot, patient_id)
        assert booked.status == 201, booked.body
        patients.append((token, booked.body["id"], openid))
    base = f"/admin/hospitals/{h.id}"
    queue = f"{base}/schedules/{sid}/queue"

    async def mine(i: int) -> dict[str, Any]:
        token, aid, _ = patients[i]
        resp = await api.request("GET", f"/appointments/{aid}/queue", token=token)
        assert resp.status == 200, resp.body
        return dict(resp.body)

    assert (await mine(1))["status"] == "not_checked_in"
    for _, aid, _ in patients:
        checked = await api.request(
            "POST", f"{base}/appointments/{aid}/check-in", token=desk["token"]
        )
        assert checked.status == 200, checked.body
    assert await mine(1) == {
        "status": "waiting",
        "position": 2,
        "ahead": 1,
        "seq_no": 2,
        "eta_minutes": 5,
        "now_serving_seq": None,
        "room": None,
    }
    # another patient cannot read it
    foreign = await api.request(
        "GET", f"/appointments/{patients[1][1]}/queue", token=patients[0][0]
    )
    assert foreign.status == 404

    called = await api.request("POST", f"{queue}/call-next", token=desk["token"])
    assert called.status == 200, called.body
    assert (called.body["id"], called.body["seq_no"]) == (patients[0][1], 1)
    assert called.body["queue"]["state"] == "called" and called.body["queue"]["room"] == "1"
    moved = await mine(1)
    assert (moved["position"], moved["ahead"], moved["now_serving_seq"]) == (1, 0, 1)
    second = await api.request(
        "POST", f"{queue}/call-next", token=desk["token"], json={"room": "2诊室"}
    )
    assert second.status == 200 and second.body["queue"]["room"] == "2诊室"
    assert (await mine(1))["status"] == "called" and (await mine(1))["room"] == "2诊室"

    view = await api.request("GET", queue, token=desk["token"])
    assert view.status == 200, view.body
    assert [e["seq_no"] for e in view.body["now_serving"]] == [2, 1]
    assert [e["seq_no"] for e in view.body["waiting"]] == [3, 4, 5, 6]
    assert {r["room"] for r in view.body["rooms"]} == {"1", "2诊室"}

    done = await api.request("POST", f"{queue}/{patients[0][1]}/done", token=desk["token"])
    assert done.status == 200 and done.body["status"] == "completed"
    shown = await api.request("GET", f"/appointments/{patients[0][1]}", token=patients[0][0])
    assert shown.body["status"] == "completed"
    skipped = await api.request("POST", f"{queue}/{patients[1][1]}/skip", token=desk["token"])
    assert skipped.status == 200 and skipped.body["queue"]["state"] == "skipped"
    recalled = await api.request(
        "POST", f"{queue}/{patients[1][1]}/recall", token=desk["token"], json={}
    )
    assert recalled.status == 200 and recalled.body["queue"]["calls"] == 2

    # bad input is refused field by field; nothing is called
    for body in ({"room": ""}, {"room": 3}, {"room": "1", "desk": "x"}, {"room": "x" * 21}):
        refused = await api.request("POST", f"{queue}/call-next", token=desk["token"], json=body)
        assert refused.status == 422, (body, refused.body)
    again = await api.request("POST", f"{queue}/{patients[0][1]}/done", token=desk["token"])
    assert again.status == 409 and again.error_code == "INVALID_STATE"

    # hospital A's queue is nobody's business at hospital B (and the other way round)
    for method, path in (
        ("GET", queue),
        ("POST", f"{queue}/call-next"),
        ("POST", f"{queue}/{patients[2][1]}/skip"),
    ):
        hidden = await api.request(method, path, token=other_desk["token"], json={})
        assert hidden.status == 404, (path, hidden.body)
    crossed = await api.request(
        "GET", f"/admin/hospitals/{other.id}/schedules/{sid}/queue", token=other_desk["token"]
    )
    assert crossed.status == 404

    # the waiting-room display: no login, masked names, no ids
    display = await api.request("GET", f"/api/v1/display/{h.id}/{sid}")
    assert display.status == 200, display.body
    assert display.body["waiting_count"] == 4
    assert [(s["room"], s["seq_no"], s["name"]) for s in display.body["now_serving"]] == [
        ("2诊室", 2, "患*")
    ]
    assert [w["seq_no"] for w in display.body["next"]] == [3, 4, 5, 6]
    assert {w["name"] for w in display.body["next"]} == {"患*"}
    text = json.dumps(display.body, ensure_ascii=False)
    assert "患者" not in text and not any(aid in text for _, aid, _ in patients)
    for path in (f"/api/v1/display/{h.id}/sch_unknown", f"/api/v1/display/{other.id}/{sid}"):
        assert (await api.request("GET", path)).status == 404

    # queue_near: each patient once, when 3 or fewer were ahead (№2–№5 at the first call,
    # №6 at the second); №1 was called first and never waited behind anyone
    async def near(i: int) -> list[dict[str, Any]]:
        return [m for m in await messages(api, patients[i][2]) if m["template_id"] == NEAR]

    for i in range(1, 6):

        async def told_once(i: int = i) -> bool:
            return bool(await near(i))

        await eventually(told_once)
        assert len(await near(i)) == 1
    told = (await near(4))[0]
    assert told["page"] == f"pages/appointment-detail/index?id={patients[4][1]}"
    assert told["data"]["thing5"]["value"] == "前面还有3人，请到诊室附近候诊"
    assert told["data"]["character_string4"]["value"] == "5"
    assert (await near(5))[0]["data"]["thing5"]["value"] == "前面还有3人，请到诊室附近候诊"
    assert await near(0) == []

    # the hospital's events (at least once each: dedupe by id) until the queue's are in
    distinct: dict[str, Any] = {}
    wanted = Counter(
        {"queue.called": 3, "queue.near": 5, "queue.skipped": 1, "appointment.completed": 1}
    )

    async def queue_events_in() -> bool:
        for m in await hospital_events.collect(until=30, timeout=0.5):
            distinct[m.message_id] = json.loads(m.body)
        return not wanted - Counter(e["type"] for e in distinct.values())

    await eventually(queue_events_in)
    called_events = sorted(
        (e for e in distinct.values() if e["type"] == "queue.called"),
        key=lambda e: e["occurred_at"],
    )
    assert [(e["data"]["queue"]["seq_no"], e["data"]["queue"]["room"]) for e in called_events] == [
        (1, "1"),
        (2, "2诊室"),
        (2, "2诊室"),
    ]
    assert [e["data"]["queue"]["recall"] for e in called_events] == [False, False, True]
    types = [e["type"] for e in distinct.values()]
    assert types.count("queue.near") == 5 and types.count("queue.skipped") == 1
    completed = next(e for e in distinct.values() if e["type"] == "appointment.completed")
    assert (
        completed["data"]["queue"]["room"] == "1"
        and completed["data"]["queue"]["consult_seconds"] >= 0
    )

    # every desk action is in the audit log, by the desk account that did it
    audit = await audit_until(api, h, {"queue.called", "queue.skipped", "appointment.completed"})
    actions = {(i["action"], i["target"]): i["staff_id"] for i in audit}
    assert actions[("queue.skipped", f"appointment/{patients[1][1]}")] == desk["id"]
    assert actions[("appointment.completed", f"appointment/{patients[0][1]}")] == desk["id"]
    assert not any(i["action"] == "queue.near" for i in audit)
