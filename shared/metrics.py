"""Prometheus text exposition (format 0.0.4), written by hand to avoid a dependency.

Every process keeps its series in one `Registry`; label values must stay bounded (route
templates, method names, outcomes — never ids or raw paths).
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable, Sequence

LabelValues = tuple[str, ...]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
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


class Gauge:
    """A value read at scrape time (e.g. the outbox backlog)."""

    def __init__(self, name: str, help_text: str,
                 read: Callable[[], Awaitable[float]]) -> None:
        self.name, self.help, self.read = name, help_text, read
        self.last = 0.0

    async def refresh(self) -> None:
        try:
            self.last = float(await self.read())
        except Exception:  # a scrape must not fail because one source is down
            self.last = float("nan")

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge",
                f"{self.name} {_number(self.last) if self.last == self.last else 'NaN'}"]


class Registry:
    """The series of one process, rendered together for `/metrics`."""

    def __init__(self) -> None:
        self._metrics: dict[str, Counter | Histogram | Gauge] = {}

    def counter(self, name: str, help_text: str, labelnames: Sequence[str]) -> Counter:
        metric = self._metrics.setdefault(name, Counter(name, help_text, labelnames))
        assert isinstance(metric, Counter)
        return metric

    def histogram(self, name: str, help_text: str, labelnames: Sequence[str]) -> Histogram:
        metric = self._metrics.setdefault(name, Histogram(name, help_text, labelnames))
        assert isinstance(metric, Histogram)
        return metric

    def gauge(self, name: str, help_text: str, read: Callable[[], Awaitable[float]]) -> Gauge:
        metric = self._metrics.setdefault(name, Gauge(name, help_text, read))
        assert isinstance(metric, Gauge)
        return metric

    async def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            if isinstance(metric, Gauge):
                await metric.refresh()
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
