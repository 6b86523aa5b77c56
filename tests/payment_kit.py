"""Builders for payment tests: the payment service on a real store against the pay fake
(the in-process one of tests/payfake_kit.py), stub neighbours, a clock tests can move."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.payment.app import Payment, build
from services.payment.domain import OrderFacts
from services.payment.service import Pace
from shared.contracts.events import AppointmentChanged
from shared.contracts.payment import order_id_for
from shared.faults import FaultPoints
from shared.messaging.events import EventEnvelope, new_event
from shared.messaging.outbox import OutboxRelay
from shared.storage.lease import Lease
from shared.storage.mongo import Document
from tests.booking_kit import RecordingPublisher

if TYPE_CHECKING:
    from tests.payfake_kit import NotifySink, PayFake


class Clock:
    """Real time (the fake checks time_expire against it) plus an offset tests move."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += dt.timedelta(**kwargs)


class Openids:
    async def openid(self, user_id: str) -> str | None:
        return f"o_{user_id}"


class Appointments:
    """Booking's view: the appointments waiting for their fee."""

    def __init__(self) -> None:
        self.waiting: dict[str, OrderFacts] = {}

    async def waiting_for_fee(self, caller: Any, appointment_id: str) -> OrderFacts | None:
        return self.waiting.get(appointment_id)


class Kit:
    def __init__(self, db: AsyncDatabase[Document], payfake: PayFake, sink: NotifySink) -> None:
        self.clock = Clock()
        self.publisher = RecordingPublisher()
        self.relay = OutboxRelay(
            self.publisher, [db.orders], Lease(db.leases, "outbox", "me", dt.timedelta(seconds=10))
        )
        self.payfake, self.sink = payfake, sink
        self.pay = payfake.client(sink.url)
        self.appointments = Appointments()
        self.faults = FaultPoints()
        self.payment: Payment = build(
            db,
            pay=self.pay,
            openids=Openids(),
            appointments=self.appointments,
            outbox=self.relay,
            clock=self.clock,
            faults=self.faults,
            pace=Pace(
                query_after=dt.timedelta(seconds=30),
                query_every=dt.timedelta(seconds=60),
                retry=dt.timedelta(seconds=30),
            ),
        )
        self.service = self.payment.service
        self.orders = self.payment.orders
        self.jobs = self.payment.settlement
        self.hospital_id = f"h_{uuid.uuid4().hex[:8]}"

    def appointment(self, user: str = "u_1", minutes: int = 15, fee: int = 5000) -> str:
        aid = f"apt_{uuid.uuid4().hex[:24]}"
        pay_by = (self.clock() + dt.timedelta(minutes=minutes)).replace(microsecond=0)
        self.appointments.waiting[aid] = OrderFacts(
            aid, self.hospital_id, user, fee, pay_by, "挂号费-心内科-李医生"
        )
        return aid

    async def tap(self, aid: str, user: str = "u_1") -> dict[str, Any]:
        args = await self.service.pay_args(None, user, aid)
        return args.model_dump()

    async def deliver(self, count: int) -> None:
        """Hand the notifications the fake sent to the service, as the gateway does."""
        for headers, body in await self.sink.wait_for(count):
            await self.service.notification(headers, body)

    async def order(self, aid: str) -> Document:
        doc = await self.orders.get(order_id_for(aid))
        assert doc is not None
        return doc

    def cancelled(self, aid: str, by: str, reason: str) -> EventEnvelope:
        facts = self.appointments.waiting[aid]
        data = AppointmentChanged.model_validate(
            {
                "appointment": {
                    "id": aid,
                    "status": "cancelled",
                    "slot_id": "s",
                    "schedule_id": "sch",
                    "doctor_id": "d",
                    "department_id": "dep",
                    "date": "2026-12-02",
                    "session": "am",
                    "start": "08:00",
                    "end": "08:30",
                    "user_id": facts.user_id,
                    "patient": {"id": "p", "name": "张三", "id_number_masked": "11**"},
                    "doctor": {"id": "d", "name": "李医生"},
                    "department": {"id": "dep", "name": "心内科"},
                    "fee_cents": facts.amount_fen,
                    "cancelled_by": by,
                    "reason": reason,
                    "payment": {"order_id": order_id_for(aid), "amount_cents": facts.amount_fen},
                }
            }
        )
        return new_event(
            "appointment.cancelled",
            self.hospital_id,
            data.model_dump(mode="json", exclude_none=True),
        )

    async def events(self) -> list[str]:
        await self.relay.settle()
        return self.publisher.types()


@pytest.fixture
async def kit(
    mongo_db: AsyncDatabase[Document], payfake: PayFake, notify_sink: NotifySink
) -> AsyncIterator[Kit]:
    k = Kit(mongo_db, payfake, notify_sink)
    await k.orders.ensure_indexes()
    await k.relay.ensure_indexes()
    yield k
    await k.pay.close()
