"""MongoDB access for payment (database `guahao_payment`), in domain verbs; the only module
that writes Mongo operators.

One document per order (`_id` = the order id = WeChat Pay's `out_trade_no`). Every change
is one write guarded by the order's version `v` (and so by the state it was decided from);
the events announcing it ride in the same write (outbox). The jobs find their work by
equality on a flag only the orders with work carry (`querying`, `closing`, `refund_due`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.payment.domain import Document

NO_OUTBOX = {"outbox": 0}
WORK_FLAGS = ("querying", "closing", "refund_due")


class Orders:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.orders

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("hospital_id", ASCENDING), ("date", ASCENDING)])
        for flag in WORK_FLAGS:
            await self.collection.create_index(flag)

    async def get(self, order_id: str) -> Document | None:
        return await self.collection.find_one({"_id": order_id}, projection=NO_OUTBOX)

    async def insert_if_absent(self, doc: Document) -> Document:
        """The order as stored: `doc`, or the one that was there first (one per appointment)."""
        try:
            await self.collection.insert_one(doc)
            return doc
        except DuplicateKeyError:
            existing = await self.get(doc["_id"])
            assert existing is not None
            return existing

    async def change(self, doc: Document, update: Document) -> Document | None:
        """Apply `update` if the order is still the version `doc` was read at; the order
        after, or None when it changed meanwhile (re-read and decide again)."""
        update = {op: dict(fields) for op, fields in update.items()}
        update.setdefault("$inc", {})["v"] = 1
        return await self.collection.find_one_and_update(
            {"_id": doc["_id"], "v": doc["v"]},
            update,
            projection=NO_OUTBOX,
            return_document=ReturnDocument.AFTER,
        )

    async def claim_prepay(
        self, order_id: str, holder: str, now: dt.datetime, until: dt.datetime
    ) -> Document | None:
        """The right to make the one prepay call of an order: only an unpaid, still wanted
        order without a prepay id, and only when nobody holds a live claim."""
        return await self.collection.find_one_and_update(
            {
                "$and": [
                    {"_id": order_id},
                    {"state": "unpaid"},
                    {"cancelled": False},
                    {"prepay_id": {"$exists": False}},
                    {"$or": [{"claim_until": {"$exists": False}}, {"claim_until": {"$lt": now}}]},
                ]
            },
            {
                "$set": {"claim_holder": holder, "claim_until": until, "claimed": True},
                "$inc": {"v": 1},
            },
            projection=NO_OUTBOX,
            return_document=ReturnDocument.AFTER,
        )

    async def store_prepay(
        self, order_id: str, holder: str, prepay_id: str, now: dt.datetime, query_at: dt.datetime
    ) -> bool:
        """The prepay id the claimer got; from now on the order is queried until settled."""
        result = await self.collection.update_one(
            {"_id": order_id, "claim_holder": holder},
            {
                "$set": {
                    "prepay_id": prepay_id,
                    "prepaid_at": now,
                    "querying": True,
                    "next_query_at": query_at,
                },
                "$unset": {"claim_holder": "", "claim_until": ""},
                "$inc": {"v": 1},
            },
        )
        return result.modified_count == 1

    async def release_claim(self, order_id: str, holder: str) -> None:
        await self.collection.update_one(
            {"_id": order_id, "claim_holder": holder},
            {"$unset": {"claim_holder": "", "claim_until": ""}, "$inc": {"v": 1}},
        )

    async def due(
        self, flag: str, at_field: str, now: dt.datetime, limit: int = 200
    ) -> list[Document]:
        """Orders carrying work `flag` whose `at_field` has come."""
        cursor = self.collection.find({flag: True}, projection=NO_OUTBOX)
        return [
            doc
            async for doc in cursor.limit(limit)
            if doc.get(at_field) is None or doc[at_field] <= now
        ]

    async def of_day(self, hospital_id: str, date: str, limit: int = 10_000) -> list[Document]:
        cursor = self.collection.find(
            {"hospital_id": hospital_id, "date": date}, projection=NO_OUTBOX
        ).sort("created_at", ASCENDING)
        return [doc async for doc in cursor.limit(limit)]


def set_fields(fields: dict[str, Any]) -> Document:
    return {"$set": fields}
