"""Wiring of the payment service: orders, the WeChat Pay client, consumers and jobs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from services.payment.domain import OrderFacts, description_of
from services.payment.handlers import PaymentHandlers
from services.payment.jobs import Settlement
from services.payment.repository import Orders
from services.payment.service import (
    AppointmentLookup,
    Clock,
    Openids,
    Pace,
    PayApi,
    PaymentService,
)
from shared.contracts.booking import Appointment, AppointmentRef
from shared.errors import NotFound
from shared.faults import FaultPoints
from shared.messaging.outbox import OutboxRelay
from shared.messaging.rpc import RpcClient
from shared.metrics import Registry
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.wechat.openids import AuthOpenids
from shared.wechat.pay import WeChatPay


class BookingAppointments:
    """Booking's view of the patient's appointment (owner checked by booking)."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def waiting_for_fee(self, caller: Any, appointment_id: str) -> OrderFacts | None:
        try:
            reply = await self.rpc.call(
                "booking",
                "get_appointment",
                AppointmentRef(appointment_id=appointment_id),
                caller=caller,
            )
        except NotFound:
            return None
        appointment = Appointment.model_validate(reply)
        if appointment.payment is None or appointment.pay_by is None:
            return None
        return OrderFacts(
            appointment.id,
            appointment.hospital_id,
            caller.user_id,
            appointment.payment.amount_cents,
            dt.datetime.fromisoformat(appointment.pay_by),
            description_of(appointment.department.name, appointment.doctor.name),
        )


@dataclass
class Payment:
    """The payment service's collaborators, as `build` wires them (tests build their own)."""

    orders: Orders
    service: PaymentService
    settlement: Settlement
    handlers: PaymentHandlers


def pace_of(settings: Settings) -> Pace:
    return Pace(
        query_after=dt.timedelta(seconds=settings.payment_query_after_seconds),
        query_every=dt.timedelta(seconds=settings.payment_query_every_seconds),
        retry=dt.timedelta(seconds=settings.payment_retry_seconds),
    )


def build(
    db: Any,
    *,
    pay: PayApi,
    openids: Openids,
    appointments: AppointmentLookup,
    outbox: OutboxRelay,
    clock: Clock,
    faults: FaultPoints,
    pace: Pace,
    metrics: Registry | None = None,
) -> Payment:
    orders = Orders(db)
    service = PaymentService(
        orders=orders,
        pay=pay,
        openids=openids,
        appointments=appointments,
        outbox=outbox,
        faults=faults,
        clock=clock,
        pace=pace,
        metrics=metrics,
    )
    return Payment(
        orders=orders,
        service=service,
        settlement=Settlement(orders=orders, service=service, pay=pay, faults=faults, clock=clock),
        handlers=PaymentHandlers(service),
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def wire(rt: ServiceRuntime) -> None:
    wechat_pay = WeChatPay.from_settings(rt.settings)
    rt.on_close(wechat_pay.close)
    relay = await rt.outbox([rt.db.orders])
    payment = build(
        rt.db,
        pay=wechat_pay,
        openids=AuthOpenids(rt.rpc_client),
        appointments=BookingAppointments(rt.rpc_client),
        outbox=relay,
        clock=_utcnow,
        faults=FaultPoints.from_env(),
        pace=pace_of(rt.settings),
        metrics=rt.metrics,
    )
    await payment.orders.ensure_indexes()
    payment.handlers.register(rt.rpc_server)
    # competing consumers: one replica handles each appointment event for payment; no dedupe
    # ledger: opening an order and marking it cancelled are idempotent by the order id and
    # the order's version (and most cancellations are of hospitals that collect nothing)
    rt.consume(
        "appointments",
        ["appointment.pending_payment.*", "appointment.cancelled.*"],
        payment.service.on_appointment_event,
        dedupe=False,
    )
    rt.add_leased_job(
        "settlement",
        lambda term: payment.settlement.run_once(),
        interval=1.0,
        idle_interval=2.0,
        ttl=dt.timedelta(seconds=rt.settings.payment_settlement_lease_seconds),
    )
