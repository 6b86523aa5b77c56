"""Operator endpoints: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.responses import json_response
from gateway.routes import API_PREFIX
from gateway.state import GATEWAY
from gateway.upstream import Upstream
from shared.errors import DomainError
from shared.metrics import CONTENT_TYPE

PING_TIMEOUT = 1.0


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the broker link is up and every required service answers a ping within
    1 s (pinged in parallel); 503 with the per-service outcome otherwise."""
    gw = request.app[GATEWAY]
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
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(f"{API_PREFIX}/openapi.json", openapi)
