"""Staff accounts through the real gateway, RabbitMQ and nx-27017: desk vs admin roles,
revocation at once, password reset and change, the audit log."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from shared.devstack import DevStack
from shared.storage.testing import free_port
from tests.harness import Api, Response
from tests.system_kit import (
    Hospital,
    book,
    make_hospital,
    make_schedule,
    patient,
    todays_session,
)


async def add_staff(api: Api, h: Hospital, role: str) -> dict[str, Any]:
    """A staff account of `h` created by its admin, logged in: {id, username, password,
    token, refresh}."""
    username, password = f"{role}_{uuid.uuid4().hex[:8]}", "desk-password"
    created = await api.request(
        "POST",
        f"/admin/hospitals/{h.id}/staff",
        token=h.staff_token,
        json={"username": username, "password": password, "role": role},
    )
    assert created.status == 201, created.body
    assert created.body["role"] == role
    login = await api.request(
        "POST", "/auth/staff/login", json={"username": username, "password": password}
    )
    assert login.status == 200, login.body
    assert login.body["user"]["role"] == role
    return {
        "id": created.body["id"],
        "username": username,
        "password": password,
        "token": login.body["access_token"],
        "refresh": login.body["refresh_token"],
    }


async def admin_id(api: Api, h: Hospital) -> str:
    me = await api.request("GET", "/me", token=h.staff_token)
    return str(me.body["id"])


async def test_desk_works_appointments_but_no_admin_route_and_no_other_hospital(api: Api) -> None:
    h, other = await make_hospital(api), await make_hospital(api)
    desk = await add_staff(api, h, "desk")
    schedule = await make_schedule(api, h, capacity=2)
    base = f"/admin/hospitals/{h.id}"
    ok = await api.request("GET", f"{base}/appointments", token=desk["token"])
    assert ok.status == 200, ok.body
    admin_only: list[tuple[str, str, Any]] = [
        ("PATCH", f"{base}/rules", {"max_active": 3}),
        ("POST", f"{base}/departments", {"name": "眼科"}),
        ("GET", f"{base}/doctors", None),
        ("POST", f"{base}/doctors/{h.doctor_id}/schedules", {}),
        ("GET", f"{base}/schedules", None),
        ("POST", f"{base}/schedules/{schedule['id']}/stop", {"reason": "x"}),
        ("POST", f"{base}/slots/{schedule['slots'][0]['id']}/capacity", {"delta": 1}),
        ("GET", f"{base}/webhooks", None),
        ("GET", f"{base}/staff", None),
        ("POST", f"{base}/staff", {"username": "x_desk", "password": "long-enough"}),
        ("GET", f"{base}/audit", None),
    ]
    for method, path, body in admin_only:
        resp = await api.request(method, path, token=desk["token"], json=body)
        assert (resp.status, resp.error_code) == (403, "FORBIDDEN"), (path, resp.body)
    elsewhere = await api.request(
        "GET", f"/admin/hospitals/{other.id}/appointments", token=desk["token"]
    )
    assert elsewhere.status == 404
    listed = await api.request("GET", f"{base}/staff", token=h.staff_token)
    assert listed.status == 200
    assert desk["id"] in [s["id"] for s in listed.body["items"]]
    foreign = await api.request("GET", f"/admin/hospitals/{other.id}/staff", token=h.staff_token)
    assert foreign.status == 404


async def test_disabling_an_account_ends_its_sessions_at_once(api: Api) -> None:
    h = await make_hospital(api)
    desk = await add_staff(api, h, "desk")
    path = f"/admin/hospitals/{h.id}/appointments"
    assert (await api.request("GET", path, token=desk["token"])).status == 200
    disabled = await api.request(
        "PATCH",
        f"/admin/hospitals/{h.id}/staff/{desk['id']}",
        token=h.staff_token,
        json={"disabled": True},
    )
    assert disabled.status == 200 and disabled.body["disabled"] is True
    refused = await api.request("GET", path, token=desk["token"])
    assert refused.status == 401, refused.body
    refresh = await api.request("POST", "/auth/refresh", json={"refresh_token": desk["refresh"]})
    assert refresh.status == 401
    login = await api.request(
        "POST",
        "/auth/staff/login",
        json={"username": desk["username"], "password": desk["password"]},
    )
    assert login.status == 401
    # the admin's own session is untouched
    assert (await api.request("GET", path, token=h.staff_token)).status == 200


@pytest.mark.slow
async def test_another_gateway_replica_refuses_a_disabled_account_within_the_poll_bound(
    api: Api, stack: DevStack
) -> None:
    port = free_port()
    stack.start_process("gateway#2", GATEWAY_PORT=str(port))
    try:
        h = await make_hospital(api)
        desk = await add_staff(api, h, "desk")
        second = f"http://127.0.0.1:{port}/api/v1/admin/hospitals/{h.id}/appointments"
        headers = {"Authorization": f"Bearer {desk['token']}"}
        deadline = time.monotonic() + 30
        while True:  # the second gateway is up once it answers
            try:
                async with api.session.get(second, headers=headers) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "second gateway did not come up"
            await asyncio.sleep(0.3)
        disabled = await api.request(
            "PATCH",
            f"/admin/hospitals/{h.id}/staff/{desk['id']}",
            token=h.staff_token,
            json={"disabled": True},
        )
        assert disabled.status == 200
        started, status = time.monotonic(), 200
        # README: poll every 2 s + one RPC (5 s: generous for a loaded 2-core machine)
        while status == 200 and time.monotonic() - started < 5:
            await asyncio.sleep(0.1)
            async with api.session.get(second, headers=headers) as resp:
                status = resp.status
        assert status == 401, status
    finally:
        stack.stop_process("gateway#2")


async def test_reset_refuses_the_old_password_and_forces_a_change(api: Api) -> None:
    h = await make_hospital(api)
    desk = await add_staff(api, h, "desk")
    reset = await api.request(
        "POST", f"/admin/hospitals/{h.id}/staff/{desk['id']}/reset-password", token=h.staff_token
    )
    assert reset.status == 200, reset.body
    temporary = reset.body["temporary_password"]
    assert (await api.request("GET", "/me", token=desk["token"])).status == 401
    old = await api.request(
        "POST",
        "/auth/staff/login",
        json={"username": desk["username"], "password": desk["password"]},
    )
    assert old.status == 401
    login = await api.request(
        "POST", "/auth/staff/login", json={"username": desk["username"], "password": temporary}
    )
    assert login.status == 200 and login.body["must_change_password"] is True
    pending = login.body["access_token"]
    blocked = await api.request("GET", f"/admin/hospitals/{h.id}/appointments", token=pending)
    assert (blocked.status, blocked.error_code) == (403, "PASSWORD_CHANGE_REQUIRED")
    changed = await api.request(
        "POST", "/auth/password", token=pending, json={"old": temporary, "new": "my-new-password"}
    )
    assert changed.status == 200, changed.body
    fresh = changed.body["access_token"]
    assert (
        await api.request("GET", f"/admin/hospitals/{h.id}/appointments", token=fresh)
    ).status == 200
    assert (await api.request("GET", "/me", token=pending)).status == 401


async def test_changing_ones_own_password(api: Api) -> None:
    h = await make_hospital(api)
    admin = await add_staff(api, h, "hospital_admin")
    wrong = await api.request(
        "POST",
        "/auth/password",
        token=admin["token"],
        json={"old": "not-my-password", "new": "brand-new-pass"},
    )
    assert wrong.status == 422 and "old" in wrong.body["error"]["details"]["fields"]
    changed = await api.request(
        "POST",
        "/auth/password",
        token=admin["token"],
        json={"old": admin["password"], "new": "brand-new-pass"},
    )
    assert changed.status == 200, changed.body
    assert (await api.request("GET", "/me", token=admin["token"])).status == 401
    assert (await api.request("GET", "/me", token=changed.body["access_token"])).status == 200
    old = await api.request(
        "POST",
        "/auth/staff/login",
        json={"username": admin["username"], "password": admin["password"]},
    )
    new = await api.request(
        "POST",
        "/auth/staff/login",
        json={"username": admin["username"], "password": "brand-new-pass"},
    )
    assert (old.status, new.status) == (401, 200)


async def audit_until(
    api: Api, h: Hospital, wanted: set[str], timeout: float = 20
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        resp: Response = await api.request(
            "GET", f"/admin/hospitals/{h.id}/audit", token=h.staff_token
        )
        assert resp.status == 200, resp.body
        items = resp.body["items"]
        if wanted <= {i["action"] for i in items}:
            return items
        await asyncio.sleep(0.3)
    raise AssertionError(f"audit log lacks {wanted - {i['action'] for i in items}}: {items}")


async def test_audit_log_names_the_staff_behind_cancel_check_in_stop_and_rules(api: Api) -> None:
    h = await make_hospital(api)
    desk = await add_staff(api, h, "desk")
    schedule = await todays_session(api, h, capacity=3)  # check-in is on the visit day
    stopped = await make_schedule(api, h, capacity=1, session="pm", starts=("14:00",))
    slot_id = schedule["slots"][0]["id"]
    appointments = []
    for n in (901, 902):
        token, pid = await patient(api, n)
        booked = await book(api, token, slot_id, pid)
        assert booked.status == 201, booked.body
        appointments.append(booked.body["id"])
    base = f"/admin/hospitals/{h.id}"
    checked = await api.request(
        "POST", f"{base}/appointments/{appointments[0]}/check-in", token=desk["token"]
    )
    assert checked.status == 200, checked.body
    cancelled = await api.request(
        "POST",
        f"{base}/appointments/{appointments[1]}/cancel",
        token=desk["token"],
        json={"reason": "患者来电取消"},
    )
    assert cancelled.status == 200, cancelled.body
    stop = await api.request(
        "POST",
        f"{base}/schedules/{stopped['id']}/stop",
        token=h.staff_token,
        json={"reason": "医生临时出诊"},
    )
    assert stop.status == 200, stop.body
    rules = await api.request("PATCH", f"{base}/rules", token=h.staff_token, json={"max_active": 4})
    assert rules.status == 200, rules.body
    items = await audit_until(
        api,
        h,
        {
            "appointment.checked_in",
            "appointment.cancelled",
            "schedule.stopped",
            "hospital.rules_updated",
        },
    )
    by_action = {i["action"]: i for i in items}
    admin = await admin_id(api, h)
    assert by_action["appointment.checked_in"]["staff_id"] == desk["id"]
    assert by_action["appointment.checked_in"]["target"] == f"appointment/{appointments[0]}"
    assert by_action["appointment.cancelled"]["staff_id"] == desk["id"]
    assert by_action["schedule.stopped"]["staff_id"] == admin
    assert by_action["hospital.rules_updated"]["staff_id"] == admin
    assert by_action["staff.created"]["staff_id"] == admin
    assert "appointment.booked" not in by_action  # a patient's action, not staff's
    assert all(i["at"].endswith("+08:00") for i in items)
    assert (await api.request("GET", f"{base}/audit", token=desk["token"])).status == 403
