"""Hospital webhooks: registration (per hospital, event filters, a secret shown once), the
target-URL policy (no SSRF), and the fan-out of every event into delivery documents.

Sending lives in `jobs.DeliveryWorker`; the signature scheme in `sign`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import fnmatch
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.notify.messages import Clock
from services.notify.repository import Deliveries, Webhooks
from shared.contracts.notify import (
    DeliveryList,
    DeliveryView,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookSecret,
    WebhookView,
)
from shared.errors import InvalidState, LimitReached, NotFound, ValidationFailed
from shared.keyfile import create_secret_file
from shared.messaging.events import HOSPITAL_TZ, EventEnvelope
from shared.settings import Settings
from shared.storage.mongo import Document
from shared.tracing import carrier

log = logging.getLogger("guahao.notify.webhooks")

WEBHOOKS_PER_HOSPITAL = 10
SECRET_PREFIX = "whsec_"
NONCE_BYTES = 12


def sign(secret: str, timestamp: str, body: str) -> str:
    """`X-Guahao-Signature`: `sha256=` + hex HMAC-SHA256(secret, "<timestamp>.<raw body>")."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def matches(patterns: list[str], event_type: str) -> bool:
    """Event filters: `appointment.*`, `*` or an exact type (shell-style wildcards)."""
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def delivery_id(webhook_id: str, event_id: str) -> str:
    """Deterministic, so a redelivered event creates no second delivery."""
    return "dlv_" + hashlib.sha256(f"{webhook_id}:{event_id}".encode()).hexdigest()[:32]


class SecretBox:
    """Webhook secrets at rest: AES-256-GCM bound to the webhook id."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """`GUAHAO_WEBHOOK_KEY` (base64 of 32 bytes), else a dev key generated once into
        `<data_dir>/keys/webhook.key` (every replica must share it)."""
        if settings.webhook_secret_key:
            return cls(base64.b64decode(settings.webhook_secret_key, validate=True))
        path = Path(settings.data_dir) / "keys" / "webhook.key"
        raw, created = create_secret_file(path, lambda: base64.b64encode(secrets.token_bytes(32)))
        if created:
            log.warning("generated a webhook secret key", extra={"path": str(path)})
        return cls(base64.b64decode(raw.strip(), validate=True))

    def seal(self, webhook_id: str, secret: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        return base64.b64encode(
            nonce + self._aead.encrypt(nonce, secret.encode(), webhook_id.encode())
        ).decode()

    def open(self, webhook_id: str, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], webhook_id.encode()
        ).decode()


Resolve = Callable[[str, int], Any]


class UrlPolicy:
    """Where webhooks may point: https (http only with `WEBHOOK_ALLOW_HTTP`), and only to
    public addresses (private, loopback, link-local, multicast, reserved refused unless
    `WEBHOOK_ALLOW_PRIVATE`). Checked at registration and again before every attempt."""

    def __init__(self, *, allow_http: bool = False, allow_private: bool = False) -> None:
        self.allow_http = allow_http
        self.allow_private = allow_private

    def check_form(self, url: str) -> str | None:
        """Why `url` is unacceptable as written, or None."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  # raises on a bad port
        except ValueError:
            return "不是合法的URL / not a valid URL"
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            return "只允许https / only https URLs are allowed"
        if not parts.hostname:
            return "缺少主机名 / the URL has no host"
        if parts.username or parts.password:
            return "URL中不能包含凭据 / credentials in the URL are not allowed"
        if parts.fragment:
            return "URL不能包含片段 / the URL must not have a fragment"
        return None

    def forbidden(self, address: str) -> bool:
        """Whether a resolved address is off limits."""
        if self.allow_private:
            return False
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return not ip.is_global or ip.is_multicast or ip.is_reserved

    async def check_destination(self, url: str) -> str | None:
        """Resolve the host now; why it may not be called, or None."""
        problem = self.check_form(url)
        if problem:
            return problem
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            return "主机名无法解析 / the host does not resolve"
        bad = sorted({str(info[4][0]) for info in infos if self.forbidden(str(info[4][0]))})
        if bad:
            return f"目标地址不允许 / address not allowed: {', '.join(bad)}"
        return None


