"""The gateway's Prometheus series (prometheus-client, through `shared.metrics`).

RED per route and per RPC: requests by route template, method and status (rate, errors),
latency by route template and method (duration), and every RPC the gateway makes by
service, method and outcome. Label values are bounded: routes are route templates
(`/api/v1/patients/{patient_id}`), never raw paths; methods outside the HTTP verbs
collapse to `OTHER`.
"""

from __future__ import annotations

from shared.metrics import Registry

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class GatewayMetrics:
    """The gateway's series; one instance (and registry) per app."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()
        self.http_requests = self.registry.counter(
            "guahao_http_requests_total",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
        )
        self.http_duration = self.registry.histogram(
            "guahao_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ("route", "method"),
        )
        self.rpc_duration = self.registry.histogram(
            "guahao_rpc_duration_seconds",
            "RPC latency by service, method and outcome.",
            ("service", "method", "outcome"),
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "OTHER"
        self.http_requests.inc(route, method, str(status))
        self.http_duration.observe(seconds, route, method)

    def observe_rpc(self, service: str, method: str, outcome: str, seconds: float) -> None:
        self.rpc_duration.observe(seconds, service, method, outcome)

    def render(self) -> str:
        return self.registry.exposition()
