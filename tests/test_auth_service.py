"""Logins (WeChat and staff), the admin bootstrap, staff accounts and the RPC surface."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from argon2 import PasswordHasher
from pymongo.asynchronous.database import AsyncDatabase

from services.auth.handlers import register
from services.auth.service import MAX_CONCURRENT_PASSWORD_CHECKS, MAX_LOGIN_FAILURES
from shared.context import CallContext, Caller
from shared.contracts.auth import CreateStaffParams
from shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    WechatError,
)
from shared.messaging.rpc import RpcServer
from shared.storage.mongo import Document
from shared.wechat import WechatApiError, WechatUnavailable
from tests.auth_kit import (
    PLATFORM_ADMIN,
    AuthKit,
    FakeClock,
    StubWechat,
    build_auth,
    build_patients,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wechat() -> StubWechat:
    return StubWechat({"code-a": "openid-a", "code-a2": "openid-a", "code-b": "openid-b"})


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document], clock: FakeClock, wechat: StubWechat) -> AuthKit:
    return await build_auth(mongo_db, clock, wechat)


async def add_staff(kit: AuthKit, username: str = "staff1", password: str = "right-pass") -> None:
    await kit.staff.create_staff(
        PLATFORM_ADMIN, CreateStaffParams(username=username, password=password, hospital_id="h_1")
    )


async def test_first_wechat_login_creates_the_patient_and_later_logins_find_it(
    kit: AuthKit, mongo_db: AsyncDatabase[Document]
) -> None:
    first = await kit.service.wechat_login("code-a")
    again = await kit.service.wechat_login("code-a2")
    other = await kit.service.wechat_login("code-b")
    assert first.user.id == again.user.id != other.user.id
    assert first.user.role == "patient" and first.user.hospital_id is None
    assert await mongo_db["users"].count_documents({}) == 2


async def test_concurrent_first_logins_of_one_person_create_one_user(
    kit: AuthKit, wechat: StubWechat, mongo_db: AsyncDatabase[Document]
) -> None:
    wechat.codes.update({f"c{i}": "openid-same" for i in range(8)})
    pairs = await asyncio.gather(*(kit.service.wechat_login(f"c{i}") for i in range(8)))
    assert len({p.user.id for p in pairs}) == 1
    assert await mongo_db["users"].count_documents({"openid": "openid-same"}) == 1


async def test_session_key_is_never_stored(kit: AuthKit, mongo_db: AsyncDatabase[Document]) -> None:
    await kit.service.wechat_login("code-a")
    user = await mongo_db["users"].find_one({})
    assert user is not None
    assert "sk-" not in repr(user) and not any("session" in k for k in user)


@pytest.mark.parametrize("errcode", [40029, 40163])
async def test_invalid_or_used_login_code_is_unauthenticated(
    kit: AuthKit, wechat: StubWechat, errcode: int
) -> None:
    wechat.codes["bad"] = WechatApiError(errcode, "invalid code")
    with pytest.raises(Unauthenticated) as caught:
        await kit.service.wechat_login("bad")
    assert caught.value.details == {"wechat_errcode": errcode}


async def test_wechat_rate_limit_asks_the_client_to_wait(kit: AuthKit, wechat: StubWechat) -> None:
    wechat.codes["busy"] = WechatApiError(45011, "api minute-quota reach limit")
    with pytest.raises(RateLimited) as caught:
        await kit.service.wechat_login("busy")
    assert caught.value.retry_after == 60


async def test_other_wechat_refusals_are_bad_gateway_with_the_errcode(
    kit: AuthKit, wechat: StubWechat
) -> None:
    wechat.codes["odd"] = WechatApiError(40226, "high risk user")
    with pytest.raises(WechatError) as caught:
        await kit.service.wechat_login("odd")
    assert caught.value.status == 502 and caught.value.details == {"errcode": 40226}


async def test_unreachable_wechat_is_service_unavailable(
    kit: AuthKit, wechat: StubWechat, mongo_db: AsyncDatabase[Document]
) -> None:
    wechat.codes["down"] = WechatUnavailable("timeout")
    with pytest.raises(ServiceUnavailable) as caught:
        await kit.service.wechat_login("down")
    assert caught.value.details == {"upstream": "wechat"}
    assert await mongo_db["users"].count_documents({}) == 0


class CountingHasher(PasswordHasher):
    verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


async def test_staff_login_wrong_password_and_unknown_user_fail_identically(kit: AuthKit) -> None:
    await add_staff(kit)
    kit.service.passwords = hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    errors = []
    for username in ("staff1", "nobody"):
        with pytest.raises(Unauthenticated) as caught:
            await kit.service.staff_login(username, "wrong-pass")
        errors.append(caught.value.to_wire())
    assert errors[0] == errors[1]
    assert errors[0]["message"] == "用户名或密码错误 / wrong username or password"
    # the unknown user costs an argon2 verification too, so timing does not tell them apart
    assert hasher.verifications == 2


async def test_staff_login_is_case_insensitive_on_username(kit: AuthKit) -> None:
    await add_staff(kit, username="Staff1")
    pair = await kit.service.staff_login("sTAFF1", "right-pass")
    assert pair.user.role == "hospital_admin" and pair.user.hospital_id == "h_1"


async def test_five_failures_lock_the_username_until_the_window_ends(
    kit: AuthKit, clock: FakeClock
) -> None:
    await add_staff(kit)
    for _ in range(MAX_LOGIN_FAILURES):
        with pytest.raises(Unauthenticated):
            await kit.service.staff_login("staff1", "wrong-pass")
    clock.advance(minutes=5)
    with pytest.raises(RateLimited) as caught:
        await kit.service.staff_login("staff1", "right-pass")  # even the right password waits
    assert caught.value.retry_after == 10 * 60
    clock.advance(minutes=10, seconds=1)
    assert (await kit.service.staff_login("staff1", "right-pass")).user.role == "hospital_admin"


async def test_unknown_usernames_are_rate_limited_too(kit: AuthKit) -> None:
    for _ in range(MAX_LOGIN_FAILURES):
        with pytest.raises(Unauthenticated):
            await kit.service.staff_login("ghost", "wrong-pass")
    with pytest.raises(RateLimited):
        await kit.service.staff_login("ghost", "wrong-pass")


async def test_successful_login_resets_the_failure_count(kit: AuthKit) -> None:
    await add_staff(kit)
    for _ in range(MAX_LOGIN_FAILURES - 1):
        with pytest.raises(Unauthenticated):
            await kit.service.staff_login("staff1", "wrong-pass")
    await kit.service.staff_login("staff1", "right-pass")
    for _ in range(MAX_LOGIN_FAILURES - 1):
        with pytest.raises(Unauthenticated):
            await kit.service.staff_login("staff1", "wrong-pass")
    await kit.service.staff_login("staff1", "right-pass")


async def test_a_lockout_from_one_address_does_not_lock_the_account_elsewhere(kit: AuthKit) -> None:
    await add_staff(kit)
    for _ in range(MAX_LOGIN_FAILURES):
        with pytest.raises(Unauthenticated):
            await kit.service.staff_login("staff1", "wrong-pass", "203.0.113.66")
    with pytest.raises(RateLimited):
        await kit.service.staff_login("staff1", "right-pass", "203.0.113.66")
    pair = await kit.service.staff_login("staff1", "right-pass", "198.51.100.10")
    assert pair.user.role == "hospital_admin"


async def test_concurrent_guesses_cannot_slip_past_the_failure_count(
    kit: AuthKit, mongo_db: AsyncDatabase[Document]
) -> None:
    """Check and count are one atomic increment: of 20 guesses sent at once, exactly the
    allowed number reach the password check."""
    await add_staff(kit)
    outcomes = await asyncio.gather(
        *(kit.service.staff_login("staff1", "wrong-pass", "203.0.113.7") for _ in range(20)),
        return_exceptions=True,
    )
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds.count("Unauthenticated") == MAX_LOGIN_FAILURES
    assert kinds.count("RateLimited") == 20 - MAX_LOGIN_FAILURES


async def test_password_checks_run_a_bounded_number_at_once(
    kit: AuthKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_staff(kit)
    running, peak = 0, 0
    hasher = kit.service.passwords

    class CountingHasher:
        def __getattr__(self, name: str) -> object:
            return getattr(hasher, name)

        def verify(self, stored: str, password: str) -> bool:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                return hasher.verify(stored, password)
            finally:
                running -= 1

    monkeypatch.setattr(kit.service, "passwords", CountingHasher())
    logins = [kit.service.staff_login("staff1", "right-pass", f"10.0.0.{i}") for i in range(12)]
    pairs = await asyncio.gather(*logins)
    assert len(pairs) == 12 and 1 <= peak <= MAX_CONCURRENT_PASSWORD_CHECKS


async def test_admin_bootstrap_is_idempotent_under_concurrent_starts(
    kit: AuthKit, mongo_db: AsyncDatabase[Document]
) -> None:
    created = await asyncio.gather(
        *(kit.service.bootstrap_admin("admin", "first-pass") for _ in range(5))
    )
    assert created.count(True) == 1
    assert not await kit.service.bootstrap_admin("admin", "another-pass")
    assert await mongo_db["users"].count_documents({"role": "platform_admin"}) == 1
    pair = await kit.service.staff_login("admin", "first-pass")
    assert pair.user.role == "platform_admin" and pair.user.hospital_id is None


async def test_platform_admin_and_that_hospitals_admins_create_staff(kit: AuthKit) -> None:
    params = CreateStaffParams(username="staff1", password="right-pass", hospital_id="h_1")
    with pytest.raises(Unauthenticated):
        await kit.staff.create_staff(None, params)
    for role, hid in (("patient", None), ("desk", "h_1")):
        with pytest.raises(Forbidden):
            await kit.staff.create_staff(Caller(user_id="x", role=role, hospital_id=hid), params)
    with pytest.raises(NotFound):
        await kit.staff.create_staff(
            Caller(user_id="x", role="hospital_admin", hospital_id="h_2"), params
        )
    account = await kit.staff.create_staff(PLATFORM_ADMIN, params)
    assert account.username == "staff1" and account.hospital_id == "h_1"
    assert account.role == "hospital_admin"
    desk = await kit.staff.create_staff(
        Caller(user_id=account.id, role="hospital_admin", hospital_id="h_1"),
        CreateStaffParams(username="desk1", password="right-pass", hospital_id="h_1", role="desk"),
    )
    assert desk.role == "desk"


async def test_duplicate_staff_username_is_a_conflict(
    kit: AuthKit, mongo_db: AsyncDatabase[Document]
) -> None:
    await add_staff(kit)
    with pytest.raises(Conflict):
        await add_staff(kit, username="STAFF1")
    user = await mongo_db["users"].find_one({"username": "staff1"})
    assert user is not None and "right-pass" not in repr(user)
    assert user["password_hash"].startswith("$argon2id$")


async def test_me_reports_the_account_of_the_caller(kit: AuthKit) -> None:
    await add_staff(kit)
    pair = await kit.service.staff_login("staff1", "right-pass")
    me = await kit.service.me(
        Caller(user_id=pair.user.id, role="hospital_admin", hospital_id="h_1")
    )
    assert (me.id, me.role, me.hospital_id) == (pair.user.id, "hospital_admin", "h_1")
    with pytest.raises(Unauthenticated):
        await kit.service.me(None)
    with pytest.raises(Unauthenticated):
        await kit.service.me(Caller(user_id="u_gone", role="patient"))


async def test_rpc_surface_serves_every_contract_method(
    kit: AuthKit, mongo_db: AsyncDatabase[Document], clock: FakeClock
) -> None:
    server = RpcServer("auth", connection=None)  # type: ignore[arg-type]  # never started
    register(server, kit.service, await build_patients(mongo_db, clock), kit.staff, kit.audit)
    assert set(server._methods) == {
        "ping",
        "wechat_login",
        "staff_login",
        "refresh",
        "logout",
        "me",
        "record_consent",
        "delete_me",
        "signing_keys",
        "create_staff",
        "list_staff",
        "update_staff",
        "reset_staff_password",
        "change_password",
        "revocations",
        "audit_log",
        "create_patient",
        "list_patients",
        "get_patient",
        "update_patient",
        "delete_patient",
        "resolve_patient",
        "user_openid",
    }
    login = await server._dispatch("wechat_login", b'{"code": "code-a"}', CallContext("r1"))
    user_id = login["ok"]["user"]["id"]
    caller = Caller(user_id=user_id, role="patient")
    me = await server._dispatch("me", b"{}", CallContext("r2", caller=caller))
    assert me == {"ok": {"id": user_id, "role": "patient", "hospital_id": None, "consents": []}}
    listed = await server._dispatch("list_patients", b"{}", CallContext("r3"))
    assert listed["error"]["code"] == "UNAUTHENTICATED"
    bad = await server._dispatch("wechat_login", b'{"code": {"$gt": ""}}', CallContext("r4"))
    assert bad["error"]["code"] == "VALIDATION_FAILED"
    keys = await server._dispatch("signing_keys", b"{}", CallContext("r5"))
    assert keys["ok"]["keys"][0]["alg"] == "EdDSA"


async def test_user_openid_answers_internal_callers_for_patients_only(
    kit: AuthKit, mongo_db: AsyncDatabase[Document], clock: FakeClock
) -> None:
    server = RpcServer("auth", connection=None)  # type: ignore[arg-type]  # never started
    register(server, kit.service, await build_patients(mongo_db, clock), kit.staff, kit.audit)
    login = await server._dispatch("wechat_login", b'{"code": "code-b"}', CallContext("r1"))
    user_id = login["ok"]["user"]["id"]
    body = json.dumps({"user_id": user_id}).encode()
    assert await server._dispatch("user_openid", body, CallContext("r2")) == {
        "ok": {"openid": "openid-b"}
    }
    patient = Caller(user_id=user_id, role="patient")
    refused = await server._dispatch("user_openid", body, CallContext("r3", caller=patient))
    assert refused["error"]["code"] == "FORBIDDEN"
    # signed by notify: a service's own call; signed by the gateway with no user: refused
    assert await server._dispatch("user_openid", body, CallContext("r5", service="notify")) == {
        "ok": {"openid": "openid-b"}
    }
    resolve = json.dumps({"user_id": user_id, "patient_id": "p_any"}).encode()
    for method, params in (("user_openid", body), ("resolve_patient", resolve)):
        anonymous = await server._dispatch(method, params, CallContext("r6", service="gateway"))
        assert anonymous["error"]["code"] == "FORBIDDEN", method
    await add_staff(kit)
    staff = await kit.users.by_username("staff1")
    assert staff is not None
    staff_body = json.dumps({"user_id": staff["_id"]}).encode()
    for unknown in (staff_body, b'{"user_id": "u_nobody"}'):
        missing = await server._dispatch("user_openid", unknown, CallContext("r4"))
        assert missing["error"]["code"] == "NOT_FOUND"
