"""The gateway's one way to call services: RPC with latency metrics and a fast 503 while
the broker connection is down (the robust connection reconnects on its own)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.auth import Rpc
from gateway.metrics import GatewayMetrics
from shared.context import Caller
from shared.errors import DomainError, ServiceUnavailable


class Upstream:
    """Wraps the RpcClient (set at startup, or injected by tests)."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics
        self.client: Rpc | None = None
        self.broker: Any = None  # AbstractRobustConnection, when known

    def attach(self, client: Rpc, broker: Any = None) -> None:
        self.client = client
        self.broker = broker if broker is not None else getattr(client, "connection", None)

    @property
    def broker_connected(self) -> bool | None:
        """True/False for a known broker connection, None when there is none to ask."""
        connected = getattr(self.broker, "connected", None)
        if isinstance(connected, asyncio.Event):
            return connected.is_set() and not self.broker.is_closed
        return None

    async def call(
        self,
        service: str,
        method: str,
        params: Any = None,
        *,
        caller: Caller | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - RpcClient.call's signature
    ) -> Any:
        if self.client is None or self.broker_connected is False:
            self.metrics.observe_rpc(service, method, "unavailable", 0.0)
            raise ServiceUnavailable(service=service, reason="broker unavailable")
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await self.client.call(service, method, params, caller=caller, timeout=timeout)
        except ServiceUnavailable:
            outcome = "unavailable"
            raise
        except DomainError:
            outcome = "error"
            raise
        except Exception:
            outcome = "internal"
            raise
        finally:
            self.metrics.observe_rpc(service, method, outcome, time.perf_counter() - started)
