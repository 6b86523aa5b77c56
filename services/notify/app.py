"""Wiring of the notify service: templates, WeChat client, ledgers, consumers and jobs."""

from __future__ import annotations

import datetime as dt
import logging

import aiohttp

from services.notify import handlers
from services.notify.handlers import NotifyEvents
from services.notify.jobs import DeliveryWorker, webhook_session
from services.notify.messages import (
    AppointmentMessages,
    Clock,
    MessageSender,
    RetryPolicy,
)
from services.notify.metrics import NotifyMetrics
from services.notify.reminders import VisitReminders
from services.notify.repository import Deliveries, MessageLog, Quotas, Reminders, Webhooks
from services.notify.subscriptions import SubscriptionService
from services.notify.templates import TemplateConfigError, load_templates
from services.notify.webhooks import SecretBox, UrlPolicy, WebhookService
from shared.contracts.events import WebhooksChanged, typed_event
from shared.messaging.broadcast import BroadcastListener
from shared.messaging.events import PLATFORM
from shared.runtime import ServiceRuntime
from shared.wechat import WechatClient
from shared.wechat.openids import AuthOpenids

log = logging.getLogger("guahao.notify")

REMINDER_SWEEP_SECONDS = 2.0


def offset_clock(offset_seconds: float) -> Clock:
    """Real UTC time shifted by `NOTIFY_CLOCK_OFFSET_SECONDS` (system tests only)."""
    shift = dt.timedelta(seconds=offset_seconds)
    return lambda: dt.datetime.now(dt.UTC) + shift


async def wire(rt: ServiceRuntime) -> None:
    """Build notify on the runtime's connections; refuses to start on bad templates."""
    settings = rt.settings
    try:
        templates = load_templates(settings.wechat_templates)
    except TemplateConfigError as exc:
        log.critical("notify refuses to start: %s", exc)
        raise
    clock = offset_clock(settings.notify_clock_offset_seconds)
    metrics = NotifyMetrics(rt.metrics)
    quotas, message_log, reminder_docs = Quotas(rt.db), MessageLog(rt.db), Reminders(rt.db)
    webhook_docs, deliveries = Webhooks(rt.db), Deliveries(rt.db)
    for repo in (quotas, message_log, reminder_docs, webhook_docs, deliveries):
        await repo.ensure_indexes()

    wechat_http = aiohttp.ClientSession()
    rt.on_close(wechat_http.close)
    wechat = WechatClient(
        wechat_http,
        appid=settings.wechat_appid,
        secret=settings.wechat_secret,
        api_base=settings.wechat_api_base,
    )
    sender = MessageSender(
        templates,
        quotas,
        message_log,
        wechat,
        AuthOpenids(rt.rpc_client),
        metrics,
        clock,
        retry=RetryPolicy(settings.wechat_send_retries, settings.wechat_retry_base_seconds),
    )
    reminders = VisitReminders(reminder_docs, sender, clock, settings.reminder_hour)

    policy = UrlPolicy(
        allow_http=settings.webhook_allow_http, allow_private=settings.webhook_allow_private
    )
    box = SecretBox.from_settings(settings)
    hooks_http = webhook_session(policy)
    rt.on_close(hooks_http.close)
    worker = DeliveryWorker(
        deliveries,
        webhook_docs,
        box,
        policy,
        hooks_http,
        clock,
        metrics,
        owner=rt.instance_id,
        timeout=settings.webhook_timeout_seconds,
        retry_base=settings.webhook_retry_base_seconds,
        max_attempts=settings.webhook_max_attempts,
    )

    async def announce_webhooks_changed(hospital_id: str) -> None:
        await rt.events.publish(
            typed_event("webhook.changed", PLATFORM, WebhooksChanged(hospital_id=hospital_id))
        )

    webhooks = WebhookService(
        webhook_docs,
        deliveries,
        box,
        policy,
        clock,
        on_new_delivery=worker.wake,
        announce=announce_webhooks_changed,
    )

    handlers.register(rt.rpc_server, SubscriptionService(templates, quotas, clock), webhooks)
    events = NotifyEvents(webhooks, reminders, AppointmentMessages(sender))
    # competing consumers: each event is delivered to one notify replica, once; every
    # handler is idempotent by its own natural key (delivery id, appointment, message key)
    rt.consume("events", ["#"], events.on_event, dedupe=False)
    # every replica: which hospitals' webhooks changed (its memory of them)
    rt.add_consumer(
        BroadcastListener(
            rt.broker, rt.name, "webhook_changes", ["webhook.changed.*"], events.webhooks_changed
        )
    )
    rt.add_leased_job(
        "reminders",
        lambda term: reminders.run_once(rt.instance_id, term),
        interval=REMINDER_SWEEP_SECONDS,
        idle_interval=10.0,
        ttl=dt.timedelta(seconds=30),
    )
    rt.add_job("webhook-delivery", worker.run)
