"""Staff roles and revoked sessions at the gateway (fake services, real route table)."""

from __future__ import annotations

import re
import time

import pytest
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.routes import FRONT_DESK, HOSPITAL_STAFF, ROUTES, Route
from gateway.testing import Client, FakeRpc, TokenSigner, authenticated, bearer, fake_auth
from shared.settings import Settings

DESK_RPCS = {
    "hospital_appointments",
    "hospital_get_appointment",
    "hospital_cancel",
    "check_in",
    "no_show",
    "complete",
    "move",
    # the queue (候诊叫号)
    "queue_view",
    "queue_call_next",
    "queue_recall",
    "queue_skip",
    "queue_done",
}


def hospital_routes() -> list[Route]:
    return [r for r in ROUTES if r.hospital_scoped]


def concrete(route: Route, hospital_id: str) -> str:
    path = route.full_path.replace("{hospital_id}", hospital_id)
    return re.sub(r"\{[a-z_]+\}", "x_1", path)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture
def rpc(signer: TokenSigner) -> FakeRpc:
    fake = fake_auth(signer)
    fake.on(
        "auth",
        "me",
        lambda p, caller: {
            "id": authenticated(caller).user_id,
            "role": authenticated(caller).role,
            "hospital_id": authenticated(caller).hospital_id,
        },
    )
    return fake


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, rpc: FakeRpc) -> Client:
    return await aiohttp_client(create_app(Settings(), rpc=rpc, routes=ROUTES))


def test_desk_is_allowed_exactly_on_the_front_desk_routes() -> None:
    desk = {
        r.rpc for r in ROUTES if r.roles is not None and "desk" in r.roles and r.hospital_scoped
    }
    assert desk == DESK_RPCS
    for route in hospital_routes():
        assert route.roles in (FRONT_DESK, HOSPITAL_STAFF), route.path


@pytest.mark.parametrize(
    "route",
    [r for r in hospital_routes() if r.rpc not in DESK_RPCS],
    ids=lambda r: f"{r.method} {r.path}",
)
async def test_desk_on_an_admin_route_is_forbidden(
    client: Client, rpc: FakeRpc, signer: TokenSigner, route: Route
) -> None:
    r = await client.request(
        route.method,
        concrete(route, "h_1"),
        json={},
        headers=bearer(signer.token("s_d", "desk", "h_1")),
    )
    assert r.status == 403, await r.text()
    assert (await r.json())["error"]["code"] == "FORBIDDEN"
    assert rpc.calls_to(route.rpc) == []


@pytest.mark.parametrize(
    "route",
    [r for r in hospital_routes() if r.rpc in DESK_RPCS],
    ids=lambda r: f"{r.method} {r.path}",
)
async def test_desk_reaches_front_desk_routes_of_its_hospital_only(
    client: Client, rpc: FakeRpc, signer: TokenSigner, route: Route
) -> None:
    rpc.on(route.service, route.rpc, {})
    token = bearer(signer.token("s_d", "desk", "h_1"))
    other = await client.request(route.method, concrete(route, "h_2"), json={}, headers=token)
    assert other.status == 404
    assert rpc.calls_to(route.rpc) == []
    body = {"slot_id": "sl_1"} if route.rpc == "move" else {}
    await client.request(route.method, concrete(route, "h_1"), json=body, headers=token)
    calls = rpc.calls_to(route.rpc)
    assert len(calls) == 1 and authenticated(calls[0].caller).role == "desk"
    assert authenticated(calls[0].caller).hospital_id == "h_1"


async def test_desk_token_without_hospital_is_refused(client: Client, signer: TokenSigner) -> None:
    r = await client.get("/api/v1/me", headers=bearer(signer.token("s_d", "desk")))
    assert r.status == 401


async def test_revoked_token_version_is_refused_once_the_gateway_learns_it(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    old = bearer(signer.token("s_1", "hospital_admin", "h_1", tv=0))
    assert (await client.get("/api/v1/me", headers=old)).status == 200
    now = time.time()
    rpc.on("auth", "update_staff", {"id": "s_1"})
    rpc.on(
        "auth",
        "revocations",
        {"items": [{"user_id": "s_1", "token_version": 1, "at": now}], "now": now},
    )
    admin = bearer(signer.token("s_0", "hospital_admin", "h_1", tv=0))
    r = await client.patch(
        "/api/v1/admin/hospitals/h_1/staff/s_1", json={"disabled": True}, headers=admin
    )
    assert r.status == 200
    # learnt before the PATCH was answered: no RPC per request after that
    assert len(rpc.calls_to("revocations")) == 1
    refused = await client.get("/api/v1/me", headers=old)
    assert refused.status == 401
    new = bearer(signer.token("s_1", "hospital_admin", "h_1", tv=1))
    assert (await client.get("/api/v1/me", headers=new)).status == 200
    assert (await client.get("/api/v1/me", headers=admin)).status == 200
    assert len(rpc.calls_to("revocations")) == 1


async def test_token_after_a_reset_opens_only_the_password_change(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    token = bearer(signer.token("s_1", "desk", "h_1", tv=1, pwc=True))
    rpc.on("booking", "hospital_appointments", {"items": []})
    blocked = await client.get("/api/v1/admin/hospitals/h_1/appointments", headers=token)
    assert blocked.status == 403
    assert (await blocked.json())["error"]["code"] == "PASSWORD_CHANGE_REQUIRED"
    assert (await client.get("/api/v1/me", headers=token)).status == 200
    rpc.on("auth", "change_password", {"ok": True})
    rpc.on("auth", "revocations", {"items": [], "now": time.time()})
    changed = await client.post(
        "/api/v1/auth/password",
        headers=token,
        json={"old": "one-time-pass", "new": "a-new-password"},
    )
    assert changed.status == 200
    assert authenticated(rpc.calls_to("change_password")[0].caller).user_id == "s_1"


@pytest.mark.parametrize(
    "query", ["from=2026-11-30&to=2026-11-01", "from=9999-12-31", "to=1999-01-01", "from=%C2%B2"]
)
async def test_bad_audit_dates_are_422_not_500(
    client: Client, rpc: FakeRpc, signer: TokenSigner, query: str
) -> None:
    token = bearer(signer.token("s_1", "hospital_admin", "h_1"))
    r = await client.get(f"/api/v1/admin/hospitals/h_1/audit?{query}", headers=token)
    assert r.status == 422, await r.text()
    assert rpc.calls_to("audit_log") == []


async def test_audit_dates_reach_auth_by_their_public_names(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("auth", "audit_log", {"items": []})
    token = bearer(signer.token("s_1", "hospital_admin", "h_1"))
    r = await client.get(
        "/api/v1/admin/hospitals/h_1/audit?from=2026-11-01&to=2026-11-30", headers=token
    )
    assert r.status == 200
    assert rpc.calls_to("audit_log")[0].params == {
        "hospital_id": "h_1",
        "from": "2026-11-01",
        "to": "2026-11-30",
    }
