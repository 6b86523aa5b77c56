"""The counters of notify outcomes, kept in the process's metrics registry (`/metrics`)."""

from __future__ import annotations

from shared.metrics import Registry


class NotifyMetrics:
    def __init__(self, registry: Registry | None = None) -> None:
        registry = registry or Registry()
        self.messages = registry.counter(
            "guahao_notify_messages_total",
            "Subscribe messages decided, by kind and outcome.",
            ["kind", "status"],
        )
        self.config_faults = registry.counter(
            "guahao_notify_config_faults_total",
            "Sends refused for configuration (47003, 40037, 41030, 40003, bad keyword value).",
            ["kind"],
        )
        self.webhook_attempts = registry.counter(
            "guahao_notify_webhook_attempts_total",
            "Webhook delivery attempts, by the delivery's status afterwards.",
            ["outcome"],
        )
