"""Issue 2 acceptance through the real gateway, real RabbitMQ, nx-27017 and the WeChat fake."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from shared.devstack import DevStack
from tests.harness import Api, read_logs

VALID_ID = "11010519491231002X"


def valid_id(seed: int) -> str:
    """A checksum-valid resident ID born on 1990-01-01 + seed days' sequence number."""
    from shared.idcard import check_character

    first17 = f"44030419900101{seed % 1000:03d}"
    return first17 + check_character(first17)


async def test_wechat_login_gives_tokens_that_open_me(api: Api) -> None:
    login = await api.patient_login()
    assert login["user"]["role"] == "patient" and login["expires_in"] == 900
    me = await api.request("GET", "/me", token=login["access_token"])
    assert me.status == 200 and me.body["id"] == login["user"]["id"]
    assert me.body["role"] == "patient"


async def test_same_login_code_twice_is_refused(api: Api) -> None:
    code = await api.login_code()
    first = await api.request("POST", "/auth/wechat/login", json={"code": code})
    second = await api.request("POST", "/auth/wechat/login", json={"code": code})
    assert first.status == 200
    assert second.status == 401 and second.error_code == "UNAUTHENTICATED"


async def test_unknown_login_code_is_refused(api: Api) -> None:
    resp = await api.request("POST", "/auth/wechat/login", json={"code": "no-such-code"})
    assert resp.status == 401 and resp.error_code == "UNAUTHENTICATED"


async def test_wechat_busy_once_is_retried_and_login_succeeds(api: Api) -> None:
    code = await api.login_code()
    await api.fake("POST", "failures", endpoint="jscode2session", errcode=-1, times=1)
    resp = await api.request("POST", "/auth/wechat/login", json={"code": code})
    assert resp.status == 200, resp.body


async def test_wechat_unreachable_gives_a_clear_5xx_not_500(api: Api) -> None:
    code = await api.login_code()
    await api.fake("POST", "failures", endpoint="jscode2session", errcode="network", times=1)
    resp = await api.request("POST", "/auth/wechat/login", json={"code": code})
    assert resp.status in (502, 503)
    assert resp.error_code in ("WECHAT_ERROR", "SERVICE_UNAVAILABLE")


async def test_refresh_rotates_and_reuse_of_a_dead_token_revokes_the_family(api: Api) -> None:
    login = await api.patient_login()
    first = await api.request(
        "POST", "/auth/refresh", json={"refresh_token": login["refresh_token"]}
    )
    assert first.status == 200
    assert first.body["refresh_token"] != login["refresh_token"]
    reuse = await api.request(
        "POST", "/auth/refresh", json={"refresh_token": login["refresh_token"]}
    )
    assert reuse.status == 401
    after = await api.request(
        "POST", "/auth/refresh", json={"refresh_token": first.body["refresh_token"]}
    )
    assert after.status == 401  # the whole family died with the reuse


async def test_staff_login_and_wrong_password_gives_no_hint(api: Api) -> None:
    admin = await api.admin_token()
    missing = await api.request(
        "POST",
        "/admin/hospitals/h_nope/staff",
        token=admin,
        json={"username": "someone", "password": "s3cret-pass"},
    )
    assert missing.status == 404
    hospital = await api.request(
        "POST", "/admin/hospitals", token=admin, json={"name": "登录测试医院"}
    )
    hid = hospital.body["id"]
    username = f"staff_{uuid.uuid4().hex[:6]}"
    created = await api.request(
        "POST",
        f"/admin/hospitals/{hid}/staff",
        token=admin,
        json={"username": username, "password": "s3cret-pass"},
    )
    assert created.status == 201, created.body
    ok = await api.request(
        "POST", "/auth/staff/login", json={"username": username, "password": "s3cret-pass"}
    )
    assert ok.status == 200 and ok.body["user"]["role"] == "hospital_admin"
    assert ok.body["user"]["hospital_id"] == hid
    wrong_pw = await api.request(
        "POST", "/auth/staff/login", json={"username": username, "password": "nope-nope"}
    )
    no_user = await api.request(
        "POST",
        "/auth/staff/login",
        json={"username": "nobody_" + username, "password": "nope-nope"},
    )
    assert wrong_pw.status == no_user.status == 401
    assert wrong_pw.body == no_user.body


