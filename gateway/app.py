"""The gateway application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable

from aiohttp import web

from gateway.auth import ConfiguredSigningKeys, KeySource, Rpc, SigningKeyCache, TokenVerifier
from gateway.dispatch import add_api_routes
from gateway.fhir import add_fhir_routes
from gateway.limits import Limits, parse_networks
from gateway.metrics import GatewayMetrics
from gateway.middleware import MAX_BODY_BYTES, MIDDLEWARES
from gateway.openapi import build_openapi
from gateway.ops import add_ops_routes
from gateway.payments import NOTIFY_PATH, add_payment_routes, notify_openapi
from gateway.revocations import Revocations
from gateway.routes import ROUTES, Route
from gateway.state import GATEWAY, Gateway
from gateway.static import add_static_routes
from gateway.upstream import Upstream
from shared.messaging.identity import RpcIdentity
from shared.messaging.rpc import RpcClient
from shared.runtime import connect_broker_with_retry
from shared.settings import Settings

log = logging.getLogger("guahao.gateway")

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings,
    *,
    rpc: Rpc | RpcClient | None = None,
    limits: Limits | None = None,
    trusted_proxies: Iterable[str] = (),
    required_services: Iterable[str] | None = None,
    routes: tuple[Route, ...] = ROUTES,
    auth_service: str = "auth",
    signing_keys: KeySource | None = None,
) -> web.Application:
    """Build the gateway. Without `rpc`, startup connects to RabbitMQ (retrying ~30 s) and
    opens an RpcClient; an injected `rpc` (tests) is used as is and not closed.

    `trusted_proxies`: addresses/networks whose X-Forwarded-For is believed. `routes` and
    `auth_service` (who publishes the signing keys) exist so tests can isolate themselves
    on a shared broker. `required_services` (what /readyz pings) defaults to every service
    a route leads to.

    The JWT public keys: `signing_keys`, else `GUAHAO_JWT_PUBLIC_KEYS`; only a test that
    injects `rpc` and configures neither gets them from `auth.signing_keys`."""
    if signing_keys is None and settings.jwt_public_keys:
        signing_keys = ConfiguredSigningKeys.from_setting(settings.jwt_public_keys)
    if signing_keys is None and rpc is None:
        raise ValueError(
            "GUAHAO_JWT_PUBLIC_KEYS is not set: the gateway needs the public "
            "key(s) of auth's token signing key (`make run` sets it)"
        )
    limits = limits or Limits()
    unknown = {r.rate for r in routes if r.rate is not None} - limits.classes
    if unknown:
        raise ValueError(f"routes name rate classes Limits does not define: {sorted(unknown)}")
    metrics = GatewayMetrics()
    upstream = Upstream(metrics)
    revocations = Revocations(upstream, service=auth_service)
    gateway = Gateway(
        settings=settings,
        upstream=upstream,
        verifier=TokenVerifier(
            signing_keys or SigningKeyCache(upstream, service=auth_service), revocations=revocations
        ),
        revocations=revocations,
        limits=limits,
        metrics=metrics,
        trusted_proxies=parse_networks(trusted_proxies),
        required_services=tuple(sorted({r.service for r in routes}))
        if required_services is None
        else tuple(required_services),
        openapi=build_openapi(routes),
    )
    gateway.openapi["paths"][NOTIFY_PATH] = notify_openapi()
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=MIDDLEWARES)
    app[GATEWAY] = gateway
    app.cleanup_ctx.append(_upstream_context(rpc))
    add_ops_routes(app)
    add_api_routes(app, routes)
    add_fhir_routes(app)
    add_payment_routes(app)
    add_static_routes(app, settings.console_dir)
    return app


def _upstream_context(injected: Rpc | None) -> CleanupContext:
    async def upstream_context(app: web.Application) -> AsyncIterator[None]:
        gateway = app[GATEWAY]
        if injected is not None:
            gateway.upstream.attach(injected)
            yield
            return
        settings = gateway.settings
        broker = await connect_broker_with_retry(settings.broker_urls, name="gateway")
        client = RpcClient(
            broker,
            default_timeout=settings.rpc_timeout,
            identity=RpcIdentity.from_settings("gateway", settings),
        )
        gateway.upstream.attach(client, broker)
        log.info("gateway connected to broker")
        poller = None
        if gateway.revocations is not None:
            poller = asyncio.create_task(gateway.revocations.run(), name="revocations")
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await broker.close()

    return upstream_context
