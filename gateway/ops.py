"""Operator endpoints: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.responses import json_response
from gateway.routes import API_PREFIX
from gateway.state import GATEWAY, Gateway
from gateway.upstream import Upstream
from shared.errors import DomainError
from shared.metrics import CONTENT_TYPE

PING_TIMEOUT = 1.0
READY_TTL = 1.0


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


class Readiness:
    """The readiness answer, shared: a probe costs one RPC per required service, and
    `/readyz` is reachable by anyone who can reach the gateway. Concurrent requests wait
    for the one probe in flight; a ready answer is reused for READY_TTL seconds. A
    not-ready answer is not reused (recovery shows at once) but is still single-flight,
    so an outage costs at most one probe per PING_TIMEOUT."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready_until = 0.0
        self._answer: tuple[dict[str, Any], bool] | None = None
        self._inflight: asyncio.Task[tuple[dict[str, Any], bool]] | None = None

    async def answer(self, gw: Gateway) -> tuple[dict[str, Any], bool]:
        if self._answer is not None and self._clock() < self._ready_until:
            return self._answer
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._probe(gw))
            self._inflight.add_done_callback(self._finished)
        return await asyncio.shield(self._inflight)

    def _finished(self, task: asyncio.Task[tuple[dict[str, Any], bool]]) -> None:
        self._inflight = None
        if not task.cancelled() and task.exception() is None and task.result()[1]:
            self._answer = task.result()
            self._ready_until = self._clock() + READY_TTL

    async def _probe(self, gw: Gateway) -> tuple[dict[str, Any], bool]:
        outcomes = await asyncio.gather(*(_ping(gw.upstream, s) for s in gw.required_services))
        services = dict(zip(gw.required_services, outcomes, strict=True))
        broker = gw.upstream.broker_connected
        ready = broker is not False and gw.upstream.client is not None
        ready = ready and all(outcome == "ok" for outcome in services.values())
        body = {
            "status": "ready" if ready else "not_ready",
            "broker": {True: "connected", False: "disconnected", None: "unknown"}[broker],
            "services": services,
        }
        return body, ready


READINESS = web.AppKey("readiness", Readiness)


async def readyz(request: web.Request) -> web.Response:
    """Ready when the broker link is up and every required service answers a ping within
    1 s (pinged in parallel); 503 with the per-service outcome otherwise."""
    body, ready = await request.app[READINESS].answer(request.app[GATEWAY])
    return json_response(body, status=200 if ready else 503)


async def _ping(upstream: Upstream, service: str) -> str:
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            await upstream.call(service, "ping", timeout=PING_TIMEOUT)
    except TimeoutError:
        return "timeout"
    except DomainError as exc:
        return str(exc.details.get("reason") or exc.code.lower())
    return "ok"


async def metrics(request: web.Request) -> web.Response:
    text = request.app[GATEWAY].metrics.render()
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[GATEWAY].openapi)


def add_ops_routes(app: web.Application) -> None:
    app[READINESS] = Readiness()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(f"{API_PREFIX}/openapi.json", openapi)
