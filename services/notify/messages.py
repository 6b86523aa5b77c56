"""WeChat subscribe messages: who gets which message, the quota ledger around each send,
and what each WeChat answer means.

A send is decided once per (event, kind): the message log entry is claimed before anything
else, so a redelivered event never sends twice (at most once: a crash between the claim
and the send loses that message rather than risking a second one on the user's phone).
The user's quota unit is reserved before the send and given back when the send fails for
a reason that is not the user's (configuration, WeChat down). Nothing here ever calls
booking: a failed or impossible send cannot affect an appointment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from services.notify.metrics import NotifyMetrics
from services.notify.repository import MessageLog, Quotas
from services.notify.templates import KeywordFault, Template, TemplateSet, appointment_fields
from shared.errors import ServiceUnavailable
from shared.messaging.events import EventEnvelope
from shared.wechat.errors import WechatApiError, WechatUnavailable

log = logging.getLogger("guahao.notify.messages")

Clock = Callable[[], dt.datetime]
QUOTA_REFUSED = 43101  # the user has no quota at WeChat (refused, or spent elsewhere)
CONFIG_FAULTS = frozenset({47003, 40037, 41030, 40003})  # retrying cannot help
RETRYABLE = frozenset({-1})  # WeChat busy
EVENT_KINDS = {
    "appointment.booked": "booking_confirmed",
    "appointment.cancelled": "appointment_cancelled",
    "appointment.rescheduled": "appointment_moved",
    "waitlist.promoted": "waitlist_promoted",
    "queue.near": "queue_near",
}


class SubscribeMessages(Protocol):
    async def send_subscribe_message(
        self,
        *,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        page: str | None = None,
        miniprogram_state: str | None = None,
        lang: str = "zh_CN",
    ) -> int: ...


class OpenidLookup(Protocol):
    async def openid(self, user_id: str) -> str | None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for WeChat busy (-1) and unreachable: `retries` more tries after the first,
    `base`, 2×`base`, 4×`base` … seconds apart."""

    retries: int = 3
    base_seconds: float = 1.0

    def delay(self, attempt: int) -> float:
        return float(self.base_seconds * 2 ** (attempt - 1))


