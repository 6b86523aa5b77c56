"""Prometheus text exposition (format 0.0.4), written by hand to avoid a dependency.

Label values are bounded: routes are route templates (`/api/v1/patients/{patient_id}`),
never raw paths; methods outside the HTTP verbs collapse to `OTHER`.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

LabelValues = tuple[str, ...]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class Counter:
    def __init__(self, name: str, help_text: str, labelnames: Sequence[str]) -> None:
        self.name, self.help, self.labelnames = name, help_text, tuple(labelnames)
        self._values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for labels, value in sorted(self._values.items()):
            lines.append(f"{self.name}{_labels(self.labelnames, labels)} {_number(value)}")
        return lines


class Histogram:
    def __init__(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        self.name, self.help, self.labelnames = name, help_text, tuple(labelnames)
        self.buckets = tuple(sorted(buckets))
        # per label set: counts per bucket (non-cumulative, last = +Inf), sum
        self._series: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labels: str) -> None:
        counts, total = self._series.setdefault(
            labels, ([0] * (len(self.buckets) + 1), [0.0])
        )
        counts[bisect.bisect_left(self.buckets, value)] += 1
        total[0] += value

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        names = self.labelnames
        for labels, (counts, total) in sorted(self._series.items()):
            cumulative = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else _number(bound)
                label_text = _labels(names, labels, f'le="{le}"')
                lines.append(f"{self.name}_bucket{label_text} {cumulative}")
            lines.append(f"{self.name}_sum{_labels(names, labels)} {_number(total[0])}")
            lines.append(f"{self.name}_count{_labels(names, labels)} {cumulative}")
        return lines


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
