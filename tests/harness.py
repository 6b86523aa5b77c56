"""A running system for tests: an isolated RabbitMQ vhost, the embedded store, the WeChat
fake, every service and the gateway, started exactly as `make run` starts them."""

from __future__ import annotations

import json as json_lib
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.openapi import build_openapi
from shared.broker_admin import rabbitmqctl
from shared.devstack import DevStack
from shared.storage.testing import free_port

ADMIN_USERNAME = "root_admin"
ADMIN_PASSWORD = "correct-horse-battery-staple"


def create_vhost() -> str:
    """A RabbitMQ vhost of its own, so a developer's `make run` never serves test calls."""
    if shutil.which("rabbitmqctl") is None:
        return "/"
    vhost = f"guahao_test_{uuid.uuid4().hex[:8]}"
    # both commands are idempotent, so a refusal is asked again: a loaded node can refuse a
    # CLI call for a moment (seen in CI: `add_vhost` exiting 64 while the node kept running)
    transient = (64, 69, 75)
    rabbitmqctl("add_vhost", vhost, attempts=6, transient=transient)
    rabbitmqctl(
        "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*", attempts=6, transient=transient
    )
    return vhost


def delete_vhost(vhost: str) -> None:
    if vhost != "/":
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


def amqp_url(vhost: str) -> str:
    return "amqp://guest:guest@127.0.0.1:5672/" + ("" if vhost == "/" else vhost)


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


class ContractChecker:
    """Every answer of the gateway under /api/v1 must carry a status that the OpenAPI
    document declares for its operation: the system tests hold the document to account."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.operations: list[tuple[re.Pattern[str], str, frozenset[int]]] = []
        # literal paths first: `/appointments/eligibility` before `/appointments/{id}`
        for path, ops in sorted(spec["paths"].items(), key=lambda kv: kv[0].count("{")):
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
            for method, op in ops.items():
                self.operations.append(
                    (pattern, method.upper(), frozenset(int(s) for s in op["responses"]))
                )

    def declared(self, method: str, path: str) -> frozenset[int] | None:
        for pattern, op_method, statuses in self.operations:
            if op_method == method.upper() and pattern.match(path):
                return statuses
        return None  # not an operation of the document (e.g. /api/v1/openapi.json)

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        declared = self.declared(method, path)
        assert declared is None or status in declared, (
            f"{method} {path} answered {status}, which its OpenAPI operation does not "
            f"declare ({sorted(declared)}): {body}"
        )


CONTRACT = ContractChecker(build_openapi())


class Api:
    """A small HTTP client for the gateway and the WeChat fake's control endpoints."""

    def __init__(self, stack: DevStack, session: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.session = session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Response:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if path in ("/healthz", "/readyz", "/metrics") or path.startswith("/api/"):
            url = f"{self.stack.gateway_url}{path}"
        else:
            url = f"{self.stack.gateway_url}/api/v1{path}"
        async with self.session.request(
            method, url, json=json, data=data, headers=hdrs, params=params
        ) as resp:
            text = await resp.text()
            try:
                body: Any = json_lib.loads(text) if text else None
            except ValueError:
                body = text
            CONTRACT.check(method, resp.url.path, resp.status, body)
            return Response(resp.status, body, dict(resp.headers))

    async def fake(self, method: str, path: str, **payload: Any) -> Any:
        url = f"{self.stack.wechat_url}/__fake__/{path}"
        kwargs: dict[str, Any] = {"json": payload} if method != "GET" else {"params": payload}
        async with self.session.request(method, url, **kwargs) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json(content_type=None)

    async def login_code(self, openid: str | None = None) -> str:
        reply = await self.fake("POST", "codes", openid=openid or f"o_{uuid.uuid4().hex}")
        return str(reply["code"])

    async def patient_login(self, openid: str | None = None) -> dict[str, Any]:
        resp = await self.request(
            "POST", "/auth/wechat/login", json={"code": await self.login_code(openid)}
        )
        assert resp.status == 200, resp.body
        return dict(resp.body)

    async def patient_token(self, openid: str | None = None) -> str:
        """A logged-in patient who, as the mini-program asks first, consented to the
        processing of patient data (a profile cannot be added before)."""
        token = str((await self.patient_login(openid))["access_token"])
        consent = await self.request(
            "POST", "/me/consents", token=token, json={"kind": "patient_data", "version": "2026-12"}
        )
        assert consent.status == 200, consent.body
        return token

    async def admin_token(self) -> str:
        resp = await self.request(
            "POST",
            "/auth/staff/login",
            json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
        )
        assert resp.status == 200, resp.body
        return str(resp.body["access_token"])


def start_stack(
    base: Path, extra_env: dict[str, str] | None = None, *, amqp_urls: list[str] | None = None
) -> tuple[DevStack, str]:
    """The system on a vhost of its own of the dev broker, or, given `amqp_urls`, on a
    cluster's nodes (its default vhost: the cluster is the test's own); `extra_env` adds to
    (or overrides) the environment every process gets."""
    vhost = create_vhost() if amqp_urls is None else "/"
    env = {
        **os.environ,
        "AMQP_URL": amqp_url(vhost) if amqp_urls is None else amqp_urls[0],
        "GUAHAO_ADMIN_USERNAME": ADMIN_USERNAME,
        "GUAHAO_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GUAHAO_DEMO": "0",
        "GATEWAY_HOST": "127.0.0.1",
        # every test client is 127.0.0.1: the per-IP limits are tested in test_gateway_limits
        # webhook receivers in tests listen on 127.0.0.1 over plain HTTP
        "WEBHOOK_ALLOW_HTTP": "1",
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "WEBHOOK_RETRY_BASE_SECONDS": "1",
        # units a killed booking process left held come back sooner than in production
        "BOOKING_ORPHAN_CHECK_SECONDS": "15",
        "GUAHAO_RATE_LIMITS": "ip=100000/s:100000,login=100000/min:100000,"
        "user=100000/s:100000,book=100000/s:100000,"
        "refresh=100000/min:100000,wechat_login=100000/s:100000",
    }
    for var in ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_API_BASE", "GATEWAY_PORT", "AMQP_URLS"):
        env.pop(var, None)
    if amqp_urls is not None:
        env["AMQP_URLS"] = ",".join(amqp_urls)
    env.update(extra_env or {})
    stack = DevStack(base / "data", env=env, gateway_port=free_port(), log_dir=base / "logs")
    try:
        stack.start(timeout=90)
    except Exception:
        stack.stop()
        delete_vhost(vhost)
        raise
    return stack, vhost


def read_logs(stack: DevStack) -> str:
    assert stack.log_dir is not None
    return "\n".join(p.read_text(errors="replace") for p in sorted(stack.log_dir.glob("*.log")))
