"""Hospital webhooks: registration, URL policy, fan-out, signed delivery with retries,
order per appointment, isolation between hospitals, replay and crash recovery."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notify.handlers import register
from services.notify.jobs import DeliveryWorker, webhook_session
from services.notify.metrics import NotifyMetrics
from services.notify.repository import Deliveries, Webhooks
from services.notify.subscriptions import SubscriptionService
from services.notify.webhooks import SecretBox, UrlPolicy, WebhookService, delivery_id
from shared.context import CallContext, Caller
from shared.contracts.notify import WebhookCreate
from shared.errors import NotFound, ValidationFailed
from shared.messaging.rpc import RpcServer
from shared.settings import Settings
from shared.storage.mongo import Document
from tests.notify_kit import Clock, Receiver, appointment, event, verify

LOCAL = UrlPolicy(allow_http=True, allow_private=True)
H1, H2 = "h_one", "h_two"


@dataclass
class Hooks:
    service: WebhookService
    worker: DeliveryWorker
    deliveries: Deliveries
    clock: Clock

    async def register(
        self, hospital_id: str, url: str, events: list[str] | None = None
    ) -> tuple[str, str]:
        created = await self.service.create(
            hospital_id, WebhookCreate(url=url, events=events or ["appointment.*"])
        )
        return created.id, created.secret

    async def settle(self) -> None:
        """Wait for the attempts in flight (a test stands in for the worker loop)."""
        while self.worker._tasks:
            await asyncio.wait(set(self.worker._tasks))

    async def deliver_due(self) -> int:
        started = await self.worker.dispatch_due()
        await self.settle()
        return started

    async def delivery(self, webhook_id: str, event_id: str) -> Document:
        doc = await self.deliveries.get(webhook_id, delivery_id(webhook_id, event_id))
        assert doc is not None
        return doc


async def build_hooks(
    db: AsyncDatabase[Document],
    http: aiohttp.ClientSession,
    clock: Clock,
    *,
    policy: UrlPolicy = LOCAL,
    owner: str = "w1",
    timeout: float = 5.0,
    max_attempts: int = 6,
    box: SecretBox | None = None,
) -> Hooks:
    webhooks, deliveries = Webhooks(db), Deliveries(db)
    for repo in (webhooks, deliveries):
        await repo.ensure_indexes()
    box = box or SecretBox(secrets.token_bytes(32))
    worker = DeliveryWorker(
        deliveries,
        webhooks,
        box,
        policy,
        http,
        clock,
        NotifyMetrics(),
        owner=owner,
        timeout=timeout,
        retry_base=40.0,
        max_attempts=max_attempts,
        poll=0.05,
    )
    service = WebhookService(webhooks, deliveries, box, policy, clock, worker.wake)
    return Hooks(service, worker, deliveries, clock)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = webhook_session(LOCAL)
    yield session
    await session.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
async def hooks(
    mongo_db: AsyncDatabase[Document], http: aiohttp.ClientSession, clock: Clock
) -> Hooks:
    return await build_hooks(mongo_db, http, clock)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.close()


# registration


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "https://127.0.0.1/",
        "https://10.1.2.3/hook",
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/",
        "https://224.0.0.1/",
        "ftp://example.com/",
        "https://user:pw@93.184.216.34/",
        "https://0.0.0.0/",
    ],
)
async def test_private_loopback_and_non_https_targets_are_refused(
    mongo_db: AsyncDatabase[Document], http: aiohttp.ClientSession, clock: Clock, url: str
) -> None:
    strict = await build_hooks(mongo_db, http, clock, policy=UrlPolicy())
    with pytest.raises(ValidationFailed) as refused:
        await strict.register(H1, url)
    assert "url" in refused.value.details["fields"]


async def test_http_to_loopback_needs_both_dev_flags(
    mongo_db: AsyncDatabase[Document], http: aiohttp.ClientSession, clock: Clock
) -> None:
    for policy in (UrlPolicy(allow_http=True), UrlPolicy(allow_private=True)):
        half = await build_hooks(mongo_db, http, clock, policy=policy)
        with pytest.raises(ValidationFailed):
            await half.register(H1, "http://127.0.0.1/")
    dev = await build_hooks(mongo_db, http, clock)
    assert (await dev.register(H1, "http://127.0.0.1/"))[0].startswith("wh_")


async def test_the_secret_is_shown_at_creation_and_rotation_only(
    hooks: Hooks, mongo_db: AsyncDatabase[Document], receiver: Receiver
) -> None:
    webhook_id, secret = await hooks.register(H1, receiver.url)
    assert secret.startswith("whsec_") and len(secret) > 40
    [listed] = (await hooks.service.list_webhooks(H1)).items
    assert listed.id == webhook_id and listed.active and "secret" not in listed.model_dump()
    stored = await mongo_db.webhooks.find_one({"_id": webhook_id})
    assert stored is not None and secret not in str(stored)
    rotated = await hooks.service.rotate_secret(H1, webhook_id)
    assert rotated.secret != secret
    await hooks.service.fan_out(event("appointment.booked", appointment("u1"), hospital_id=H1))
    await hooks.deliver_due()
    [got] = receiver.received
    assert verify(rotated.secret, got.headers, got.body)
    assert not verify(secret, got.headers, got.body)
    await hooks.service.delete(H1, webhook_id)
    assert (await hooks.service.list_webhooks(H1)).items == []
    with pytest.raises(NotFound):
        await hooks.service.list_deliveries(H1, webhook_id, None)


async def test_another_hospitals_webhooks_are_not_found(hooks: Hooks, receiver: Receiver) -> None:
    server = RpcServer("notify", connection=None)  # type: ignore[arg-type]  # never started
    register(server, SubscriptionService(None, None, None), hooks.service)  # type: ignore[arg-type]
    webhook_id, _ = await hooks.register(H1, receiver.url)
    body = f'{{"hospital_id": "{H1}", "webhook_id": "{webhook_id}"}}'.encode()
    other = CallContext("r", caller=Caller(user_id="s2", role="hospital_admin", hospital_id=H2))
    own = CallContext("r", caller=Caller(user_id="s1", role="hospital_admin", hospital_id=H1))
    patient = CallContext("r", caller=Caller(user_id="u", role="patient"))
    assert (await server._dispatch("rotate_webhook_secret", body, other))["error"][
        "code"
    ] == "NOT_FOUND"
    assert (await server._dispatch("delete_webhook", body, patient))["error"]["code"] == "FORBIDDEN"
    wrong = f'{{"hospital_id": "{H2}", "webhook_id": "{webhook_id}"}}'.encode()
    assert (
        await server._dispatch(
            "delete_webhook",
            wrong,
            CallContext("r", caller=Caller(user_id="s2", role="hospital_admin", hospital_id=H2)),
        )
    )["error"]["code"] == "NOT_FOUND"
    assert (await server._dispatch("delete_webhook", body, own)) == {"ok": {}}


# fan-out and delivery


async def test_one_delivery_per_matching_webhook_and_none_again_on_redelivery(
    hooks: Hooks, receiver: Receiver
) -> None:
    await hooks.register(H1, receiver.url, ["appointment.*"])
    await hooks.register(H1, receiver.url, ["schedule.stopped"])
    await hooks.register(H1, receiver.url, ["*"])
    await hooks.register(H2, receiver.url, ["*"])
    booked = event("appointment.booked", appointment("u1"), hospital_id=H1)
    await hooks.service.fan_out(booked)
    await hooks.service.fan_out(booked)
    assert await hooks.deliveries.collection.count_documents({"event_id": booked.id}) == 2


async def test_the_receiver_verifies_every_signature_and_sees_the_envelope(
    hooks: Hooks, receiver: Receiver
) -> None:
    webhook_id, secret = await hooks.register(H1, receiver.url, ["*"])
    sent = [
        event("appointment.booked", appointment("u1"), hospital_id=H1),
        event("appointment.booked", appointment("u2"), hospital_id=H1),
    ]
    for e in sent:
        await hooks.service.fan_out(e)
    await hooks.deliver_due()
    assert len(receiver.received) == 2
    for got in receiver.received:
        assert verify(secret, got.headers, got.body)
        envelope = got.event
        assert got.headers["X-Guahao-Event"] == envelope["type"] == "appointment.booked"
        assert got.headers["X-Guahao-Delivery"] == delivery_id(webhook_id, envelope["id"])
        assert got.headers["Content-Type"] == "application/json"
    assert {g.event["id"] for g in receiver.received} == {e.id for e in sent}
    assert (await hooks.delivery(webhook_id, sent[0].id))["status"] == "delivered"


async def test_a_failing_receiver_gets_the_delivery_later_with_backoff(
    hooks: Hooks, receiver: Receiver, clock: Clock
) -> None:
    receiver.statuses = [500, 503, 200]
    webhook_id, secret = await hooks.register(H1, receiver.url)
    booked = event("appointment.booked", appointment("u1"), hospital_id=H1)
    await hooks.service.fan_out(booked)
    await hooks.deliver_due()
    first = await hooks.delivery(webhook_id, booked.id)
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("pending", 1, 500)
    assert first["next_attempt_at"] == clock.now + dt.timedelta(seconds=40)
    assert await hooks.deliver_due() == 0  # not due yet
    clock.advance(seconds=40)
    await hooks.deliver_due()
    assert (await hooks.delivery(webhook_id, booked.id))[
        "next_attempt_at"
    ] == clock.now + dt.timedelta(seconds=80)
    clock.advance(seconds=80)
    await hooks.deliver_due()
    done = await hooks.delivery(webhook_id, booked.id)
    assert (done["status"], done["attempts"]) == ("delivered", 3)
    assert len(receiver.received) == 3
    assert all(verify(secret, r.headers, r.body) for r in receiver.received)
    assert len({r.headers["X-Guahao-Delivery"] for r in receiver.received}) == 1


def test_default_retries_make_at_least_five_attempts_over_at_least_ten_minutes() -> None:
    settings = Settings()
    worker = DeliveryWorker(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        owner="x",
        retry_base=settings.webhook_retry_base_seconds,
        max_attempts=settings.webhook_max_attempts,
    )
    spread = sum((worker.backoff(n) for n in range(1, worker.max_attempts)), dt.timedelta())
    assert worker.max_attempts >= 5 and spread >= dt.timedelta(minutes=10)


async def test_exhausted_attempts_mark_it_failed_and_a_replay_delivers_it(
    mongo_db: AsyncDatabase[Document], http: aiohttp.ClientSession, clock: Clock, receiver: Receiver
) -> None:
    hooks = await build_hooks(mongo_db, http, clock, max_attempts=3)
    receiver.statuses = [500]
    webhook_id, _ = await hooks.register(H1, receiver.url)
    booked = event("appointment.booked", appointment("u1"), hospital_id=H1)
    await hooks.service.fan_out(booked)
    for _ in range(3):
        await hooks.deliver_due()
        clock.advance(hours=1)
    [failed] = (await hooks.service.list_deliveries(H1, webhook_id, "failed")).items
    assert (failed.event_id, failed.attempts, failed.last_status_code) == (booked.id, 3, 500)
    assert failed.next_attempt_at is None
    receiver.statuses = [200]
    replay = await hooks.service.redeliver(H1, webhook_id, failed.id)
    assert (replay.status, replay.attempts) == ("pending", 0)
    await hooks.deliver_due()
    [delivered] = (await hooks.service.list_deliveries(H1, webhook_id, "delivered")).items
    assert delivered.delivered_at is not None and delivered.attempts == 1
    assert len((await hooks.delivery(webhook_id, booked.id))["history"]) == 5  # 3 + replay + 1
    assert [r.event["id"] for r in receiver.received] == [booked.id] * 4
    with pytest.raises(NotFound):
        await hooks.service.redeliver(H1, webhook_id, "dlv_nope")


async def test_order_per_appointment_holds_across_retries(
    hooks: Hooks, receiver: Receiver, clock: Clock
) -> None:
    await hooks.register(H1, receiver.url)
    visit = appointment("u1")
    booked = event("appointment.booked", visit, hospital_id=H1, at=clock.now)
    receiver.failures[booked.id] = 1
    cancelled = event(
        "appointment.cancelled",
        {**visit, "status": "cancelled"},
        hospital_id=H1,
        at=clock.now + dt.timedelta(seconds=1),
    )
    other = event("appointment.booked", appointment("u2"), hospital_id=H1, at=clock.now)
    for e in (booked, cancelled, other):
        await hooks.service.fan_out(e)
    await hooks.deliver_due()  # booked fails; cancelled must wait; the other goes
    await hooks.deliver_due()
    assert sorted(r.event["id"] for r in receiver.received) == sorted([booked.id, other.id])
    clock.advance(seconds=41)
    await hooks.deliver_due()
    await hooks.deliver_due()
    assert [r.event["id"] for r in receiver.received][2:] == [booked.id, cancelled.id]


async def test_an_endpoint_that_never_answers_does_not_delay_another_hospital(
    hooks: Hooks, receiver: Receiver
) -> None:
    stuck = await Receiver(hang=True).start()
    try:
        await hooks.register(H1, stuck.url)
        await hooks.register(H2, receiver.url)
        worker = asyncio.create_task(hooks.worker.run())
        for _ in range(10):
            await hooks.service.fan_out(
                event("appointment.booked", appointment("u"), hospital_id=H1)
            )
        await stuck.wait_for(1)
        started = asyncio.get_running_loop().time()
        await hooks.service.fan_out(event("appointment.booked", appointment("u2"), hospital_id=H2))
        await receiver.wait_for(1, timeout=4.0)  # well inside the stuck endpoint's 5 s timeout
        assert asyncio.get_running_loop().time() - started < 2.0
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    finally:
        await stuck.close()


async def test_the_address_is_checked_again_at_delivery_time(
    mongo_db: AsyncDatabase[Document], http: aiohttp.ClientSession, clock: Clock, receiver: Receiver
) -> None:
    box = SecretBox(secrets.token_bytes(32))
    lax = await build_hooks(mongo_db, http, clock, box=box)
    webhook_id, _ = await lax.register(H1, receiver.url)
    strict = await build_hooks(
        mongo_db, http, clock, box=box, owner="w2", policy=UrlPolicy(allow_http=True)
    )
    booked = event("appointment.booked", appointment("u1"), hospital_id=H1)
    await strict.service.fan_out(booked)
    await strict.deliver_due()
    attempt = await strict.delivery(webhook_id, booked.id)
    assert attempt["status"] == "pending" and "not allowed" in attempt["last_error"]
    assert receiver.received == []


# crashes


async def test_a_claim_dropped_by_a_dead_worker_is_delivered_again_with_the_same_event_id(
    mongo_db: AsyncDatabase[Document], http: aiohttp.ClientSession, clock: Clock, receiver: Receiver
) -> None:
    box = SecretBox(secrets.token_bytes(32))
    dead = await build_hooks(mongo_db, http, clock, box=box, owner="dead")
    alive = await build_hooks(mongo_db, http, clock, box=box, owner="alive")
    webhook_id, _ = await dead.register(H1, receiver.url)
    booked = event("appointment.booked", appointment("u1"), hospital_id=H1)
    await dead.service.fan_out(booked)
    did = delivery_id(webhook_id, booked.id)
    # the dead worker claimed it and vanished before sending anything
    assert (
        await dead.deliveries.claim(
            did, clock.now, "tok", "dead", clock.now + dt.timedelta(seconds=35)
        )
        is not None
    )
    assert await alive.deliver_due() == 0
    clock.advance(seconds=36)
    assert await alive.worker.release_expired() == 1
    await alive.deliver_due()
    assert [r.event["id"] for r in receiver.received] == [booked.id]


async def test_a_worker_killed_after_posting_leads_to_a_repeat_with_the_same_ids(
    mongo_db: AsyncDatabase[Document], http: aiohttp.ClientSession, clock: Clock
) -> None:
    box = SecretBox(secrets.token_bytes(32))
    slow = await Receiver(hang=True).start()
    try:
        killed = await build_hooks(mongo_db, http, clock, box=box, owner="killed")
        restarted = await build_hooks(mongo_db, http, clock, box=box, owner="restarted")
        webhook_id, _ = await killed.register(H1, slow.url)
        booked = event("appointment.booked", appointment("u1"), hospital_id=H1)
        await killed.service.fan_out(booked)
        await killed.worker.dispatch_due()
        await slow.wait_for(1)
        for task in list(killed.worker._tasks):  # the process dies mid-request
            task.cancel()
        await killed.settle()
        slow.hang = False
        clock.advance(seconds=60)
        await restarted.worker.release_expired()
        await restarted.deliver_due()
        first, again = slow.received
        assert first.event["id"] == again.event["id"] == booked.id
        assert first.headers["X-Guahao-Delivery"] == again.headers["X-Guahao-Delivery"]
        assert (await restarted.delivery(webhook_id, booked.id))["status"] == "delivered"
    finally:
        await slow.close()


def test_the_dev_secret_key_is_generated_once_and_reused(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path)
    first, second = SecretBox.from_settings(settings), SecretBox.from_settings(settings)
    assert second.open("wh_1", first.seal("wh_1", "whsec_x")) == "whsec_x"
    explicit = Settings(webhook_secret_key=base64.b64encode(b"k" * 32).decode())
    box = SecretBox.from_settings(explicit)
    assert box.open("wh_2", box.seal("wh_2", "s")) == "s"


async def test_an_endless_answer_body_is_not_read_to_the_end(
    hooks: Hooks, aiohttp_server: Any
) -> None:
    """Only the status matters: a receiver streaming a body without end (or a huge one)
    gets its delivery recorded at once, not held until the timeout or read into memory."""
    from aiohttp import web

    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        await request.read()
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"x" * 65536
        with contextlib.suppress(ConnectionError, OSError):
            while sent < 512 * 1024 * 1024:
                await response.write(chunk)
                sent += len(chunk)
        return response

    app = web.Application()
    app.router.add_post("/hook", endless)
    server = await aiohttp_server(app)
    webhook_id, _ = await hooks.register(H1, str(server.make_url("/hook")))
    booked = event("appointment.booked", appointment("u1"), hospital_id=H1)
    await hooks.service.fan_out(booked)
    started = asyncio.get_running_loop().time()
    await hooks.deliver_due()
    assert asyncio.get_running_loop().time() - started < 3  # the timeout is 5 s
    done = await hooks.delivery(webhook_id, booked.id)
    assert (done["status"], done["last_status_code"]) == ("delivered", 200)
    assert sent < 64 * 1024 * 1024
