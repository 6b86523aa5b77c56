"""The gateway's HTTP behaviour against a fake RPC client: validation, error mapping,
routing, request ids, parameter forwarding, rate limits, metrics and OpenAPI."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.limits import Limits, Rate
from gateway.routes import ROUTES
from gateway.testing import Client, FakeRpc, MakeClient, TokenSigner, authenticated, bearer
from shared.errors import LimitReached, ServiceUnavailable, WechatError

pytest_plugins = ["tests.gateway_fixtures"]
PATIENT_BODY = {
    "name": "张三",
    "id_number": "11010519491231002X",
    "phone": "13800138000",
    "relation": "self",
}
TOKENS = {
    "access_token": "a",
    "refresh_token": "r" * 20,
    "expires_in": 900,
    "user": {"id": "u_1", "role": "patient"},
}


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["details"], dict)
    error: dict[str, Any] = body["error"]
    return error


# --- validation ---------------------------------------------------------------------------


async def test_unknown_body_field_is_refused_with_field_message(
    client: Client, rpc: FakeRpc
) -> None:
    r = await client.post("/api/v1/auth/wechat/login", json={"code": "c1", "admin": True})
    error = await error_of(r, 422)
    assert error["code"] == "VALIDATION_FAILED"
    assert "admin" in error["details"]["fields"]
    assert rpc.calls_to("wechat_login") == []


async def test_operator_object_where_string_expected_is_refused(
    client: Client, rpc: FakeRpc
) -> None:
    r = await client.post("/api/v1/auth/wechat/login", json={"code": {"$gt": ""}})
    error = await error_of(r, 422)
    assert "code" in error["details"]["fields"]
    assert rpc.calls_to("wechat_login") == []


async def test_number_where_string_expected_is_refused(client: Client) -> None:
    r = await client.post("/api/v1/auth/staff/login", json={"username": 1, "password": "x"})
    assert "username" in (await error_of(r, 422))["details"]["fields"]


async def test_malformed_json_is_bad_request(client: Client) -> None:
    r = await client.post(
        "/api/v1/auth/wechat/login", data=b'{"code": ', headers={"Content-Type": "application/json"}
    )
    assert (await error_of(r, 400))["code"] == "BAD_REQUEST"


async def test_body_over_64_kib_is_refused_up_front(client: Client, rpc: FakeRpc) -> None:
    payload = json.dumps({"code": "x" * 100 * 1024}).encode()
    r = await client.post("/api/v1/auth/wechat/login", data=payload)
    assert (await error_of(r, 413))["code"] == "PAYLOAD_TOO_LARGE"
    assert rpc.calls_to("wechat_login") == []


async def test_body_just_under_64_kib_is_read_and_validated(client: Client) -> None:
    payload = json.dumps({"code": "x" * 60 * 1024}).encode()
    r = await client.post("/api/v1/auth/wechat/login", data=payload)
    assert "code" in (await error_of(r, 422))["details"]["fields"]


async def test_chunked_body_over_64_kib_is_refused(client: Client, rpc: FakeRpc) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"code": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    r = await client.post("/api/v1/auth/wechat/login", data=chunks())
    assert (await error_of(r, 413))["code"] == "PAYLOAD_TOO_LARGE"
    assert rpc.calls_to("wechat_login") == []


# --- routing and error mapping ------------------------------------------------------------


async def test_unknown_route_is_json_not_found(client: Client) -> None:
    r = await client.get("/api/v1/nothing/here")
    assert (await error_of(r, 404))["code"] == "NOT_FOUND"


async def test_wrong_method_is_json_method_not_allowed(client: Client) -> None:
    r = await client.put("/api/v1/me")
    error = await error_of(r, 405)
    assert error["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in r.headers["Allow"]


async def test_service_domain_error_keeps_its_status_and_body(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("auth", "create_patient", LimitReached("最多5个就诊人 / at most 5", limit=5))
    r = await client.post("/api/v1/patients", json=PATIENT_BODY, headers=bearer(signer.token()))
    error = await error_of(r, 409)
    assert error == {
        "code": "LIMIT_REACHED",
        "message": "最多5个就诊人 / at most 5",
        "details": {"limit": 5},
    }


async def test_wechat_error_is_bad_gateway_with_errcode(client: Client, rpc: FakeRpc) -> None:
    rpc.on("auth", "wechat_login", WechatError(errcode=-1))
    r = await client.post("/api/v1/auth/wechat/login", json={"code": "c"})
    error = await error_of(r, 502)
    assert error["details"] == {"errcode": -1}


async def test_unavailable_service_is_503_fast(client: Client, rpc: FakeRpc) -> None:
    rpc.on("auth", "wechat_login", ServiceUnavailable(service="auth", reason="timeout"))
    started = time.monotonic()
    r = await client.post("/api/v1/auth/wechat/login", json={"code": "c"})
    assert (await error_of(r, 503))["code"] == "SERVICE_UNAVAILABLE"
    assert time.monotonic() - started < 1.0


async def test_unexpected_failure_is_500_without_traceback(
    client: Client, rpc: FakeRpc, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(params: Any, caller: Any) -> Any:
        raise RuntimeError("secret internals")

    rpc.on("auth", "wechat_login", explode)
    r = await client.post("/api/v1/auth/wechat/login", json={"code": "c"})
    error = await error_of(r, 500)
    assert error["code"] == "INTERNAL"
    assert "secret internals" not in await r.text()
    assert any(rec.exc_info for rec in caplog.records if rec.name == "guahao.gateway")


# --- forwarding ---------------------------------------------------------------------------


async def test_request_id_is_echoed_and_forwarded(client: Client, rpc: FakeRpc) -> None:
    rpc.on("auth", "wechat_login", TOKENS)
    r = await client.post(
        "/api/v1/auth/wechat/login", json={"code": "c"}, headers={"X-Request-ID": "req-42.a:b"}
    )
    assert r.status == 200
    assert r.headers["X-Request-ID"] == "req-42.a:b"
    assert rpc.calls_to("wechat_login")[0].request_id == "req-42.a:b"


@pytest.mark.parametrize("sent", ["has spaces", "x" * 65, "", "<script>"])
async def test_insane_request_id_is_replaced(client: Client, rpc: FakeRpc, sent: str) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": sent})
    echoed = r.headers["X-Request-ID"]
    assert echoed != sent and len(echoed) == 32


async def test_request_id_is_generated_when_absent(client: Client, rpc: FakeRpc) -> None:
    rpc.on("auth", "wechat_login", TOKENS)
    r = await client.post("/api/v1/auth/wechat/login", json={"code": "c"})
    assert rpc.calls_to("wechat_login")[0].request_id == r.headers["X-Request-ID"]


async def test_create_patient_forwards_body_and_caller_and_answers_201(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("auth", "create_patient", lambda params, caller: {"id": "p_1", **params})
    r = await client.post(
        "/api/v1/patients", json=PATIENT_BODY, headers=bearer(signer.token("u_9"))
    )
    assert r.status == 201
    call = rpc.calls_to("create_patient")[0]
    assert call.params == PATIENT_BODY
    assert call.caller is not None
    assert (call.caller.user_id, call.caller.role) == ("u_9", "patient")


async def test_patch_forwards_only_sent_fields_and_the_path_id(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("auth", "update_patient", {"id": "p_1"})
    r = await client.patch(
        "/api/v1/patients/p_1", json={"phone": "13900139000"}, headers=bearer(signer.token())
    )
    assert r.status == 200
    assert rpc.calls_to("update_patient")[0].params == {"phone": "13900139000", "patient_id": "p_1"}


async def test_delete_answers_empty_object(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("auth", "delete_patient", None)
    r = await client.delete("/api/v1/patients/p_1", headers=bearer(signer.token()))
    assert r.status == 200
    assert await r.json() == {}
    assert rpc.calls_to("delete_patient")[0].params == {"patient_id": "p_1"}


async def test_consent_is_forwarded_and_unknown_kinds_are_refused(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    me = {
        "id": "u_9",
        "role": "patient",
        "consents": [{"kind": "privacy", "version": "2026-11", "at": "2026-12-01T09:00:00+08:00"}],
    }
    rpc.on("auth", "record_consent", me)
    r = await client.post(
        "/api/v1/me/consents",
        json={"kind": "privacy", "version": "2026-11"},
        headers=bearer(signer.token("u_9")),
    )
    assert r.status == 200 and (await r.json())["consents"][0]["version"] == "2026-11"
    assert rpc.calls_to("record_consent")[0].params == {"kind": "privacy", "version": "2026-11"}
    bad = await client.post(
        "/api/v1/me/consents",
        json={"kind": "ads", "version": "1"},
        headers=bearer(signer.token("u_9")),
    )
    assert "kind" in (await error_of(bad, 422))["details"]["fields"]


async def test_delete_me_is_for_patients_and_keeps_a_409_from_auth(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    from shared.errors import InvalidState

    rpc.on("auth", "delete_me", {"deleted": True, "patients_deleted": 2})
    r = await client.delete("/api/v1/me", headers=bearer(signer.token("u_9")))
    assert r.status == 200 and await r.json() == {"deleted": True, "patients_deleted": 2}
    staff = await client.delete(
        "/api/v1/me", headers=bearer(signer.token("s_1", "hospital_admin", "h_1"))
    )
    assert (await error_of(staff, 403))["code"] == "FORBIDDEN"
    rpc.on("auth", "delete_me", InvalidState("有待就诊的预约 / active appointments", active=1))
    refused = await client.delete("/api/v1/me", headers=bearer(signer.token("u_9")))
    assert (await error_of(refused, 409))["details"] == {"active": 1}


async def test_patient_move_forwards_the_path_id_and_slot(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("booking", "move_appointment", {"id": "a_1"})
    r = await client.post(
        "/api/v1/appointments/a_1/move",
        json={"slot_id": "s_2"},
        headers=bearer(signer.token("u_9")),
    )
    assert r.status == 200
    call = rpc.calls_to("move_appointment")[0]
    assert call.params == {"slot_id": "s_2", "appointment_id": "a_1"}
    bad = await client.post(
        "/api/v1/appointments/a_1/move",
        json={"slot_id": {"$gt": ""}},
        headers=bearer(signer.token("u_9")),
    )
    assert "slot_id" in (await error_of(bad, 422))["details"]["fields"]


async def test_create_staff_merges_path_hospital_into_params(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("auth", "create_staff", {"id": "s_1", "username": "alice", "hospital_id": "h_1"})
    r = await client.post(
        "/api/v1/admin/hospitals/h_1/staff",
        json={"username": "alice", "password": "correct horse"},
        headers=bearer(signer.token("admin", "platform_admin")),
    )
    assert r.status == 201
    assert rpc.calls_to("create_staff")[0].params == {
        "username": "alice",
        "password": "correct horse",
        "hospital_id": "h_1",
        "role": "hospital_admin",
    }


async def test_logout_accepts_an_empty_body(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("auth", "logout", None)
    r = await client.post("/api/v1/auth/logout", headers=bearer(signer.token()))
    assert r.status == 200
    assert rpc.calls_to("logout")[0].params == {"refresh_token": None}


# --- rate limits --------------------------------------------------------------------------


async def test_login_rate_limit_answers_429_with_retry_after(
    make_client: MakeClient, rpc: FakeRpc
) -> None:
    rpc.on("auth", "wechat_login", TOKENS)
    client = await make_client(limits=Limits({"wechat_login": Rate.per_minute(2, 2)}))
    for _ in range(2):
        assert (await client.post("/api/v1/auth/wechat/login", json={"code": "c"})).status == 200
    r = await client.post("/api/v1/auth/wechat/login", json={"code": "c"})
    assert (await error_of(r, 429))["code"] == "RATE_LIMITED"
    assert int(r.headers["Retry-After"]) == 30
    assert len(rpc.calls_to("wechat_login")) == 2


async def test_per_ip_limit_covers_every_api_route_but_not_probes(make_client: MakeClient) -> None:
    client = await make_client(limits=Limits({"ip": Rate(1, 3)}))
    statuses = [(await client.get("/api/v1/nope")).status for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    assert (await client.get("/healthz")).status == 200


async def test_per_user_limit_is_per_user(
    make_client: MakeClient, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on(
        "auth",
        "me",
        lambda p, caller: {"id": authenticated(caller).user_id, "role": authenticated(caller).role},
    )
    client = await make_client(limits=Limits({"user": Rate(0.5, 2)}))
    alice, bob = bearer(signer.token("alice")), bearer(signer.token("bob"))
    assert [(await client.get("/api/v1/me", headers=alice)).status for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert (await client.get("/api/v1/me", headers=bob)).status == 200


async def test_forwarded_for_is_believed_only_from_trusted_proxies(make_client: MakeClient) -> None:
    limits = Limits({"ip": Rate(0.01, 1)})
    trusting = await make_client(limits=limits, trusted_proxies=["127.0.0.1"])
    for client_address in ("203.0.113.1", "203.0.113.2"):
        r = await trusting.get("/api/v1/nope", headers={"X-Forwarded-For": client_address})
        assert r.status == 404

    distrusting = await make_client(limits=Limits({"ip": Rate(0.01, 1)}))
    first = await distrusting.get("/api/v1/nope", headers={"X-Forwarded-For": "203.0.113.1"})
    second = await distrusting.get("/api/v1/nope", headers={"X-Forwarded-For": "203.0.113.2"})
    assert (first.status, second.status) == (404, 429)


async def test_forwarded_for_through_two_trusted_hops_finds_the_client(
    make_client: MakeClient, rpc: FakeRpc
) -> None:
    """Cloud load balancer (198.18.0.0/15) → nginx (127.0.0.1) → gateway: each hop appends
    the address it saw; a spoofed left-most entry is never believed."""
    rpc.on("auth", "wechat_login", TOKENS)
    client = await make_client(
        limits=Limits({"wechat_login": Rate(0.01, 1)}),
        trusted_proxies=["127.0.0.1", "198.18.0.0/15"],
    )
    statuses: list[int] = []
    for client_address in ("203.0.113.1", "203.0.113.2", "203.0.113.1"):
        forwarded = f"6.6.6.{len(statuses)}, {client_address}, 198.18.0.7"
        r = await client.post(
            "/api/v1/auth/wechat/login", json={"code": "c1"}, headers={"X-Forwarded-For": forwarded}
        )
        statuses.append(r.status)
    assert statuses == [200, 200, 429]


async def test_staff_login_is_limited_per_username_and_address(
    make_client: MakeClient, rpc: FakeRpc
) -> None:
    rpc.on("auth", "staff_login", TOKENS)
    client = await make_client(
        limits=Limits({"login": Rate(0.01, 2)}), trusted_proxies=["127.0.0.1"]
    )

    async def login(username: str, address: str) -> int:
        r = await client.post(
            "/api/v1/auth/staff/login",
            json={"username": username, "password": "wrong-pass"},
            headers={"X-Forwarded-For": address},
        )
        return r.status

    assert [await login("admin", "203.0.113.9") for _ in range(3)] == [200, 200, 429]
    assert await login("ADMIN", "203.0.113.9") == 429  # usernames are case-insensitive
    assert await login("admin", "198.51.100.1") == 200  # the attacker cannot lock it out
    assert await login("desk1", "203.0.113.9") == 200
    sent = rpc.calls_to("staff_login")[-1].params
    assert sent == {"username": "desk1", "password": "wrong-pass", "client_ip": "203.0.113.9"}


async def test_the_client_address_cannot_be_sent_in_the_body(client: Client, rpc: FakeRpc) -> None:
    r = await client.post(
        "/api/v1/auth/staff/login",
        json={"username": "admin", "password": "x", "client_ip": "10.0.0.1"},
    )
    assert "client_ip" in (await error_of(r, 422))["details"]["fields"]
    assert rpc.calls_to("staff_login") == []


async def test_refresh_is_limited_per_token_family_not_per_address(
    make_client: MakeClient, rpc: FakeRpc
) -> None:
    rpc.on("auth", "refresh", TOKENS)
    client = await make_client(limits=Limits({"refresh": Rate(0.01, 2), "ip": Rate(1000, 1000)}))

    async def refresh(token: str) -> int:
        return (await client.post("/api/v1/auth/refresh", json={"refresh_token": token})).status

    family_a, family_b = "a" * 32, "b" * 32
    assert [await refresh(f"{family_a}.secret-{i:04d}xxxxxxxx") for i in range(3)] == [
        200,
        200,
        429,
    ]
    # another install behind the same address is not affected
    assert await refresh(f"{family_b}.secret-0000xxxxxxxx") == 200


async def test_default_limits_admit_a_crowd_of_wechat_logins_from_one_address(
    make_client: MakeClient, rpc: FakeRpc
) -> None:
    """api.md: at least 20 WeChat logins a second from one client address, sustained."""
    rpc.on("auth", "wechat_login", TOKENS)
    clock = [0.0]
    client = await make_client(limits=Limits(clock=lambda: clock[0]))
    for second in range(10):
        clock[0] = float(second)
        for _ in range(25):
            r = await client.post("/api/v1/auth/wechat/login", json={"code": "c1"})
            assert r.status == 200, (second, await r.text())


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/v1/appointments", {"cursor": "²"}, "cursor"),
        ("/api/v1/appointments", {"cursor": "٣"}, "cursor"),
        ("/api/v1/doctors", {"cursor": "²"}, "cursor"),
        ("/api/v1/doctors/d_1/schedules", {"from": "9999-12-31"}, "from"),
        ("/api/v1/doctors/d_1/schedules", {"to": "１９９９-01-01"}, "to"),
    ],
)
async def test_crafted_query_values_are_422_with_a_field_message(
    client: Client, rpc: FakeRpc, signer: TokenSigner, path: str, query: dict[str, str], field: str
) -> None:
    r = await client.get(path, params=query, headers=bearer(signer.token()))
    error = await error_of(r, 422)
    assert field in error["details"]["fields"]
    assert [c for c in rpc.calls if c.method != "signing_keys"] == []


# --- observability ------------------------------------------------------------------------


async def test_metrics_count_requests_by_route_template(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("auth", "get_patient", {"id": "p_secret_77"})
    await client.get("/api/v1/patients/p_secret_77", headers=bearer(signer.token()))
    await client.get("/api/v1/unknown/p_secret_77")
    r = await client.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await r.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert (
        value(
            "guahao_http_requests_total",
            route="/api/v1/patients/{patient_id}",
            method="GET",
            status="200",
        )
        == 1
    )
    assert value("guahao_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert (
        value(
            "guahao_http_request_duration_seconds_bucket",
            route="/api/v1/patients/{patient_id}",
            method="GET",
            le="+Inf",
        )
        == 1
    )
    assert (
        value(
            "guahao_rpc_duration_seconds_count", service="auth", method="get_patient", outcome="ok"
        )
        == 1
    )
    assert "p_secret_77" not in text


async def test_access_log_is_one_line_per_request_without_token(
    client: Client, rpc: FakeRpc, signer: TokenSigner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="guahao.gateway.access")
    rpc.on("auth", "me", {"id": "u_5", "role": "patient"})
    token = signer.token("u_5")
    await client.get("/api/v1/me", headers={**bearer(token), "X-Request-ID": "rid-1"})
    [entry] = [r for r in caplog.records if r.name == "guahao.gateway.access"]
    fields = {k: getattr(entry, k) for k in ("method", "route", "status", "user_id")}
    assert fields == {"method": "GET", "route": "/api/v1/me", "status": 200, "user_id": "u_5"}
    assert entry.__dict__["ms"] >= 0
    assert token not in caplog.text


async def test_openapi_lists_every_route_with_its_request_schema(client: Client) -> None:
    r = await client.get("/api/v1/openapi.json")
    doc = await r.json()
    schemas = doc["components"]["schemas"]
    for route in ROUTES:
        op = doc["paths"][route.full_path][route.method.lower()]
        assert str(route.status) in op["responses"]
        if route.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert set(schemas[ref.rsplit("/", 1)[-1]]["properties"]) == {
                field.alias or name for name, field in route.body.model_fields.items()
            }
        if route.roles is not None:
            assert op["security"] == [{"bearerAuth": []}]
            assert "401" in op["responses"]
        for name in route.path_params:
            assert {"name": name, "in": "path"}.items() <= next(
                p for p in op["parameters"] if p["name"] == name
            ).items()
    error = schemas["ErrorResponse"]
    assert error["properties"]["error"]["$ref"] == "#/components/schemas/ErrorObject"


async def test_healthz_is_always_ok(client: Client) -> None:
    r = await client.get("/healthz")
    assert (r.status, await r.json()) == (200, {"status": "ok"})


async def test_concurrent_requests_keep_their_own_request_ids(client: Client, rpc: FakeRpc) -> None:
    async def slow(params: Any, caller: Any) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return TOKENS

    rpc.on("auth", "wechat_login", slow)
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/auth/wechat/login",
                json={"code": f"c{i}"},
                headers={"X-Request-ID": f"rid-{i}"},
            )
            for i in range(10)
        )
    )
    assert {r.headers["X-Request-ID"] for r in responses} == {f"rid-{i}" for i in range(10)}
    forwarded = {c.params["code"]: c.request_id for c in rpc.calls_to("wechat_login")}
    assert forwarded == {f"c{i}": f"rid-{i}" for i in range(10)}


# --- readiness ----------------------------------------------------------------------------


async def test_readyz_probes_are_shared_and_a_ready_answer_is_reused(
    make_client: MakeClient, rpc: FakeRpc
) -> None:
    services = ("auth", "catalog")

    async def slow_pong(params: Any, caller: Any) -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return {}

    for service in services:
        rpc.on(service, "ping", slow_pong)
    client = await make_client(required_services=services)
    answers = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
    assert {r.status for r in answers} == {200}
    assert len(rpc.calls_to("ping")) == len(services)  # one probe for 20 requests
    assert (await client.get("/readyz")).status == 200
    assert len(rpc.calls_to("ping")) == len(services)  # reused within READY_TTL


async def test_a_not_ready_answer_is_not_reused(make_client: MakeClient, rpc: FakeRpc) -> None:
    client = await make_client(required_services=("auth",))  # nobody answers ping
    assert (await client.get("/readyz")).status == 503
    rpc.on("auth", "ping", {})
    assert (await client.get("/readyz")).status == 200
