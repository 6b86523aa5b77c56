"""Builders for system tests: a hospital with staff, sessions, patients, bookings, and a
durable queue bound to a hospital's events."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiohttp
from aiormq.exceptions import AMQPError, ChannelInvalidStateError

from shared.devstack import DevStack
from shared.idcard import check_character
from shared.messaging.connection import connect_broker
from shared.messaging.events import EVENTS_EXCHANGE
from shared.messaging.queues import QUORUM
from shared.rules import HOSPITAL_TZ
from tests.harness import Api, Response

TOMORROW = (dt.datetime.now(HOSPITAL_TZ) + dt.timedelta(days=1)).date()


def id_number(n: int) -> str:
    first17 = f"3101011985{(n // 28) % 12 + 1:02d}{n % 28 + 1:02d}{n % 1000:03d}"
    return first17 + check_character(first17)


@dataclass
class Hospital:
    id: str
    staff_token: str
    department_id: str
    doctor_id: str


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait until `check()` is true (something asynchronous has happened), at most
    `timeout` seconds: a hang fails the test instead of stalling it."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


async def make_hospital(api: Api) -> Hospital:
    admin = await api.admin_token()
    created = await api.request(
        "POST",
        "/admin/hospitals",
        token=admin,
        json={"name": f"测试医院{uuid.uuid4().hex[:4]}", "level": "三甲"},
    )
    assert created.status == 201, created.body
    hid = created.body["id"]
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff = await api.request(
        "POST",
        f"/admin/hospitals/{hid}/staff",
        token=admin,
        json={"username": username, "password": "staff-password"},
    )
    assert staff.status == 201, staff.body
    login = await api.request(
        "POST", "/auth/staff/login", json={"username": username, "password": "staff-password"}
    )
    token = login.body["access_token"]
    dep = await api.request(
        "POST", f"/admin/hospitals/{hid}/departments", token=token, json={"name": "心血管内科"}
    )
    assert dep.status == 201, dep.body
    doc = await api.request(
        "POST",
        f"/admin/hospitals/{hid}/doctors",
        token=token,
        json={
            "name": "王医生",
            "title": "主任医师",
            "department_id": dep.body["id"],
            "specialty": "高血压",
            "fee_cents": 5000,
            "published": True,
        },
    )
    assert doc.status == 201, doc.body
    return Hospital(hid, token, dep.body["id"], doc.body["id"])


async def make_schedule(
    api: Api,
    h: Hospital,
    *,
    capacity: int,
    session: str = "am",
    starts: tuple[str, ...] = ("08:00",),
    date: dt.date = TOMORROW,
) -> dict[str, Any]:
    slots = [
        {"start": s, "end": f"{s[:3]}{int(s[3:]) + 29:02d}", "capacity": capacity} for s in starts
    ]
    resp = await api.request(
        "POST",
        f"/admin/hospitals/{h.id}/doctors/{h.doctor_id}/schedules",
        token=h.staff_token,
        json={"date": date.isoformat(), "session": session, "slots": slots},
    )
    assert resp.status == 201, resp.body
    return dict(resp.body)


async def todays_session(api: Api, h: Hospital, *, capacity: int) -> dict[str, Any]:
    """A session today that can still be booked now (check-in is only allowed on the visit
    day): an evening slice at 23:58 in a hospital whose same-day booking stops at 23:59.
    In the last minutes of a day it waits for the next one rather than straddle midnight."""
    now = dt.datetime.now(HOSPITAL_TZ)
    if now.time() >= dt.time(23, 56):
        tomorrow = dt.datetime.combine(
            now.date() + dt.timedelta(days=1), dt.time(0, 0, 5), tzinfo=HOSPITAL_TZ
        )
        await asyncio.sleep((tomorrow - now).total_seconds())
    rules = await api.request(
        "PATCH",
        f"/admin/hospitals/{h.id}/rules",
        token=h.staff_token,
        json={"same_day_stop_time": {"am": "11:30", "pm": "16:30", "evening": "23:59"}},
    )
    assert rules.status == 200, rules.body
    today = dt.datetime.now(HOSPITAL_TZ).date()
    resp = await api.request(
        "POST",
        f"/admin/hospitals/{h.id}/doctors/{h.doctor_id}/schedules",
        token=h.staff_token,
        json={
            "date": today.isoformat(),
            "session": "evening",
            "slots": [{"start": "23:58", "end": "23:59", "capacity": capacity}],
        },
    )
    assert resp.status == 201, resp.body
    return dict(resp.body)


async def patient(api: Api, n: int) -> tuple[str, str]:
    token = await api.patient_token()
    resp = await api.request(
        "POST",
        "/patients",
        token=token,
        json={
            "name": "患者",
            "id_number": id_number(n),
            "phone": "13800000000",
            "relation": "self",
        },
    )
    assert resp.status == 201, resp.body
    return token, resp.body["id"]


async def book(
    api: Api, token: str, slot_id: str, patient_id: str, key: str | None = None
) -> Response:
    return await api.request(
        "POST",
        "/appointments",
        token=token,
        json={"slot_id": slot_id, "patient_id": patient_id},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


async def hospital_events_queue(stack: DevStack) -> AsyncIterator[Any]:
    """A durable queue bound per hospital; outlives a broker restart (and, on a cluster,
    the loss of a node: it is then a quorum queue, read over a failing-over connection)."""
    clustered = bool(stack.env.get("AMQP_URLS"))
    connection = await connect_broker(
        stack.env.get("AMQP_URLS") or stack.env["AMQP_URL"], name="tests-his"
    )
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    # durable and named: it must outlive a broker restart in the fault tests
    queue = await channel.declare_queue(
        f"test.events.{uuid.uuid4().hex[:8]}", durable=True, arguments=QUORUM if clustered else None
    )

    class Events:
        async def bind(self, hospital_id: str) -> None:
            await queue.bind(exchange, routing_key=f"*.*.{hospital_id}")

        async def collect(self, until: int, timeout: float = 15) -> list[Any]:
            got: list[Any] = []
            deadline = time.monotonic() + timeout
            while len(got) < until and time.monotonic() < deadline:
                try:
                    message = await queue.get(fail=False)
                except (AMQPError, ChannelInvalidStateError, ConnectionError):
                    # this reader is still reconnecting after a broker restart; the durable
                    # queue keeps what arrives meanwhile
                    await asyncio.sleep(0.2)
                    continue
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                await message.ack()
                got.append(message)
            return got

    yield Events()
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()


@dataclass
class Try:
    """One HTTP attempt of a booking: its status, error code and when it ran (monotonic)."""

    status: int
    code: str | None
    started: float
    ended: float


@dataclass
class Booking:
    """A patient's booking as the mini-program makes it: every attempt, one Idempotency-Key."""

    patient_id: str
    key: str
    tries: list[Try] = field(default_factory=list)
    appointment_id: str | None = None

    @property
    def status(self) -> int:
        return self.tries[-1].status if self.tries else 0


