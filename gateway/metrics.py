"""The gateway's Prometheus series (exposition in `shared.metrics`).

Label values are bounded: routes are route templates (`/api/v1/patients/{patient_id}`),
never raw paths; methods outside the HTTP verbs collapse to `OTHER`.
"""

from __future__ import annotations

from shared.metrics import Counter, Histogram

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class GatewayMetrics:
    """The gateway's series; one instance per app."""

    def __init__(self) -> None:
        self.http_requests = Counter(
            "guahao_http_requests_total", "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
        )
        self.http_duration = Histogram(
            "guahao_http_request_duration_seconds", "HTTP request latency by route template.",
            ("route", "method"),
        )
        self.rpc_duration = Histogram(
            "guahao_rpc_duration_seconds", "RPC latency by service, method and outcome.",
            ("service", "method", "outcome"),
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "OTHER"
        self.http_requests.inc(route, method, str(status))
        self.http_duration.observe(seconds, route, method)

    def observe_rpc(self, service: str, method: str, outcome: str, seconds: float) -> None:
        self.rpc_duration.observe(seconds, service, method, outcome)

    def render(self) -> str:
        lines: list[str] = []
        for metric in (self.http_requests, self.http_duration, self.rpc_duration):
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
