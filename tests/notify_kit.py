"""Builders for notify tests (no tests here): the notify services on a real store, a real
WeChat fake over HTTP, stub auth, sample booking events and a webhook receiver."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.notify.catalogue import SIGNATURE_SNIPPET
from services.notify.messages import AppointmentMessages, MessageSender, RetryPolicy
from services.notify.metrics import NotifyMetrics
from services.notify.reminders import VisitReminders
from services.notify.repository import MessageLog, Quotas, Reminders
from services.notify.subscriptions import SubscriptionService
from services.notify.templates import load_templates
from shared.messaging.events import EventEnvelope, new_event
from shared.rules import HOSPITAL_TZ
from shared.storage.mongo import Document
from shared.wechat import WechatClient
from tests.test_wechat_client import APPID, SECRET, Fake

__all__ = ["APPID", "SECRET", "Fake"]


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class StubOpenids:
    """auth's `user_openid`: user id → openid (absent → not a patient)."""

    openids: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    async def openid(self, user_id: str) -> str | None:
        self.calls += 1
        return self.openids.get(user_id)


@dataclass
class Notify:
    """One notify 'process': its WeChat client and services on a shared database."""

    wechat: WechatClient
    sender: MessageSender
    messages: AppointmentMessages
    reminders: VisitReminders
    subscriptions: SubscriptionService
    metrics: NotifyMetrics
    message_log: MessageLog
    quotas: Quotas
    sleeps: list[float]


async def build_notify(
    db: AsyncDatabase[Document],
    http: aiohttp.ClientSession,
    fake: Fake,
    clock: Clock,
    openids: StubOpenids,
    *,
    retries: int = 3,
) -> Notify:
    templates = load_templates(None)
    quotas, log, reminders = Quotas(db), MessageLog(db), Reminders(db)
    for repo in (quotas, log, reminders):
        await repo.ensure_indexes()
    wechat = WechatClient(http, appid=APPID, secret=SECRET, api_base=fake.url)
    metrics, sleeps = NotifyMetrics(), []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    sender = MessageSender(
        templates,
        quotas,
        log,
        wechat,
        openids,
        metrics,
        clock,
        retry=RetryPolicy(retries, 1.0),
        sleep=sleep,
    )
    return Notify(
        wechat,
        sender,
        AppointmentMessages(sender),
        VisitReminders(reminders, sender, clock, 18),
        SubscriptionService(templates, quotas, clock),
        metrics,
        log,
        quotas,
        sleeps,
    )


@dataclass
class Patient:
    user_id: str
    openid: str


async def new_patient(fake: Fake, openids: StubOpenids) -> Patient:
    """A patient user known to auth and to WeChat (the fake refuses unknown openids)."""
    patient = Patient(f"u_{uuid.uuid4().hex[:10]}", f"o_{uuid.uuid4().hex[:10]}")
    openids.openids[patient.user_id] = patient.openid
    await fake.login_code(patient.openid)
    return patient


async def grant(notify: Notify, fake: Fake, patient: Patient, kind: str, count: int) -> None:
    """The patient tapped 'accept' `count` times: our ledger and WeChat's agree."""
    template_id = notify.sender.templates.by_kind[kind].template_id
    for _ in range(count):
        await notify.subscriptions.record(patient.user_id, {template_id: "accept"})
    await fake.control("POST", "quota", openid=patient.openid, template_id=template_id, count=count)


def appointment(
    user_id: str, *, date: str = "2026-12-02", start: str = "08:30", **changes: Any
) -> dict[str, Any]:
    """`data.appointment` of a booking event."""
    return {
        "id": f"apt_{uuid.uuid4().hex[:10]}",
        "status": "booked",
        "slot_id": "slot_1",
        "schedule_id": "sch_1",
        "doctor_id": "doc_1",
        "department_id": "dep_1",
        "date": date,
        "session": "am",
        "start": start,
        "end": "09:00",
        "seq_no": 7,
        "patient": {"id": "pat_1", "name": "张三", "id_number_masked": "1101**********002X"},
        "user_id": user_id,
        "doctor": {"id": "doc_1", "name": "李明", "title": "主任医师"},
        "department": {"id": "dep_1", "name": "心血管内科"},
        "fee_cents": 5000,
        **changes,
    }


def event(
    type_: str,
    appointment_: dict[str, Any],
    *,
    at: dt.datetime | None = None,
    hospital_id: str = "h_1",
    **extra: Any,
) -> EventEnvelope:
    return new_event(type_, hospital_id, {"appointment": appointment_, **extra}, at=at)


def local(y: int, mo: int, d: int, h: int = 9, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=HOSPITAL_TZ)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Receiver:
    """A hospital's webhook endpoint on 127.0.0.1: records every request, answers with
    `status` (a list is consumed one per request, then the last value stays), or hangs."""

    def __init__(self, statuses: list[int] | None = None, *, hang: bool = False) -> None:
        self.statuses = list(statuses or [200])
        self.hang = hang
        self.failures: dict[str, int] = {}  # event id → how many requests to fail first
        self.received: list[Received] = []
        self.arrived = asyncio.Event()
        self.server: TestServer | None = None
        self._release = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(Received(dict(request.headers), await request.read()))
        self.arrived.set()
        if self.hang:
            await self._release.wait()
        event_id = self.received[-1].event.get("id", "")
        if self.failures.get(event_id, 0) > 0:
            self.failures[event_id] -= 1
            return web.Response(status=500, text="not now")
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.Response(status=status, text="ok")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))

    async def close(self) -> None:
        self._release.set()
        if self.server is not None:
            await self.server.close()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The README's signature check, run as a hospital would run it."""
    namespace: dict[str, Any] = {}
    exec(SIGNATURE_SNIPPET, namespace)  # our own README snippet
    return bool(namespace["verify"](secret, headers, body))