async def book_retrying(
    session: aiohttp.ClientSession,
    gateway_url: str,
    token: str,
    slot_id: str,
    patient_id: str,
    key: str,
    *,
    attempts: int = 5,
    pause: float = 0.5,
) -> Booking:
    """Book as the mini-program does: a 503 (a deadline passed on an overloaded box, a
    broker node lost mid-call) is retried with the same Idempotency-Key, so nothing is
    booked twice."""
    booking = Booking(patient_id, key)
    for n in range(attempts):
        if n:
            await asyncio.sleep(pause)
        started = time.monotonic()
        async with session.post(
            f"{gateway_url}/api/v1/appointments",
            json={"slot_id": slot_id, "patient_id": patient_id},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        ) as r:
            body = await r.json(content_type=None)
        error = body.get("error") if isinstance(body, dict) else None
        booking.tries.append(
            Try(
                r.status,
                error.get("code") if isinstance(error, dict) else None,
                started,
                time.monotonic(),
            )
        )
        if r.status in (200, 201):
            booking.appointment_id = body["id"]
        if r.status != 503:
            break
    return booking


async def flash_crowd(
    session: aiohttp.ClientSession,
    gateways: list[str],
    slots: list[str],
    patients: list[tuple[str, str]],
    *,
    key_prefix: str,
    concurrency: int | None = None,
    attempts: int = 5,
    on_booked: Callable[[int], None] | None = None,
) -> list[Booking]:
    """Every patient books once (retrying 503s), patient i on `slots[i % len(slots)]`
    through `gateways[i % len(gateways)]`; `on_booked(n)` hears the running count of
    bookings made."""
    gate = asyncio.Semaphore(concurrency or len(patients))
    booked = 0

    async def one(i: int, token: str, patient_id: str) -> Booking:
        nonlocal booked
        async with gate:
            result = await book_retrying(
                session,
                gateways[i % len(gateways)],
                token,
                slots[i % len(slots)],
                patient_id,
                f"{key_prefix}-{i}-{patient_id}",
                attempts=attempts,
            )
        if result.appointment_id is not None:
            booked += 1
            if on_booked is not None:
                on_booked(booked)
        return result

    return list(await asyncio.gather(*(one(i, t, p) for i, (t, p) in enumerate(patients))))