class MessageSender:
    """Sends one kind of message about one appointment to its user, at most once."""

    def __init__(
        self,
        templates: TemplateSet,
        quotas: Quotas,
        message_log: MessageLog,
        wechat: SubscribeMessages,
        openids: OpenidLookup,
        metrics: NotifyMetrics,
        clock: Clock,
        *,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        miniprogram_state: str | None = None,
    ) -> None:
        self.templates = templates
        self.quotas = quotas
        self.message_log = message_log
        self.wechat = wechat
        self.openids = openids
        self.metrics = metrics
        self.clock = clock
        self.retry = retry
        self.sleep = sleep
        self.miniprogram_state = miniprogram_state

    async def send(
        self,
        kind: str,
        appointment: dict[str, Any],
        *,
        event_id: str,
        previous: dict[str, Any] | None = None,
        queue: dict[str, Any] | None = None,
    ) -> str:
        """Decide and send; returns the outcome (`sent`, `failed`, `skipped_no_quota`,
        `config_fault`, or `duplicate` / `not_configured` when nothing was attempted)."""
        template = self.templates.get(kind)
        if template is None:
            log.debug("kind not configured, nothing sent", extra={"kind": kind})
            return "not_configured"
        key = f"{event_id}:{kind}"
        user_id = str(appointment["user_id"])
        record = {
            "kind": kind,
            "template_id": template.template_id,
            "user_id": user_id,
            "appointment_id": str(appointment["id"]),
            "event_id": event_id,
        }
        status = await self._deliver(key, template, user_id, appointment, previous, record, queue)
        self.metrics.messages.inc(kind, status)
        return status

    async def _deliver(
        self,
        key: str,
        template: Template,
        user_id: str,
        appointment: dict[str, Any],
        previous: dict[str, Any] | None,
        record: dict[str, Any],
        queue: dict[str, Any] | None = None,
    ) -> str:
        """Two store operations for a message: spend a unit of quota (the write that also
        makes a redelivery a no-op), then record what became of it."""
        try:
            data, page = template.render(
                appointment_fields(template.kind, appointment, previous, queue)
            )
        except (KeywordFault, KeyError, ValueError) as exc:
            return await self._config_fault(key, template, record, attempts=0, error=str(exc))
        if not await self.quotas.spend(user_id, template.template_id, key):
            log.debug("no quota (or already sent), not sent", extra={"key": key})
            return await self._finish(key, "skipped_no_quota", record, decided=False, attempts=0)
        attempt = 0
        while True:
            attempt += 1
            try:
                openid = await self.openids.openid(user_id)
                if openid is None:
                    await self.quotas.refund(user_id, template.template_id)
                    return await self._finish(
                        key, "failed", record, attempts=attempt, error="no openid"
                    )
                msgid = await self.wechat.send_subscribe_message(
                    touser=openid,
                    template_id=template.template_id,
                    data=data,
                    page=page,
                    miniprogram_state=self.miniprogram_state,
                )
            except WechatApiError as exc:
                if exc.errcode == QUOTA_REFUSED:
                    await self.quotas.zero(user_id, template.template_id)
                    log.info(
                        "wechat refused: no quota, ledger zeroed",
                        extra={"key": key, "template_id": template.template_id},
                    )
                    return await self._finish(
                        key, "failed", record, attempts=attempt, errcode=exc.errcode
                    )
                if exc.errcode in CONFIG_FAULTS:
                    await self.quotas.refund(user_id, template.template_id)
                    return await self._config_fault(
                        key,
                        template,
                        record,
                        attempts=attempt,
                        errcode=exc.errcode,
                        error=exc.errmsg,
                    )
                if exc.errcode not in RETRYABLE or attempt > self.retry.retries:
                    await self.quotas.refund(user_id, template.template_id)
                    return await self._finish(
                        key, "failed", record, attempts=attempt, errcode=exc.errcode
                    )
                problem = f"errcode {exc.errcode}"
            except (WechatUnavailable, ServiceUnavailable) as exc:
                if attempt > self.retry.retries:
                    await self.quotas.refund(user_id, template.template_id)
                    return await self._finish(
                        key, "failed", record, attempts=attempt, error=str(exc)
                    )
                problem = type(exc).__name__
            else:
                log.info("subscribe message sent", extra={"key": key, "msgid": msgid})
                return await self._finish(key, "sent", record, attempts=attempt, msgid=msgid)
            delay = self.retry.delay(attempt)
            log.info(
                "subscribe message not sent yet, retrying",
                extra={"key": key, "attempt": attempt, "problem": problem, "delay_s": delay},
            )
            await self.sleep(delay)

    async def _config_fault(
        self,
        key: str,
        template: Template,
        record: dict[str, Any],
        *,
        attempts: int,
        errcode: int | None = None,
        error: str | None = None,
    ) -> str:
        log.error(
            "subscribe message configuration fault: check WECHAT_TEMPLATES",
            extra={
                "key": key,
                "kind": template.kind,
                "template_id": template.template_id,
                "errcode": errcode,
                "detail": error,
            },
        )
        self.metrics.config_faults.inc(template.kind)
        return await self._finish(
            key, "config_fault", record, attempts=attempts, errcode=errcode, error=error
        )

    async def _finish(
        self, key: str, status: str, record: dict[str, Any], *, decided: bool = True, **fields: Any
    ) -> str:
        """Record the outcome; `decided` for the delivery that spent quota on the message."""
        if not await self.message_log.record(
            key, status, self.clock(), record, decided=decided, **fields
        ):
            return "duplicate"  # decided elsewhere (a redelivered event)
        return status


class AppointmentMessages:
    """Consumer of appointment events (from `evt.notify.events`) → the patient's message."""

    def __init__(self, sender: MessageSender) -> None:
        self.sender = sender

    async def on_event(self, event: EventEnvelope) -> None:
        kind = EVENT_KINDS.get(event.type)
        appointment = event.data.get("appointment")
        if kind is None or not isinstance(appointment, dict):
            return
        if kind == "booking_confirmed" and appointment.get("waitlist_entry_id"):
            return  # a promotion is announced once, as waitlist_promoted
        await self.sender.send(
            kind,
            appointment,
            event_id=event.id,
            previous=event.data.get("previous"),
            queue=event.data.get("queue"),
        )
