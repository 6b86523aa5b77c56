"""Typed keys for what the gateway app and each request carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.auth import TokenVerifier
from gateway.limits import Limits, Network
from gateway.metrics import GatewayMetrics
from gateway.revocations import Revocations
from gateway.upstream import Upstream
from shared.context import Caller
from shared.settings import Settings


@dataclass(frozen=True)
class Gateway:
    """Everything the handlers need, built once by `create_app`."""

    settings: Settings
    upstream: Upstream
    verifier: TokenVerifier
    limits: Limits
    metrics: GatewayMetrics
    trusted_proxies: tuple[Network, ...]
    required_services: tuple[str, ...]
    openapi: dict[str, Any]
    revocations: Revocations | None = None


GATEWAY = web.AppKey("gateway", Gateway)

REQUEST_ID = web.RequestKey("request_id", str)
CALLER = web.RequestKey("caller", Caller)
CLIENT_IP = web.RequestKey("client_ip", str)
