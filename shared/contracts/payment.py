"""Payment contracts: the registration fee (挂号费) paid with WeChat Pay.

Money is integer fen (分, what the API calls `*_cents`) everywhere. One order per
appointment, ever: its id (also WeChat Pay's `out_trade_no`) is derived from the appointment
id, and the one full refund an order can have gets an `out_refund_no` derived from the order,
so every retry of a prepay or a refund names the same thing at WeChat Pay.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.contracts.base import Contract, PlausibleDate, Reply
from shared.contracts.catalog import Id

OrderStatus = Literal["unpaid", "paid", "refunding", "refunded", "closed"]
RefundStatus = Literal["processing", "succeeded"]

# WeChat Pay notifications are small (well under 4 KiB); anything bigger is not one
MAX_NOTIFICATION_BYTES = 16 * 1024


def order_id_for(appointment_id: str) -> str:
    """The order (and `out_trade_no`, 6–32 of [A-Za-z0-9_]) of an appointment."""
    return "ord_" + hashlib.sha256(appointment_id.encode()).hexdigest()[:28]


def refund_no_for(order_id: str, attempt: int = 0) -> str:
    """The `out_refund_no` of the (one, full) refund of an order; every retry of it uses the
    same. Only a refund WeChat Pay closed (REFUND.CLOSED: the money stayed with the merchant)
    is asked for again, as attempt 1, 2… under a new number."""
    base = "ref_" + hashlib.sha256(f"refund|{order_id}".encode()).hexdigest()[:28]
    return base if attempt == 0 else f"{base}-{attempt}"


class AppointmentPayment(Reply):
    """`payment` of an appointment of a hospital that collects the fee."""

    order_id: str
    amount_cents: int
    status: OrderStatus = "unpaid"


class AppointmentRefund(Reply):
    """`refund` of an appointment whose fee is being or was returned."""

    out_refund_no: str
    amount_cents: int
    status: RefundStatus


class PayParams(Contract):
    """`POST /appointments/{aid}/pay`."""

    appointment_id: Id


class PayArgs(Reply):
    """Exactly the arguments of `wx.requestPayment`."""

    timeStamp: str  # noqa: N815 - WeChat's names
    nonceStr: str  # noqa: N815
    package: str
    signType: str  # noqa: N815
    paySign: str  # noqa: N815


class NotificationParams(Contract):
    """`POST /payments/wechat/notify` as the gateway forwards it: the headers and the raw
    body bytes (base64), unchanged — the signature covers the bytes, not a re-encoding."""

    headers: dict[str, Annotated[str, StringConstraints(max_length=2048)]]
    body_b64: Annotated[str, StringConstraints(max_length=4 * MAX_NOTIFICATION_BYTES // 3 + 4)]


class PaymentsFilter(Contract):
    """Query of `GET /admin/hospitals/{hid}/payments` (date: hospital-local day of the
    order; default today)."""

    date: PlausibleDate | None = None
    status: OrderStatus | None = None


class PaymentsQuery(PaymentsFilter):
    hospital_id: Id


class RefundEntry(Reply):
    out_refund_no: str
    amount_cents: int
    status: RefundStatus
    reason: str
    requested_at: str
    succeeded_at: str | None = None


class OrderEntry(Reply):
    order_id: str
    appointment_id: str
    amount_cents: int
    status: OrderStatus
    created_at: str
    pay_by: str
    transaction_id: str | None = None
    paid_at: str | None = None
    refund: RefundEntry | None = None


class PaymentTotals(Reply):
    orders: int
    paid_cents: int  # received (paid, refunding or refunded orders)
    refunded_cents: int
    net_cents: int


class PaymentList(Reply):
    date: str
    items: Annotated[list[OrderEntry], Field(max_length=10_000)]
    totals: PaymentTotals