async def test_repeated_staff_login_failures_are_rate_limited(api: Api) -> None:
    username = f"ghost_{uuid.uuid4().hex[:6]}"
    statuses = []
    for _ in range(7):
        resp = await api.request(
            "POST", "/auth/staff/login", json={"username": username, "password": "wrong-password"}
        )
        statuses.append(resp.status)
    assert statuses[0] == 401 and statuses[-1] == 429
    assert "Retry-After" in resp.headers


async def test_tampered_token_is_refused(api: Api) -> None:
    token = await api.patient_token()
    head, payload, sig = token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    resp = await api.request("GET", "/me", token=f"{head}.{payload}.{flipped}")
    assert resp.status == 401
    none_alg = (
        __import__("base64").urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    )
    resp = await api.request("GET", "/me", token=f"{none_alg}.{payload}.")
    assert resp.status == 401


async def test_patient_profile_crud_masks_everything(api: Api, stack: DevStack) -> None:
    token = await api.patient_token()
    created = await api.request(
        "POST",
        "/patients",
        token=token,
        json={"name": "张三", "id_number": VALID_ID, "phone": "13812345678", "relation": "self"},
    )
    assert created.status == 201, created.body
    body = created.body
    assert body["id_number_masked"] == "11****************"
    assert body["phone_masked"] == "138****5678"
    assert body["gender"] == "female" and body["birth_date"] == "1949-12-31"
    assert body["is_default"] is True
    pid = body["id"]
    listed = await api.request("GET", "/patients", token=token)
    assert [p["id"] for p in listed.body["items"]] == [pid]
    patched = await api.request(
        "PATCH", f"/patients/{pid}", token=token, json={"phone": "13900001111"}
    )
    assert patched.status == 200 and patched.body["phone_masked"] == "139****1111"
    assert VALID_ID not in json.dumps([created.body, listed.body, patched.body])
    deleted = await api.request("DELETE", f"/patients/{pid}", token=token)
    assert deleted.status == 200
    gone = await api.request("GET", f"/patients/{pid}", token=token)
    assert gone.status == 404
    await asyncio.sleep(0.2)
    assert VALID_ID not in read_logs(stack)
    assert "13812345678" not in read_logs(stack)


@pytest.mark.parametrize(
    ("id_number", "why"),
    [("110105194912310021", "checksum"), ("110105194913310027", "impossible month")],
)
async def test_invalid_id_number_is_a_field_error(api: Api, id_number: str, why: str) -> None:
    token = await api.patient_token()
    resp = await api.request(
        "POST",
        "/patients",
        token=token,
        json={"name": "李四", "id_number": id_number, "phone": "13812345678", "relation": "self"},
    )
    assert resp.status == 422, why
    assert "id_number" in resp.body["error"]["details"]["fields"]


async def test_another_users_profile_is_not_found(api: Api) -> None:
    owner = await api.patient_token()
    other = await api.patient_token()
    created = await api.request(
        "POST",
        "/patients",
        token=owner,
        json={"name": "王五", "id_number": valid_id(1), "phone": "13812345678", "relation": "self"},
    )
    pid = created.body["id"]
    for method, body in (("GET", None), ("PATCH", {"relation": "other"}), ("DELETE", None)):
        resp = await api.request(method, f"/patients/{pid}", token=other, json=body)
        assert resp.status == 404, method
    assert (await api.request("GET", f"/patients/{pid}", token=owner)).status == 200


