"""Background work of notify.

- Reminder sweep: under the `notify.reminders` lease, every few seconds, sends the due
  visit reminders (each one claimed, so a lapsed lease cannot cause a second send).
- Webhook delivery: every replica runs a worker; deliveries are claimed one at a time
  (`pending → in_flight` with an expiry), each attempt is its own task with its own timeout,
  so one hospital's slow endpoint never holds up another's.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import socket
import time
import uuid
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from services.notify.messages import Clock
from services.notify.metrics import NotifyMetrics
from services.notify.repository import Deliveries, Webhooks
from services.notify.webhooks import SecretBox, UrlPolicy, sign
from shared.storage.mongo import Document
from shared.tracing import resumed, tracer

log = logging.getLogger("guahao.notify.jobs")
# what is read of a receiver's answer body (the rest is dropped with the connection)
MAX_RESPONSE_BYTES = 16 * 1024
READ_CHUNK = 4096

CLAIM_MARGIN = dt.timedelta(seconds=30)
RELEASE_EXPIRED_EVERY = 5.0


class GuardedResolver(ThreadedResolver):
    """Refuses a host that resolves to a forbidden address at connect time, so a DNS answer
    that changed after the check (rebinding) cannot reach an internal address."""

    def __init__(self, policy: UrlPolicy) -> None:
        super().__init__()
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        if any(self.policy.forbidden(r["host"]) for r in results):
            raise OSError(f"{host} resolves to an address webhooks may not call")
        return results


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> int:
    """Read at most `limit` bytes of a receiver's answer (only its status matters) and
    drop the connection if more is coming: a receiver cannot make a delivery hold memory
    or a worker slot by answering with an endless body."""
    read = 0
    while read < limit:
        chunk = await resp.content.read(min(READ_CHUNK, limit - read))
        if not chunk:
            return read
        read += len(chunk)
    if not resp.content.at_eof():
        resp.close()
    return read


def webhook_session(policy: UrlPolicy) -> aiohttp.ClientSession:
    """The HTTP client of webhook deliveries (no cookies, no redirects followed)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=GuardedResolver(policy), limit=100),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class DeliveryWorker:
    """Claims due deliveries and POSTs them, signed, with retries and backoff."""

    def __init__(
        self,
        deliveries: Deliveries,
        webhooks: Webhooks,
        box: SecretBox,
        policy: UrlPolicy,
        http: aiohttp.ClientSession,
        clock: Clock,
        metrics: NotifyMetrics,
        *,
        owner: str,
        timeout: float = 10.0,
        retry_base: float = 40.0,
        max_attempts: int = 6,
        concurrency: int = 20,
        per_webhook: int = 4,
        poll: float = 1.0,
    ) -> None:
        self.deliveries = deliveries
        self.webhooks = webhooks
        self.box = box
        self.policy = policy
        self.http = http
        self.clock = clock
        self.metrics = metrics
        self.owner = owner
        self.timeout = timeout
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.per_webhook = per_webhook
        self.poll = poll
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: collections.Counter[str] = collections.Counter()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due deliveries now (a new one was created in this process)."""
        self._wake.set()

    def backoff(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=self.retry_base * 2 ** (attempts - 1))

    async def run(self) -> None:
        released_at = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                try:
                    if loop.time() - released_at >= RELEASE_EXPIRED_EVERY:
                        await self.release_expired()
                        released_at = loop.time()
                    started = await self.dispatch_due()
                except Exception as exc:  # the store is down: keep the attempts in flight
                    log.warning("webhook dispatch failed", extra={"error": repr(exc)})
                    started = 0
                if not started:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.poll)
                    except TimeoutError:
                        pass
        finally:
            for task in self._tasks:
                task.cancel()  # their claims expire and another worker retries them

    async def release_expired(self) -> int:
        released = await self.deliveries.release_expired(self.clock())
        if released:
            log.warning("expired delivery claims released", extra={"n": released})
        return released

    async def dispatch_due(self) -> int:
        """Claim and start as many due deliveries as there is room for; returns how many."""
        started, now = 0, self.clock()
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return 0
        saturated = [w for w, n in self._busy.items() if n >= self.per_webhook]
        for candidate in await self.deliveries.due(now, free * 5, exclude_webhooks=saturated):
            if started >= free:
                break
            if self._busy[candidate["webhook_id"]] >= self.per_webhook:
                continue
            if await self.deliveries.postpone_if_blocked(candidate, now):
                continue
            token = uuid.uuid4().hex
            claimed = await self.deliveries.claim(
                candidate["_id"],
                now,
                token,
                self.owner,
                now + dt.timedelta(seconds=self.timeout) + CLAIM_MARGIN,
            )
            if claimed is None:
                continue  # another worker took it
            self._start(claimed, token)
            started += 1
        return started

    def _start(self, delivery: Document, token: str) -> None:
        webhook_id = delivery["webhook_id"]
        self._busy[webhook_id] += 1
        task = asyncio.create_task(self.attempt(delivery, token), name=delivery["_id"])
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            if not finished.cancelled() and finished.exception() is not None:
                log.error(
                    "delivery attempt crashed; its claim will expire and be retried",
                    exc_info=finished.exception(),
                    extra={"delivery_id": delivery["_id"]},
                )
            self._tasks.discard(finished)
            self._busy[webhook_id] -= 1
            if self._busy[webhook_id] <= 0:
                del self._busy[webhook_id]
            self._wake.set()

        task.add_done_callback(done)

    async def attempt(self, delivery: Document, token: str) -> None:
        """One POST of one claimed delivery, then its outcome recorded (fenced by `token`),
        in the trace of the event that caused it."""
        with (
            resumed(delivery.get("trace")),
            tracer.start_as_current_span(
                "webhook deliver",
                attributes={
                    "guahao.delivery_id": delivery["_id"],
                    "guahao.webhook_id": delivery["webhook_id"],
                    "guahao.hospital_id": delivery.get("hospital_id", ""),
                    "guahao.event_id": delivery.get("event_id", ""),
                    "guahao.event_type": delivery.get("event_type", ""),
                    "guahao.attempt": int(delivery.get("attempts", 0)) + 1,
                },
            ),
        ):
            await self._attempt(delivery, token)

    async def _attempt(self, delivery: Document, token: str) -> None:
        webhook = await self.webhooks.by_id(delivery["webhook_id"])
        if webhook is None or webhook.get("deleted_at") or not webhook.get("active"):
            await self._record(delivery, token, None, "webhook deleted", final=True)
            return
        try:
            status_code, error = await self._post(delivery, webhook)
        except Exception as exc:  # e.g. a secret sealed with another key: count the attempt
            log.exception(
                "webhook attempt failed inside notify", extra={"delivery_id": delivery["_id"]}
            )
            status_code, error = None, f"internal error: {type(exc).__name__}"
        await self._record(delivery, token, status_code, error)

    async def _post(self, delivery: Document, webhook: Document) -> tuple[int | None, str | None]:
        """The HTTP status of one signed POST, or why none was made or received."""
        error = await self.policy.check_destination(webhook["url"])
        if error is not None:
            return None, error  # refused before any request is made
        body = await self.deliveries.body(delivery["_id"]) or ""
        timestamp = str(int(time.time()))  # the receiver checks it against its wall clock
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "guahao-webhooks/1",
            "X-Guahao-Event": delivery["event_type"],
            "X-Guahao-Delivery": delivery["_id"],
            "X-Guahao-Timestamp": timestamp,
            "X-Guahao-Signature": sign(
                self.box.open(webhook["_id"], webhook["secret"]), timestamp, body
            ),
        }
        try:
            async with self.http.post(
                webhook["url"],
                data=body.encode(),
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                await read_capped(resp, MAX_RESPONSE_BYTES)
                return resp.status, None
        except TimeoutError:
            return None, "timeout"
        except aiohttp.ClientError as exc:
            return None, type(exc).__name__

    async def _record(
        self,
        delivery: Document,
        token: str,
        status_code: int | None,
        error: str | None,
        *,
        final: bool = False,
    ) -> None:
        now = self.clock()
        attempts = int(delivery.get("attempts", 0)) + 1
        ok = status_code is not None and 200 <= status_code < 300
        attempt: dict[str, Any] = {"at": now, "attempt": attempts}
        fields: dict[str, Any] = {}
        unset: list[str] = []
        if status_code is not None:
            attempt["status_code"] = fields["last_status_code"] = status_code
        else:
            unset.append("last_status_code")
        if ok:
            fields.update(status="delivered", delivered_at=now)
            unset.append("last_error")
        else:
            attempt["error"] = fields["last_error"] = error or f"HTTP {status_code}"
            if final or attempts >= self.max_attempts:
                fields["status"] = "failed"
            else:
                fields.update(status="pending", next_attempt_at=now + self.backoff(attempts))
        if not await self.deliveries.record_attempt(delivery["_id"], token, fields, attempt, unset):
            log.info("delivery outcome dropped: claim lost", extra={"delivery_id": delivery["_id"]})
            return
        if fields["status"] != "pending" and await self.deliveries.release_successors(
            delivery, now
        ):
            self._wake.set()
        self.metrics.webhook_attempts.inc(fields["status"])
        (log.info if ok else log.warning)(
            "webhook delivery " + fields["status"],
            extra={
                "delivery_id": delivery["_id"],
                "event_id": delivery["event_id"],
                "attempts": attempts,
                "status_code": status_code,
                "error": error,
            },
        )
