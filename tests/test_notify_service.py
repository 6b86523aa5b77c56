"""The wired notify service (`services.notify.app.wire`) on the real RabbitMQ, in a vhost of
its own: two replicas consuming real events, RPC, reminders and a crash mid-delivery."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.notify.app import wire
from shared.context import CallContext, Caller
from shared.contracts.notify import UserOpenidQuery
from shared.errors import NotFound
from shared.messaging.connection import connect_broker
from shared.messaging.events import EventPublisher, new_event
from shared.messaging.identity import RpcIdentity
from shared.messaging.rpc import RpcClient, RpcServer
from shared.rules import HOSPITAL_TZ, at_local
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.storage.mongo import Document, connect_mongo
from shared.wechat.fake import DEFAULT_TEMPLATES
from tests.harness import amqp_url, create_vhost, delete_vhost
from tests.notify_kit import APPID, SECRET, Fake, Receiver, appointment, event, verify

pytest_plugins = ["tests.notify_fixtures"]

HOSPITAL = "h_notify_it"
ADMIN = Caller(user_id="s_1", role="hospital_admin", hospital_id=HOSPITAL)


async def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


@dataclass
class System:
    """A vhost with the stub auth service, a publisher, an RPC client and notify replicas."""

    url: str
    fake: Fake
    base: Settings
    rpc: RpcClient
    publisher: EventPublisher
    openids: dict[str, str] = field(default_factory=dict)
    replicas: list[ServiceRuntime] = field(default_factory=list)

    async def start_notify(self, **overrides: Any) -> ServiceRuntime:
        settings = self.base.model_copy(update=overrides)
        broker = await connect_broker(self.url, name="notify-test")
        rt = ServiceRuntime("notify", settings, broker, connect_mongo(settings, app_name="n"))
        await wire(rt)
        await rt.start()
        self.replicas.append(rt)
        return rt

    async def stop(self, rt: ServiceRuntime) -> None:
        self.replicas.remove(rt)
        await rt.stop()

    async def patient(self, kind: str, count: int) -> tuple[str, str]:
        user_id, openid = f"u_{uuid.uuid4().hex[:10]}", f"o_{uuid.uuid4().hex[:10]}"
        self.openids[user_id] = openid
        await self.fake.login_code(openid)
        template_id = DEFAULT_TEMPLATES[kind].template_id
        caller = Caller(user_id=user_id, role="patient")
        for _ in range(count):
            await self.rpc.call(
                "notify", "record_subscription", {"results": {template_id: "accept"}}, caller=caller
            )
        await self.fake.control(
            "POST", "quota", openid=openid, template_id=template_id, count=count
        )
        return user_id, openid

    async def messages(self, openid: str | None = None) -> list[dict[str, Any]]:
        query = {"touser": openid} if openid else {}
        return list((await self.fake.control("GET", "messages", **query))["items"])


@pytest.fixture
async def system(mongo_url: str, fake: Fake, tmp_path: Path) -> AsyncIterator[System]:
    vhost = create_vhost()
    url = amqp_url(vhost)
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    base = Settings(
        amqp_url=url,
        mongo_url=mongo_url,
        mongo_db_prefix=prefix,
        data_dir=tmp_path,
        wechat_appid=APPID,
        wechat_secret=SECRET,
        wechat_api_base=fake.url,
        wechat_retry_base_seconds=0.05,
        webhook_allow_http=True,
        webhook_allow_private=True,
        webhook_retry_base_seconds=1.0,
        webhook_timeout_seconds=3.0,
        shutdown_grace=2.0,
        ops_port=0,
    )
    broker = await connect_broker(url, name="notify-test-driver")
    # signed like a gateway: the notify runtime under test verifies what it serves
    driver = RpcClient(broker, identity=RpcIdentity.from_settings("gateway", base))
    system = System(url, fake, base, driver, EventPublisher(broker))
    auth = RpcServer("auth", broker)

    async def user_openid(params: UserOpenidQuery, ctx: CallContext) -> dict[str, str]:
        if params.user_id not in system.openids:
            raise NotFound()
        return {"openid": system.openids[params.user_id]}

    auth.add_method("user_openid", user_openid)
    await auth.start()
    try:
        yield system
    finally:
        async with asyncio.timeout(30):
            for rt in list(system.replicas):
                await system.stop(rt)
            await auth.drain(1)
            await broker.close()
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url)
        await client.drop_database(f"{prefix}notify")
        await client.close()
        delete_vhost(vhost)


async def _count(system: System, n: int) -> bool:
    return len(await system.messages()) >= n


async def test_two_replicas_turn_each_booking_event_into_one_message(system: System) -> None:
    await system.start_notify()
    await system.start_notify()
    templates = await system.rpc.call("notify", "templates")
    assert {i["kind"] for i in templates["items"]} == set(DEFAULT_TEMPLATES)
    users = [await system.patient("booking_confirmed", 1) for _ in range(5)]
    for user_id, _ in users:
        booked = event("appointment.booked", appointment(user_id), hospital_id=HOSPITAL)
        await system.publisher.publish(booked)
        await system.publisher.publish(booked)  # the outbox may publish twice
    await wait_until(lambda: _count(system, 5))
    await asyncio.sleep(0.5)
    assert len(await system.messages()) == 5
    assert await system.fake.calls("subscribe_send") == 5  # no 40001 retries between replicas
    sent = [
        rt.metrics.counter("guahao_notify_messages_total", "", ["kind", "status"]).value(
            "booking_confirmed", "sent"
        )
        for rt in system.replicas
    ]
    assert sum(sent) == 5
    quota = await system.rpc.call(
        "notify", "quota", caller=Caller(user_id=users[0][0], role="patient")
    )
    assert {i["kind"]: i["remaining"] for i in quota["items"]}["booking_confirmed"] == 0


async def test_reminders_go_out_once_with_two_replicas_on_the_evening_before(
    system: System,
) -> None:
    visit = (dt.datetime.now(HOSPITAL_TZ) + dt.timedelta(days=2)).date()
    due = at_local(visit - dt.timedelta(days=1), "18:00")
    offset = (due - dt.datetime.now(dt.UTC)).total_seconds() + 5
    for _ in range(2):
        await system.start_notify(notify_clock_offset_seconds=offset)
    users = [await system.patient("visit_reminder", 2) for _ in range(3)]
    for user_id, _ in users:
        await system.publisher.publish(
            event(
                "appointment.booked",
                appointment(user_id, date=visit.isoformat()),
                hospital_id=HOSPITAL,
            )
        )
    await wait_until(lambda: _count(system, 3))
    await asyncio.sleep(2.5)  # one more sweep of each replica
    for _, openid in users:
        [reminder] = await system.messages(openid)
        assert reminder["template_id"] == DEFAULT_TEMPLATES["visit_reminder"].template_id


async def test_webhook_registered_over_rpc_gets_signed_events(system: System) -> None:
    await system.start_notify()
    receiver = await Receiver().start()
    try:
        created = await system.rpc.call(
            "notify",
            "create_webhook",
            {"hospital_id": HOSPITAL, "url": receiver.url, "events": ["appointment.*"]},
            caller=ADMIN,
        )
        booked = event("appointment.booked", appointment("u_1"), hospital_id=HOSPITAL)
        await system.publisher.publish(new_event("schedule.stopped", HOSPITAL, {}))
        await system.publisher.publish(booked)
        [got] = await receiver.wait_for(1)
        assert verify(created["secret"], got.headers, got.body)
        assert got.event["id"] == booked.id
        ref = {"hospital_id": HOSPITAL, "webhook_id": created["id"]}
        await wait_until(lambda: _delivered(system, ref))
        listed = await system.rpc.call(
            "notify", "list_webhooks", {"hospital_id": HOSPITAL}, caller=ADMIN
        )
        assert "secret" not in json.dumps(listed)
    finally:
        await receiver.close()


async def _delivered(system: System, ref: dict[str, str]) -> bool:
    reply = await system.rpc.call(
        "notify", "list_deliveries", {**ref, "status": "delivered"}, caller=ADMIN
    )
    return len(reply["items"]) == 1


@pytest.mark.slow
async def test_a_replica_killed_mid_delivery_is_covered_by_a_restarted_one(system: System) -> None:
    first = await system.start_notify()
    receiver = await Receiver(hang=True).start()
    try:
        await system.rpc.call(
            "notify",
            "create_webhook",
            {"hospital_id": HOSPITAL, "url": receiver.url, "events": ["*"]},
            caller=ADMIN,
        )
        booked = event("appointment.booked", appointment("u_1"), hospital_id=HOSPITAL)
        await system.publisher.publish(booked)
        await receiver.wait_for(1)
        await system.stop(first)  # dies with the request in flight, before the outcome
        receiver.hang = False
        # a replica whose clock is past the dead one's claim expiry takes the delivery over
        await system.start_notify(notify_clock_offset_seconds=60)
        first_seen, again = await receiver.wait_for(2)
        assert first_seen.event["id"] == again.event["id"] == booked.id
    finally:
        await receiver.close()


def test_settings_read_the_notify_environment() -> None:
    settings = Settings.from_env(
        {
            "WEBHOOK_ALLOW_HTTP": "1",
            "WEBHOOK_ALLOW_PRIVATE": "1",
            "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
            "NOTIFY_CLOCK_OFFSET_SECONDS": "3600",
            "NOTIFY_REMINDER_HOUR": "20",
        }
    )
    assert settings.webhook_allow_http and settings.webhook_allow_private
    assert (
        settings.webhook_retry_base_seconds,
        settings.notify_clock_offset_seconds,
        settings.reminder_hour,
    ) == (0.5, 3600.0, 20)
    assert not Settings.from_env({}).webhook_allow_http