async def test_sixth_profile_is_refused(api: Api) -> None:
    token = await api.patient_token()
    for i in range(5):
        resp = await api.request(
            "POST",
            "/patients",
            token=token,
            json={
                "name": "赵六",
                "id_number": valid_id(100 + i),
                "phone": "13812345678",
                "relation": "child",
            },
        )
        assert resp.status == 201, resp.body
    sixth = await api.request(
        "POST",
        "/patients",
        token=token,
        json={
            "name": "赵六",
            "id_number": valid_id(200),
            "phone": "13812345678",
            "relation": "child",
        },
    )
    assert sixth.status == 409 and sixth.error_code == "LIMIT_REACHED"


async def test_operator_injection_and_wrong_types_are_422(api: Api) -> None:
    for body in ({"code": {"$gt": ""}}, {"code": 12345}, {"code": ["a"]}, {"code": "x", "y": 1}):
        resp = await api.request("POST", "/auth/wechat/login", json=body)
        assert resp.status == 422, body
        assert resp.error_code == "VALIDATION_FAILED"
        assert resp.body["error"]["details"]["fields"]


async def test_oversized_body_is_413_and_malformed_json_is_400(api: Api) -> None:
    big = json.dumps({"code": "x" * (100 * 1024)})
    resp = await api.request(
        "POST", "/auth/wechat/login", data=big, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413 and resp.error_code == "PAYLOAD_TOO_LARGE"
    bad = await api.request(
        "POST", "/auth/wechat/login", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status == 400 and bad.error_code == "BAD_REQUEST"


@pytest.mark.slow
async def test_login_with_auth_stopped_is_503_within_deadline_and_recovers(
    api: Api, stack: DevStack
) -> None:
    code = await api.login_code()
    stack.stop_process("auth")
    try:
        started = time.monotonic()
        resp = await api.request("POST", "/auth/wechat/login", json={"code": code})
        elapsed = time.monotonic() - started
        assert resp.status == 503 and resp.error_code == "SERVICE_UNAVAILABLE"
        assert elapsed <= 5.5
    finally:
        stack.start_process("auth")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = await api.request(
            "POST", "/auth/wechat/login", json={"code": await api.login_code()}
        )
        if resp.status == 200:
            break
        await asyncio.sleep(0.5)
    assert resp.status == 200


@pytest.mark.slow
async def test_500_patients_behind_one_address_all_log_in_under_the_default_limits(
    api: Api, stack: DevStack
) -> None:
    """A carrier NAT or an 08:00 release rush: every login comes from 127.0.0.1, through a
    gateway started with the built-in rate limits (the shared stack's are lifted)."""
    from shared.storage.testing import free_port

    port = free_port()
    stack.start_process("gateway#defaults", GATEWAY_PORT=str(port), GUAHAO_RATE_LIMITS="")
    url = f"http://127.0.0.1:{port}/api/v1/auth/wechat/login"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                async with api.session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            await asyncio.sleep(0.2)
        gate = asyncio.Semaphore(25)
        throttled = 0

        async def log_in(n: int) -> str:
            nonlocal throttled
            openid = f"o_crowd_{uuid.uuid4().hex[:8]}_{n}"
            code = await api.login_code(openid)
            async with gate:
                for _ in range(20):
                    async with api.session.post(url, json={"code": code}) as resp:
                        body = await resp.json()
                        if resp.status == 429:
                            throttled += 1
                            await asyncio.sleep(float(resp.headers["Retry-After"]))
                            continue
                        if resp.status == 503:  # an overloaded machine, not a limit:
                            code = await api.login_code(openid)  # the code may be spent
                            continue
                        assert resp.status == 200, body
                        return str(body["user"]["id"])
            raise AssertionError("no login after 20 tries")

        started = time.monotonic()
        users = await asyncio.gather(*(log_in(n) for n in range(500)))
        assert len(set(users)) == 500
        assert time.monotonic() - started < 180
        assert throttled < 500, "the limit may pace a crowd, not turn it away"
    finally:
        stack.stop_process("gateway#defaults")
