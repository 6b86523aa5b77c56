"""Orders and refunds of the registration fee: what the patient's "pay" tap, WeChat Pay's
notifications, booking's appointment events and the settlement jobs do to an order.

Every change is decided from the order as read and written with that version as the guard
(`Orders.change`); a lost race re-reads and decides again, so concurrent notifications,
queries, cancellations and taps converge on one outcome, each announced once (outbox).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from services.payment.domain import (
    PAID_TRADE_STATES,
    PREPAY_CLAIM,
    Document,
    OrderFacts,
    can_move,
    description_of,
    local_date,
    order_event_data,
    paid_fields,
    refund_fields,
    refund_reason,
)
from services.payment.repository import Orders
from shared.context import deadline_var
from shared.contracts.events import EVENT_DATA, AppointmentChanged, AppointmentData, typed_event
from shared.contracts.payment import (
    OrderEntry,
    PayArgs,
    PaymentList,
    PaymentTotals,
    RefundEntry,
    order_id_for,
    refund_no_for,
)
from shared.errors import InvalidState, NotFound, ServiceUnavailable, Unauthenticated
from shared.faults import FaultPoints
from shared.messaging.events import EventEnvelope
from shared.messaging.outbox import OutboxRelay, with_outbox
from shared.metrics import Registry
from shared.rules import HOSPITAL_TZ
from shared.wechat.pay import (
    InvalidNotification,
    PayNotification,
    PayOrder,
    PayRefund,
    PayRejected,
    PayUnavailable,
)

log = logging.getLogger("guahao.payment")

Clock = Callable[[], dt.datetime]
CHANGE_ATTEMPTS = 8


class PayApi(Protocol):
    """What payment needs of WeChat Pay (`shared.wechat.pay.WeChatPay`)."""

    async def jsapi_prepay(
        self,
        *,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        payer_openid: str,
        time_expire: dt.datetime,
    ) -> str: ...

    def jsapi_pay_args(self, prepay_id: str) -> dict[str, str]: ...

    async def query_order(self, out_trade_no: str) -> PayOrder: ...

    async def close_order(self, out_trade_no: str) -> None: ...

    async def refund(
        self, *, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> PayRefund: ...

    async def query_refund(self, out_refund_no: str) -> PayRefund: ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PayNotification: ...


class Openids(Protocol):
    async def openid(self, user_id: str) -> str | None: ...


class AppointmentLookup(Protocol):
    """Booking's view of a patient's appointment (first tap before the order's event)."""

    async def waiting_for_fee(self, caller: Any, appointment_id: str) -> OrderFacts | None: ...


@dataclass(frozen=True)
class Pace:
    """How soon the jobs look at an order again (PAYMENT_*_SECONDS)."""

    query_after: dt.timedelta = dt.timedelta(seconds=30)
    query_every: dt.timedelta = dt.timedelta(seconds=60)
    retry: dt.timedelta = dt.timedelta(seconds=30)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class PaymentService:
    def __init__(
        self,
        *,
        orders: Orders,
        pay: PayApi,
        openids: Openids,
        appointments: AppointmentLookup,
        outbox: OutboxRelay,
        faults: FaultPoints | None = None,
        clock: Clock = _utcnow,
        pace: Pace | None = None,
        metrics: Registry | None = None,
    ) -> None:
        self.outcomes = (metrics or Registry()).counter(
            "guahao_payment_orders_total",
            "Changes of registration-fee orders, and refused notifications.",
            ("event",),
        )
        self.orders = orders
        self.pay = pay
        self.openids = openids
        self.appointments = appointments
        self.outbox = outbox
        self.faults = faults or FaultPoints()
        self.clock = clock
        self.pace = pace or Pace()

    # ---- orders ------------------------------------------------------------------------

    async def open_order(self, facts: OrderFacts) -> Document:
        """The order of an appointment waiting for its fee (made once, whoever asks)."""
        return await self.orders.insert_if_absent(facts.new_doc(self.clock()))

    async def on_appointment_event(self, event: EventEnvelope) -> None:
        data = AppointmentChanged.model_validate(event.data).appointment
        if data.payment is None:
            return  # a hospital that does not collect the fee
        if event.type == "appointment.pending_payment" and data.pay_by:
            await self.open_order(facts_of(data, event.hospital_id))
        elif event.type == "appointment.cancelled":
            await self.appointment_cancelled(data, event.hospital_id)

    async def appointment_cancelled(self, data: AppointmentData, hospital_id: str) -> None:
        """The appointment is gone: an unpaid order is closed (at WeChat Pay too, when a
        prepay may exist), a paid fee refunded in full."""
        assert data.payment is not None
        order_id = data.payment.order_id
        now = self.clock()
        mark = {
            "cancelled": True,
            "cancelled_by": data.cancelled_by or "system",
            "cancel_reason": data.reason or "",
            "updated_at": now,
        }
        for _ in range(CHANGE_ATTEMPTS):
            doc = await self.orders.get(order_id)
            if doc is None:  # never tapped: nothing exists at WeChat Pay
                facts = OrderFacts(
                    data.id,
                    hospital_id,
                    data.user_id,
                    data.payment.amount_cents,
                    now,
                    description_of(data.department.name, data.doctor.name),
                )
                doc = await self.orders.insert_if_absent(
                    {**facts.new_doc(now), **mark, "state": "closed"}
                )
                if doc.get("cancelled"):
                    return
                continue
            if doc.get("cancelled") and doc["state"] != "paid":
                return  # seen before
            if doc["state"] == "unpaid":
                # a prepay that was (or may be being) made must be closed at WeChat Pay
                update = (
                    {"closing": True, "next_close_at": now}
                    if doc.get("claimed")
                    else {"state": "closed"}
                )
                changed = await self.orders.change(doc, {"$set": {**mark, **update}})
            elif doc["state"] == "paid":
                fields = refund_fields(doc, refund_reason(data.cancelled_by, data.reason), now)
                changed = await self.orders.change(doc, {"$set": {**mark, **fields}})
            else:
                changed = await self.orders.change(doc, {"$set": mark})
            if changed is not None:
                log.info(
                    "order after cancellation",
                    extra={"order_id": order_id, "state": changed["state"]},
                )
                self.outcomes.inc(f"cancelled_{changed['state']}")
                return
        raise ServiceUnavailable("order busy")

    # ---- the patient's tap -------------------------------------------------------------

    async def pay_args(self, caller: Any, user_id: str, appointment_id: str) -> PayArgs:
        """The arguments of `wx.requestPayment` for the appointment's order. However many
        taps arrive, one prepay call is made per order: the first takes a claim, the others
        wait for the prepay id it stores."""
        order_id = order_id_for(appointment_id)
        doc = await self.orders.get(order_id)
        if doc is None:
            facts = await self.appointments.waiting_for_fee(caller, appointment_id)
            if facts is None:
                raise InvalidState("该预约无需支付 / nothing to pay")
            doc = await self.open_order(facts)
        if doc["user_id"] != user_id:
            raise NotFound("预约不存在 / appointment not found")
        holder = uuid.uuid4().hex
        give_up = time.monotonic() + PREPAY_CLAIM.total_seconds()
        while True:
            self._refuse_unpayable(doc)
            if doc.get("prepay_id"):
                return PayArgs.model_validate(self.pay.jsapi_pay_args(doc["prepay_id"]))
            now = self.clock()
            claimed = await self.orders.claim_prepay(order_id, holder, now, now + PREPAY_CLAIM)
            if claimed is not None:
                return await self._prepay(claimed, holder)
            if _out_of_time() or time.monotonic() > give_up:
                raise ServiceUnavailable("支付准备中，请重试 / preparing payment, retry")
            await asyncio.sleep(0.05)
            doc = await self.orders.get(order_id)
            assert doc is not None

    def _refuse_unpayable(self, doc: Document) -> None:
        if doc["state"] != "unpaid":
            raise InvalidState(
                "订单已"
                + {"paid": "支付", "refunding": "退款", "refunded": "退款", "closed": "关闭"}[
                    doc["state"]
                ]
                + f" / order {doc['state']}",
                status=doc["state"],
            )
        if doc.get("cancelled") or self.clock() >= _aware(doc["pay_by"]):
            raise InvalidState("支付已超时 / payment time is over", status="expired")

    async def _prepay(self, doc: Document, holder: str) -> PayArgs:
        order_id = doc["_id"]
        try:
            openid = await self.openids.openid(doc["user_id"])
            if openid is None:
                raise NotFound("用户不存在 / user not found")
            self.faults.point("pay.after_claim")
            prepay_id = await self.pay.jsapi_prepay(
                out_trade_no=order_id,
                description=doc["description"],
                amount_fen=doc["amount_fen"],
                payer_openid=openid,
                time_expire=_aware(doc["pay_by"]),
            )
        except PayUnavailable as exc:
            await self.orders.release_claim(order_id, holder)
            raise ServiceUnavailable("微信支付暂不可用 / WeChat Pay unavailable") from exc
        except PayRejected as exc:
            await self.orders.release_claim(order_id, holder)
            log.warning("prepay refused", extra={"order_id": order_id, "code": exc.code})
            raise InvalidState(
                f"微信支付拒绝 / WeChat Pay refused: {exc.code}", code=exc.code
            ) from exc
        except (Exception, asyncio.CancelledError):  # not a kill: its claim just expires
            await asyncio.shield(self.orders.release_claim(order_id, holder))
            raise
        self.faults.point("pay.after_prepay")
        now = self.clock()
        await self.orders.store_prepay(
            order_id, holder, prepay_id, now, now + self.pace.query_after
        )
        log.info("prepaid", extra={"order_id": order_id})
        self.outcomes.inc("prepaid")
        return PayArgs.model_validate(self.pay.jsapi_pay_args(prepay_id))

    # ---- what WeChat Pay reports -------------------------------------------------------

    async def notification(self, headers: Mapping[str, str], body: bytes) -> None:
        """A notification, verified on the raw bytes; stored before this returns (then the
        gateway answers 204). Unverifiable → Unauthenticated (401), nothing changes."""
        try:
            note = self.pay.parse_notification(headers, body)
        except InvalidNotification as exc:
            log.warning("notification refused", extra={"reason": str(exc)})
            self.outcomes.inc("notification_refused")
            raise Unauthenticated("通知验签失败 / notification not verified") from exc
        if note.order is not None:
            await self.record_order(note.order)
        elif note.refund is not None:
            await self.record_refund(note.refund)

    async def record_order(self, reported: PayOrder) -> Document | None:
        """What WeChat Pay says of an order (notification or query): paid → recorded once."""
        if reported.trade_state not in PAID_TRADE_STATES:
            return None
        for _ in range(CHANGE_ATTEMPTS):
            doc = await self.orders.get(reported.out_trade_no)
            if doc is None:
                log.error("payment for an unknown order", extra={"order_id": reported.out_trade_no})
                return None
            if not can_move(doc["state"], "paid"):
                return doc  # a duplicate, or late: never reopens anything
            if reported.amount_fen != doc["amount_fen"]:
                log.error(
                    "paid amount differs from the order",
                    extra={
                        "order_id": doc["_id"],
                        "paid": reported.amount_fen,
                        "expected": doc["amount_fen"],
                    },
                )
            now = self.clock()
            fields = paid_fields(doc, reported.transaction_id, reported.success_time or now, now)
            after = {**doc, **fields, "state": "paid"}
            event = self._event("payment.succeeded", after, {"payment": order_event_data(after)})
            changed = await self.orders.change(doc, with_outbox({"$set": fields}, event))
            if changed is not None:
                self.faults.point("paid.after_write")
                log.info("order paid", extra={"order_id": doc["_id"], "state": changed["state"]})
                self.outcomes.inc("paid")
                await self.outbox.publish_committed(self.orders.collection, doc["_id"], [event])
                return changed
        raise ServiceUnavailable("order busy")

    async def record_refund(self, reported: PayRefund) -> Document | None:
        """What WeChat Pay says of a refund: SUCCESS → refunded once; anything else is
        looked at again by the refund job (same out_refund_no)."""
        for _ in range(CHANGE_ATTEMPTS):
            doc = await self.orders.get(reported.out_trade_no)
            if doc is None or not can_move(doc["state"], "refunded"):
                return doc
            refund = doc["refund"]
            if reported.out_refund_no != refund["out_refund_no"]:
                log.error("refund not ours", extra={"out_refund_no": reported.out_refund_no})
                return doc
            now = self.clock()
            if reported.status == "SUCCESS":
                fields: Document = {
                    "state": "refunded",
                    "refund_due": False,
                    "updated_at": now,
                    "refund": {
                        **refund,
                        "status": "succeeded",
                        "refund_id": reported.refund_id,
                        "succeeded_at": reported.success_time or now,
                    },
                }
                after = {**doc, **fields}
                event = self._event(
                    "payment.refunded",
                    after,
                    {
                        "payment": order_event_data(after),
                        "refund": {
                            "out_refund_no": refund["out_refund_no"],
                            "amount_cents": refund["amount_fen"],
                            "reason": refund["reason"],
                        },
                    },
                )
                changed = await self.orders.change(doc, with_outbox({"$set": fields}, event))
                if changed is not None:
                    log.info("order refunded", extra={"order_id": doc["_id"]})
                    self.outcomes.inc("refunded")
                    await self.outbox.publish_committed(self.orders.collection, doc["_id"], [event])
                    return changed
                continue
            wait = self.pace.retry if reported.status != "PROCESSING" else self.pace.retry / 3
            if reported.status == "CLOSED":  # the money stayed with us: a new refund
                attempt = int(refund.get("attempt", 0)) + 1
                retried = {
                    k: v for k, v in refund.items() if k not in ("refund_id", "wechat_status")
                }
                retried |= {"attempt": attempt, "out_refund_no": refund_no_for(doc["_id"], attempt)}
            else:
                retried = {
                    **refund,
                    "refund_id": reported.refund_id,
                    "wechat_status": reported.status,
                }
            changed = await self.orders.change(
                doc, {"$set": {"refund": retried, "refund_due": True, "next_refund_at": now + wait}}
            )
            if changed is not None:
                if reported.status in ("ABNORMAL", "CLOSED"):
                    log.warning(
                        "refund not done, retried",
                        extra={"order_id": doc["_id"], "status": reported.status},
                    )
                return changed
        raise ServiceUnavailable("order busy")

    # ---- staff -------------------------------------------------------------------------

    async def day(self, hospital_id: str, date: str | None, status: str | None) -> PaymentList:
        day = date or local_date(self.clock())
        docs = await self.orders.of_day(hospital_id, day)
        items = [order_entry(d) for d in docs if status is None or d["state"] == status]
        received = [d for d in docs if d["state"] in ("paid", "refunding", "refunded")]
        refunded = sum(d["amount_fen"] for d in docs if d["state"] == "refunded")
        paid = sum(d["amount_fen"] for d in received)
        return PaymentList(
            date=day,
            items=items,
            totals=PaymentTotals(
                orders=len(docs),
                paid_cents=paid,
                refunded_cents=refunded,
                net_cents=paid - refunded,
            ),
        )

    def _event(self, type_: str, doc: Document, data: Document) -> EventEnvelope:
        return typed_event(
            type_, doc["hospital_id"], EVENT_DATA[type_].model_validate(data), at=self.clock()
        )


def facts_of(data: AppointmentData, hospital_id: str) -> OrderFacts:
    assert data.payment is not None and data.pay_by is not None
    return OrderFacts(
        data.id,
        hospital_id,
        data.user_id,
        data.payment.amount_cents,
        dt.datetime.fromisoformat(data.pay_by),
        description_of(data.department.name, data.doctor.name),
    )


def _out_of_time() -> bool:
    deadline = deadline_var.get()
    return deadline is not None and time.time() > deadline - 0.2


def _iso(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return None
    return _aware(value).astimezone(HOSPITAL_TZ).isoformat(timespec="seconds")


def order_entry(doc: Document) -> OrderEntry:
    refund = doc.get("refund")
    return OrderEntry(
        order_id=doc["_id"],
        appointment_id=doc["appointment_id"],
        amount_cents=doc["amount_fen"],
        status=doc["state"],
        created_at=_iso(doc["created_at"]) or "",
        pay_by=_iso(doc["pay_by"]) or "",
        transaction_id=doc.get("transaction_id"),
        paid_at=_iso(doc.get("paid_at")),
        refund=RefundEntry(
            out_refund_no=refund["out_refund_no"],
            amount_cents=refund["amount_fen"],
            status=refund["status"],
            reason=refund["reason"],
            requested_at=_iso(refund["requested_at"]) or "",
            succeeded_at=_iso(refund.get("succeeded_at")),
        )
        if refund
        else None,
    )