class WebhookService:
    """Registration API of api.md and the fan-out of events into deliveries."""

    def __init__(
        self,
        webhooks: Webhooks,
        deliveries: Deliveries,
        box: SecretBox,
        policy: UrlPolicy,
        clock: Clock,
        on_new_delivery: Callable[[], None] = lambda: None,
        announce: Callable[[str], Awaitable[None]] | None = None,
        hooks_ttl: float = 60.0,
    ) -> None:
        self.webhooks = webhooks
        self.deliveries = deliveries
        self.box = box
        self.policy = policy
        self.clock = clock
        self.on_new_delivery = on_new_delivery
        self.announce = announce
        self.hooks_ttl = hooks_ttl
        self._hooks: dict[str, tuple[float, list[Document]]] = {}

    async def create(self, hospital_id: str, params: WebhookCreate) -> WebhookCreated:
        problem = await self.policy.check_destination(params.url)
        if problem:
            raise ValidationFailed.field("url", problem)
        if len(await self.webhooks.of_hospital(hospital_id)) >= WEBHOOKS_PER_HOSPITAL:
            raise LimitReached(limit=WEBHOOKS_PER_HOSPITAL)
        webhook_id, secret, now = f"wh_{secrets.token_hex(12)}", new_secret(), self.clock()
        events = list(dict.fromkeys(params.events))
        await self.webhooks.insert(
            {
                "_id": webhook_id,
                "hospital_id": hospital_id,
                "url": params.url,
                "events": events,
                "secret": self.box.seal(webhook_id, secret),
                "active": True,
                "created_at": now,
            }
        )
        log.info(
            "webhook registered",
            extra={"hospital_id": hospital_id, "webhook_id": webhook_id, "events": events},
        )
        await self.changed(hospital_id)
        return WebhookCreated(
            id=webhook_id, url=params.url, events=events, secret=secret, created_at=_local(now)
        )

    async def list_webhooks(self, hospital_id: str) -> WebhookList:
        return WebhookList(
            items=[
                WebhookView(
                    id=w["_id"],
                    url=w["url"],
                    events=w["events"],
                    created_at=_local(w["created_at"]),
                    active=bool(w.get("active")),
                )
                for w in await self.webhooks.of_hospital(hospital_id)
            ]
        )

    async def delete(self, hospital_id: str, webhook_id: str) -> None:
        if not await self.webhooks.update(
            hospital_id, webhook_id, {"active": False, "deleted_at": self.clock()}
        ):
            raise NotFound("webhook不存在 / webhook not found")
        log.info("webhook deleted", extra={"hospital_id": hospital_id, "webhook_id": webhook_id})
        await self.changed(hospital_id)

    async def rotate_secret(self, hospital_id: str, webhook_id: str) -> WebhookSecret:
        secret = new_secret()
        if not await self.webhooks.update(
            hospital_id,
            webhook_id,
            {"secret": self.box.seal(webhook_id, secret), "secret_rotated_at": self.clock()},
        ):
            raise NotFound("webhook不存在 / webhook not found")
        log.info("webhook secret rotated", extra={"webhook_id": webhook_id})
        return WebhookSecret(id=webhook_id, secret=secret)

    async def list_deliveries(
        self, hospital_id: str, webhook_id: str, status: str | None
    ) -> DeliveryList:
        await self._webhook(hospital_id, webhook_id)
        docs = await self.deliveries.of_webhook(webhook_id, status)
        return DeliveryList(items=[delivery_view(d) for d in docs])

    async def redeliver(self, hospital_id: str, webhook_id: str, delivery_id: str) -> DeliveryView:
        await self._webhook(hospital_id, webhook_id)
        doc = await self.deliveries.reset(webhook_id, delivery_id, self.clock())
        if doc is None:
            if await self.deliveries.get(webhook_id, delivery_id) is None:
                raise NotFound("投递记录不存在 / delivery not found")
            raise InvalidState("正在投递中 / delivery in flight", status="in_flight")
        log.info("webhook delivery replayed", extra={"delivery_id": delivery_id})
        self.on_new_delivery()
        return delivery_view(doc)

    async def fan_out(self, event: EventEnvelope) -> None:
        """For every event (`evt.notify.events`): one delivery per matching
        webhook of the event's hospital (none again when the event is redelivered)."""
        hooks = [
            w
            for w in await self.hooks_of(event.hospital_id)
            if w.get("active") and matches(w["events"], event.type)
        ]
        if not hooks:
            return
        appointment = event.data.get("appointment")
        order_key = (
            str(appointment["id"])
            if isinstance(appointment, dict) and appointment.get("id")
            else event.id
        )
        now, body = self.clock(), event.model_dump_json()
        context = carrier()
        created = 0
        for hook in hooks:
            created += await self.deliveries.insert_once(
                {
                    "_id": delivery_id(hook["_id"], event.id),
                    "webhook_id": hook["_id"],
                    "hospital_id": event.hospital_id,
                    "event_id": event.id,
                    "event_type": event.type,
                    "order_key": order_key,
                    "occurred_at": dt.datetime.fromisoformat(event.occurred_at),
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "history": [],
                    # the delivery's attempts join the trace of the event's cause
                    **({"trace": context} if context else {}),
                }
            )
        if created:
            log.debug("webhook deliveries created", extra={"event_id": event.id, "n": created})
            self.on_new_delivery()

    async def hooks_of(self, hospital_id: str) -> list[Document]:
        """A hospital's webhooks, from this replica's memory: read once, dropped when any
        replica changes them (`webhook.changed`, heard by every replica) or after
        `hooks_ttl`. Most events belong to hospitals without webhooks: no read for them."""
        cached = self._hooks.get(hospital_id)
        if cached is not None and time.monotonic() - cached[0] < self.hooks_ttl:
            return cached[1]
        hooks = await self.webhooks.of_hospital(hospital_id)
        self._hooks[hospital_id] = (time.monotonic(), hooks)
        return hooks

    async def changed(self, hospital_id: str) -> None:
        """This replica changed a hospital's webhooks: forget them here, tell the others."""
        self.forget(hospital_id)
        if self.announce is not None:
            await self.announce(hospital_id)

    def forget(self, hospital_id: str) -> None:
        self._hooks.pop(hospital_id, None)

    async def _webhook(self, hospital_id: str, webhook_id: str) -> Document:
        doc = await self.webhooks.get(hospital_id, webhook_id)
        if doc is None:
            raise NotFound("webhook不存在 / webhook not found")
        return doc


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(HOSPITAL_TZ)


def delivery_view(doc: Document) -> DeliveryView:
    pending = doc["status"] == "pending"
    return DeliveryView(
        id=doc["_id"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        status=doc["status"],
        attempts=int(doc.get("attempts", 0)),
        last_status_code=doc.get("last_status_code"),
        last_error=doc.get("last_error"),
        next_attempt_at=_local(doc["next_attempt_at"]) if pending else None,
        delivered_at=_local(doc["delivered_at"]) if doc.get("delivered_at") else None,
        created_at=_local(doc["created_at"]),
    )
