"""Gateway side of 排班 and statistics: the routes forward the merged path/query/body
fields, `schedules:preview` is routed, and statistics answer CSV on `Accept: text/csv`."""

from __future__ import annotations

from typing import Any

from gateway.testing import Client, FakeRpc, TokenSigner, bearer

pytest_plugins = ["tests.gateway_fixtures"]

STATS = {
    "items": [
        {
            "key": "doc_1",
            "name": "张三, 主任",
            "booked": 10,
            "cancelled_by_patient": 2,
            "cancelled_by_hospital": 1,
            "cancelled_by_system": 0,
            "no_show": 1,
            "completed": 5,
            "capacity": 20,
            "utilization": 0.35,
            "no_show_rate": 0.1667,
        },
    ]
}


def admin(signer: Any, hid: str = "h_1") -> dict[str, str]:
    return bearer(signer.token("s_1", role="hospital_admin", hid=hid))


async def test_statistics_answer_json_by_default_and_csv_when_asked(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("catalog", "hospital_stats", STATS)
    url = "/api/v1/admin/hospitals/h_1/stats?from=2026-12-01&to=2026-12-07&group_by=doctor"
    r = await client.get(url, headers=admin(signer))
    assert r.status == 200 and (await r.json()) == STATS
    call = rpc.calls_to("hospital_stats")[0]
    assert call.params == {
        "hospital_id": "h_1",
        "from": "2026-12-01",
        "to": "2026-12-07",
        "group_by": "doctor",
    }

    r = await client.get(url, headers={**admin(signer), "Accept": "text/csv"})
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    text = (await r.read()).decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0] == (
        "key,name,booked,cancelled_by_patient,cancelled_by_hospital,"
        "cancelled_by_system,no_show,completed,capacity,utilization,"
        "no_show_rate"
    )
    assert lines[1] == 'doc_1,"张三, 主任",10,2,1,0,1,5,20,0.35,0.1667'


async def test_statistics_of_another_hospital_are_not_found_and_bad_ranges_refused(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("catalog", "hospital_stats", STATS)
    r = await client.get(
        "/api/v1/admin/hospitals/h_2/stats?from=2026-12-01&to=2026-12-07", headers=admin(signer)
    )
    assert r.status == 404
    r = await client.get(
        "/api/v1/admin/hospitals/h_1/stats?from=2026-12-07&to=2026-12-01", headers=admin(signer)
    )
    assert r.status == 422
    r = await client.get(
        "/api/v1/admin/hospitals/h_1/stats?from=2026-12-01&to=2026-12-02&group_by=ward",
        headers=admin(signer),
    )
    assert r.status == 422 and "group_by" in (await r.json())["error"]["details"]["fields"]
    assert rpc.calls_to("hospital_stats") == []


async def test_template_calendar_leave_and_preview_routes_forward_their_fields(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    for method in (
        "create_template",
        "update_template",
        "set_calendar_day",
        "doctor_leave",
        "preview_schedules",
    ):
        rpc.on("catalog", method, {})
    base = "/api/v1/admin/hospitals/h_1"
    r = await client.post(
        f"{base}/doctors/doc_1/templates",
        headers=admin(signer),
        json={
            "weekdays": [1, 3],
            "session": "am",
            "start": "08:00",
            "end": "11:00",
            "slice_minutes": 30,
            "capacity_per_slice": 3,
            "weeks": "odd",
            "valid_from": "2026-12-01",
        },
    )
    assert r.status == 201
    r = await client.post(
        f"{base}/doctors/doc_1/templates",
        headers=admin(signer),
        json={
            "weekdays": [1],
            "session": "am",
            "start": "08:00",
            "end": "11:00",
            "slice_minutes": 30,
            "capacity_per_slice": 0,
            "valid_from": "2026-12-01",
        },
    )
    assert r.status == 422
    assert "capacity_per_slice" in (await r.json())["error"]["details"]["fields"]
    r = await client.patch(
        f"{base}/doctors/doc_1/templates/tpl_1",
        headers=admin(signer),
        json={"capacity_per_slice": 5},
    )
    assert r.status == 200
    assert rpc.calls_to("update_template")[0].params == {
        "hospital_id": "h_1",
        "doctor_id": "doc_1",
        "template_id": "tpl_1",
        "capacity_per_slice": 5,
    }
    r = await client.put(
        f"{base}/calendar/2026-10-10",
        headers=admin(signer),
        json={"closed": False, "workday_as": 3, "reason": "国庆调休"},
    )
    assert r.status == 200
    assert rpc.calls_to("set_calendar_day")[0].params["date"] == "2026-10-10"
    r = await client.put(
        f"{base}/calendar/2026-10-01", headers=admin(signer), json={"closed": True}
    )
    assert r.status == 422  # a holiday needs its reason
    r = await client.post(
        f"{base}/doctors/doc_1/leave",
        headers=admin(signer),
        json={"from": "2026-12-02", "to": "2026-12-03", "reason": "会诊"},
    )
    assert r.status == 201
    assert rpc.calls_to("doctor_leave")[0].params == {
        "hospital_id": "h_1",
        "doctor_id": "doc_1",
        "from": "2026-12-02",
        "to": "2026-12-03",
        "reason": "会诊",
    }
    r = await client.post(
        f"{base}/schedules:preview?from=2026-12-01&to=2026-12-31", headers=admin(signer)
    )
    assert r.status == 200
    assert rpc.calls_to("preview_schedules")[0].params == {
        "hospital_id": "h_1",
        "from": "2026-12-01",
        "to": "2026-12-31",
    }
    r = await client.post(
        f"{base}/schedules:preview?from=2026-12-01&to=2026-12-31",
        headers=bearer(signer.token("u_1")),
    )
    assert r.status == 403
