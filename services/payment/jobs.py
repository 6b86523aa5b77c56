"""Settlement, under a lease so one replica does it at a time: what WeChat Pay did not tell
us (or we could not tell it) is asked or told again until every order has its outcome.

- query: an order prepaid without a notification is queried `query_after` after its prepay,
  then every `query_every` until `pay_by` (+ a grace): a lost notification settles here;
- close: the WeChat order of a cancelled, unpaid appointment is closed (a payment that beat
  the close is found by a query and refunded);
- refund: a refund is submitted, and resubmitted with the SAME out_refund_no (WeChat Pay
  answers a repeat with the same refund) until it succeeded; its result comes from the
  notification or from a query.
"""

from __future__ import annotations

import datetime as dt
import logging

from services.payment.domain import DEAD_TRADE_STATES, QUERY_GRACE, Document
from services.payment.repository import Orders
from services.payment.service import Clock, PayApi, PaymentService
from shared.errors import DomainError
from shared.faults import FaultPoints
from shared.wechat.pay import PayRejected, PayUnavailable

log = logging.getLogger("guahao.payment.jobs")

GONE_CODES = frozenset({"ORDER_NOT_EXIST", "ORDER_CLOSED", "RESOURCE_NOT_EXISTS"})


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class Settlement:
    def __init__(
        self,
        *,
        orders: Orders,
        service: PaymentService,
        pay: PayApi,
        faults: FaultPoints,
        clock: Clock,
    ) -> None:
        self.orders = orders
        self.service = service
        self.pay = pay
        self.faults = faults
        self.clock = clock
        self.pace = service.pace

    async def run_once(self) -> int:
        """One pass; how many orders it looked at."""
        done = 0
        for step in (self.query_unsettled, self.close_cancelled, self.push_refunds):
            try:
                done += await step()
            except PayUnavailable:
                log.warning("WeChat Pay unavailable; next pass retries", exc_info=True)
        return done

    async def query_unsettled(self) -> int:
        now = self.clock()
        docs = await self.orders.due("querying", "next_query_at", now)
        for doc in docs:
            if doc["state"] != "unpaid":
                await self.orders.change(doc, {"$set": {"querying": False}})
                continue
            try:
                reported = await self.pay.query_order(doc["_id"])
            except PayRejected as exc:
                if exc.code not in GONE_CODES:
                    log.warning(
                        "order query refused", extra={"order_id": doc["_id"], "code": exc.code}
                    )
                await self._query_later(doc, now)
                continue
            if await self.service.record_order(reported) is not None and reported.trade_state in (
                "SUCCESS",
                "REFUND",
            ):
                continue
            if reported.trade_state in DEAD_TRADE_STATES:
                await self._closed(doc)
            else:
                await self._query_later(doc, now)
        return len(docs)

    async def _query_later(self, doc: Document, now: dt.datetime) -> None:
        if now > _aware(doc["pay_by"]) + QUERY_GRACE:
            # nothing can be paid any more (time_expire = pay_by); the close job and the
            # appointment's expiry take it from here
            await self.orders.change(doc, {"$set": {"querying": False}})
        else:
            await self.orders.change(doc, {"$set": {"next_query_at": now + self.pace.query_every}})

    async def _closed(self, doc: Document) -> None:
        fresh = await self.orders.get(doc["_id"])
        if fresh is not None and fresh["state"] == "unpaid":
            await self.orders.change(
                fresh,
                {
                    "$set": {
                        "state": "closed",
                        "closing": False,
                        "querying": False,
                        "updated_at": self.clock(),
                    }
                },
            )
            log.info("order closed", extra={"order_id": doc["_id"]})
            self.service.outcomes.inc("closed")

    async def close_cancelled(self) -> int:
        now = self.clock()
        docs = await self.orders.due("closing", "next_close_at", now)
        for doc in docs:
            if doc["state"] != "unpaid":
                await self.orders.change(doc, {"$set": {"closing": False}})
                continue
            if (
                not doc.get("prepay_id")
                and doc.get("claim_until")
                and _aware(doc["claim_until"]) > now
            ):
                continue  # a prepay call is under way: close after it
            try:
                await self.pay.close_order(doc["_id"])
            except PayRejected as exc:
                if exc.code not in GONE_CODES:  # e.g. ORDERPAID: paid before the close
                    reported = await self.pay.query_order(doc["_id"])
                    if await self.service.record_order(reported) is None:
                        await self.orders.change(
                            doc, {"$set": {"next_close_at": now + self.pace.retry}}
                        )
                    continue
            self.faults.point("close.after_close")
            await self._closed(doc)
        return len(docs)

    async def push_refunds(self) -> int:
        now = self.clock()
        docs = await self.orders.due("refund_due", "next_refund_at", now)
        for doc in docs:
            if doc["state"] != "refunding":
                await self.orders.change(doc, {"$set": {"refund_due": False}})
                continue
            refund = doc["refund"]
            try:
                if refund.get("refund_id") and refund.get("wechat_status") == "PROCESSING":
                    reported = await self.pay.query_refund(refund["out_refund_no"])
                else:
                    reported = await self.pay.refund(
                        out_trade_no=doc["_id"],
                        out_refund_no=refund["out_refund_no"],
                        refund_fen=refund["amount_fen"],
                        total_fen=doc["amount_fen"],
                        reason=refund["reason"],
                    )
                self.faults.point("refund.after_submit")
            except (PayRejected, PayUnavailable) as exc:
                log.warning(
                    "refund not accepted yet, retried with the same out_refund_no",
                    extra={"order_id": doc["_id"], "error": repr(exc)},
                )
                await self.orders.change(doc, {"$set": {"next_refund_at": now + self.pace.retry}})
                continue
            try:
                await self.service.record_refund(reported)
            except DomainError:
                pass  # busy: the next pass looks again
        return len(docs)
