"""The registration-fee order as types and rules; no I/O here.

    unpaid ──paid──▶ paid ──refund──▶ refunding ──▶ refunded
      └──close──▶ closed

An order never goes back: every write names the state it expects (and the order's version),
so a late or duplicated "paid" finds the order refunding, refunded or closed and changes
nothing. A fee that arrives for an appointment that is no longer waiting (cancelled or
expired) goes paid → refunding in the same write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from shared.contracts.payment import order_id_for, refund_no_for
from shared.rules import HOSPITAL_TZ

Document = dict[str, Any]

TRANSITIONS: dict[str, frozenset[str]] = {
    "unpaid": frozenset({"paid", "refunding", "closed"}),  # refunding: paid after a cancel
    "paid": frozenset({"refunding"}),
    "refunding": frozenset({"refunded"}),
    "refunded": frozenset(),
    "closed": frozenset(),
}
# WeChat Pay trade states that mean the money was taken
PAID_TRADE_STATES = frozenset({"SUCCESS", "REFUND"})
# trade states after which nothing can be paid on the order any more
DEAD_TRADE_STATES = frozenset({"CLOSED", "REVOKED", "PAYERROR"})
# a claim on the prepay call outlives WeChat Pay's timeout, so two prepay calls for one
# order never run at once, and a claimer that died is replaced
PREPAY_CLAIM = dt.timedelta(seconds=15)
# after `pay_by` the order is still queried this long (a payment made in the last second)
QUERY_GRACE = dt.timedelta(minutes=2)


class BackwardsTransition(Exception):
    """A change the order's life cycle does not allow (a late duplicate, ignored)."""


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def local_date(at: dt.datetime) -> str:
    return at.astimezone(HOSPITAL_TZ).date().isoformat()


def description_of(department: str, doctor: str) -> str:
    """What the patient sees in WeChat Pay (≤127 bytes of UTF-8)."""
    text = f"挂号费-{department}-{doctor}"
    while len(text.encode()) > 127:
        text = text[:-1]
    return text


@dataclass(frozen=True)
class OrderFacts:
    """What an order is made from: the appointment waiting for its fee."""

    appointment_id: str
    hospital_id: str
    user_id: str
    amount_fen: int
    pay_by: dt.datetime
    description: str

    @property
    def order_id(self) -> str:
        return order_id_for(self.appointment_id)

    def new_doc(self, now: dt.datetime) -> Document:
        return {
            "_id": self.order_id,
            "appointment_id": self.appointment_id,
            "hospital_id": self.hospital_id,
            "user_id": self.user_id,
            "amount_fen": self.amount_fen,
            "description": self.description,
            "pay_by": self.pay_by,
            "state": "unpaid",
            "created_at": now,
            "date": local_date(now),
            "cancelled": False,
            "v": 0,
        }


def paid_fields(
    doc: Document, transaction_id: str | None, paid_at: dt.datetime, now: dt.datetime
) -> Document:
    """unpaid → paid; straight on to refunding when the appointment is gone already."""
    fields: Document = {
        "state": "paid",
        "transaction_id": transaction_id,
        "paid_at": paid_at,
        "querying": False,
        "closing": False,
        "updated_at": now,
    }
    if doc.get("cancelled"):
        fields |= refund_fields(doc, "appointment no longer waiting", now)
    return fields


def refund_fields(doc: Document, reason: str, now: dt.datetime) -> Document:
    """paid → refunding: the full fee, under the order's one `out_refund_no`."""
    return {
        "state": "refunding",
        "refund_due": True,
        "next_refund_at": now,
        "refund": {
            "out_refund_no": refund_no_for(doc["_id"]),
            "amount_fen": doc["amount_fen"],
            "reason": reason,
            "requested_at": now,
            "status": "processing",
        },
        "updated_at": now,
    }


def refund_reason(cancelled_by: str | None, reason: str | None) -> str:
    if cancelled_by == "hospital":
        return f"医院取消：{reason or ''}".rstrip("：")
    if cancelled_by == "patient":
        return "患者取消"
    return "预约已失效"


def order_event_data(doc: Document) -> Document:
    """`data.payment` of the payment events."""
    paid_at = doc.get("paid_at")
    return {
        "order_id": doc["_id"],
        "appointment_id": doc["appointment_id"],
        "user_id": doc["user_id"],
        "amount_cents": doc["amount_fen"],
        "status": doc["state"],
        "transaction_id": doc.get("transaction_id"),
        "paid_at": paid_at.astimezone(HOSPITAL_TZ).isoformat(timespec="seconds")
        if isinstance(paid_at, dt.datetime)
        else None,
    }
