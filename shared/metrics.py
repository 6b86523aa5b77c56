"""Prometheus metrics through `prometheus-client`: one registry per process, rendered at
`/metrics` (text format 0.0.4).

`Registry` is a thin adapter over `prometheus_client.CollectorRegistry` that keeps the
call sites short (`counter.inc("method", "outcome")`, labels in declared order) and adds
gauges read at scrape time from an async source (the outbox backlog is a store query).
The series, buckets and exposition are prometheus-client's. Label values must stay
bounded (route templates, method names, outcomes — never ids or raw paths).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# lags and ages reach minutes (a consumer catching up after an outage)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# no `<name>_created` series next to every counter and histogram (dashboards never use
# them; they double the exposition)
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class Counter:
    """A counter with labels given positionally, in the order they were declared."""

    def __init__(
        self, registry: CollectorRegistry, name: str, help_text: str, labelnames: Sequence[str]
    ) -> None:
        self.name, self.labelnames = name, tuple(labelnames)
        self._registry = registry
        self._metric = prometheus_client.Counter(
            name, help_text, self.labelnames, registry=registry
        )

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        (self._metric.labels(*labels) if labels else self._metric).inc(amount)

    def value(self, *labels: str) -> float:
        sample = self._registry.get_sample_value(
            self.name.removesuffix("_total") + "_total",
            dict(zip(self.labelnames, labels, strict=True)),
        )
        return sample or 0.0


class Histogram:
    """A histogram with labels given positionally after the observed value."""

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        help_text: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        self.name, self.labelnames = name, tuple(labelnames)
        self._registry = registry
        self._metric = prometheus_client.Histogram(
            name, help_text, self.labelnames, registry=registry, buckets=tuple(buckets)
        )

    def observe(self, value: float, *labels: str) -> None:
        (self._metric.labels(*labels) if labels else self._metric).observe(value)

    def count(self, *labels: str) -> int:
        sample = self._registry.get_sample_value(
            self.name + "_count", dict(zip(self.labelnames, labels, strict=True))
        )
        return int(sample or 0)


class Gauge:
    """A value read at scrape time from an async source (e.g. the outbox backlog); NaN
    when the source is down (a scrape must not fail because one source is)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        help_text: str,
        read: Callable[[], Awaitable[float]],
    ) -> None:
        self.name, self.read = name, read
        self._metric = prometheus_client.Gauge(name, help_text, registry=registry)

    async def refresh(self) -> None:
        try:
            value = float(await self.read())
        except Exception:
            value = math.nan
        self._metric.set(value)


class Registry:
    """The series of one process, rendered together for `/metrics`. Asking twice for a
    metric of one name returns the same one."""

    def __init__(self, *, process: bool = True) -> None:
        self.collector = CollectorRegistry()
        if process:  # CPU, memory, open files, start time of this process
            prometheus_client.ProcessCollector(registry=self.collector)
        self._metrics: dict[str, Counter | Histogram | Gauge] = {}

    def counter(self, name: str, help_text: str, labelnames: Sequence[str]) -> Counter:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = Counter(self.collector, name, help_text, labelnames)
        assert isinstance(metric, Counter)
        return metric

    def histogram(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Histogram:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = Histogram(
                self.collector, name, help_text, labelnames, buckets
            )
        assert isinstance(metric, Histogram)
        return metric

    def gauge(self, name: str, help_text: str, read: Callable[[], Awaitable[float]]) -> Gauge:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = Gauge(self.collector, name, help_text, read)
        assert isinstance(metric, Gauge)
        return metric

    def exposition(self) -> str:
        """The current values, without refreshing the scrape-time gauges."""
        return generate_latest(self.collector).decode()

    async def render(self) -> str:
        """Refresh the scrape-time gauges, then the exposition."""
        for metric in self._metrics.values():
            if isinstance(metric, Gauge):
                await metric.refresh()
        return self.exposition()
