"""MongoDB access for notify. Every step is one single-document atomic write:

- quota: `{user}:{template}` counters, spent with a guarded `$inc: -1` (never below 0)
  that also remembers which message (`{event_id}:{kind}`) spent it, so a redelivered event
  never sends twice;
- message log: what became of each message, one insert under its key;
- reminders: one per appointment, claimed `scheduled → sending` by one sweeper;
- webhook deliveries: `_id` derived from (webhook, event) so a redelivered event adds
  nothing; claimed `pending → in_flight` with a claim token and an expiry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.storage.mongo import Document

UNDELIVERED = ["pending", "in_flight"]


def _some(**fields: Any) -> Document:
    """The fields that have a value (nx-27017 cannot match explicit nulls: store none)."""
    return {k: v for k, v in fields.items() if v is not None}


class Quotas:
    """`quotas`: how many one-time sends each user granted per template."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.quotas

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("user_id")

    async def add(self, user_id: str, template_id: str, n: int, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": f"{user_id}:{template_id}"},
            {
                "$inc": {"count": n},
                "$set": {"user_id": user_id, "template_id": template_id, "updated_at": now},
            },
            upsert=True,
        )

    async def of_user(self, user_id: str) -> dict[str, int]:
        docs = await self.collection.find({"user_id": user_id}).to_list(100)
        return {d["template_id"]: int(d.get("count", 0)) for d in docs}

    async def spend(self, user_id: str, template_id: str, key: str) -> bool:
        """Take one unit for the message `key` before sending it, in one write that also
        remembers the key: False when none is left or `key` already took one (a redelivered
        event never sends twice)."""
        doc = await self.collection.find_one_and_update(
            {"_id": f"{user_id}:{template_id}", "count": {"$gte": 1}, "spent_for": {"$nin": [key]}},
            {"$inc": {"count": -1}, "$push": {"spent_for": {"$each": [key], "$slice": -200}}},
            projection={"_id": 1},
        )
        return doc is not None

    async def refund(self, user_id: str, template_id: str) -> None:
        await self.collection.update_one(
            {"_id": f"{user_id}:{template_id}"}, {"$inc": {"count": 1}}
        )

    async def zero(self, user_id: str, template_id: str) -> None:
        await self.collection.update_one(
            {"_id": f"{user_id}:{template_id}"}, {"$set": {"count": 0}}
        )


class MessageLog:
    """`messages`: one document per subscribe message the service decided about."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.messages

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("user_id", ASCENDING), ("at", DESCENDING)])
        await self.collection.create_index("appointment_id")

    async def record(
        self,
        key: str,
        status: str,
        now: dt.datetime,
        doc: Document,
        *,
        decided: bool,
        **fields: Any,
    ) -> bool:
        """What became of the message `key` (`{event_id}:{kind}`), one upsert. The outcome
        of the one delivery that spent quota for it (`decided`) always stands; a delivery
        that could not spend only notes `skipped_no_quota` where nothing is recorded yet
        (False when something was: a redelivered event, or the sender still at work)."""
        values = {"status": status, "at": now, **doc, **_some(**fields)}
        if decided:
            await self.collection.update_one({"_id": key}, {"$set": values}, upsert=True)
            return True
        result = await self.collection.update_one(
            {"_id": key}, {"$setOnInsert": values}, upsert=True
        )
        return result.upserted_id is not None

    async def get(self, key: str) -> Document | None:
        return await self.collection.find_one({"_id": key})

    async def find(self, query: Document) -> list[Document]:
        return await self.collection.find(query).sort("at", ASCENDING).to_list(1000)


class Reminders:
    """`reminders`: the day-before visit reminder of each appointment, keyed by its id.

    `event_at` is when the event that last changed it happened, so an older event that
    arrives late (retry, competing consumers) never overrides a newer decision.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.reminders

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", ASCENDING), ("due_at", ASCENDING)])

    async def _upsert_if_newer(
        self, appointment_id: str, at: dt.datetime, fields: Document, status: Document
    ) -> bool:
        try:
            result = await self.collection.update_one(
                {"_id": appointment_id, "event_at": {"$lt": at}, "status": status},
                {"$set": {**fields, "event_at": at}},
                upsert=True,
            )
        except DuplicateKeyError:  # a newer event already decided, or it is being sent
            return False
        return result.upserted_id is not None or result.modified_count == 1

    async def schedule(self, appointment_id: str, at: dt.datetime, fields: Document) -> bool:
        """Plan (or re-plan after a move) unless a newer event decided or it is being sent."""
        return await self._upsert_if_newer(appointment_id, at, fields, {"$nin": ["sending"]})

    async def cancel(self, appointment_id: str, at: dt.datetime, why: str) -> bool:
        """The visit will not happen: drop a reminder not yet sent (a tombstone if the
        cancellation overtook the booking event)."""
        return await self._upsert_if_newer(
            appointment_id,
            at,
            {"status": "cancelled", "cancelled_because": why},
            {"$in": ["scheduled", "skipped"]},
        )

    async def claim_due(self, now: dt.datetime, owner: str, term: int | None) -> Document | None:
        """Take the oldest due reminder (`scheduled → sending`); only one sweeper gets it."""
        return await self.collection.find_one_and_update(
            {"status": "scheduled", "due_at": {"$lte": now}},
            {"$set": _some(status="sending", claimed_by=owner, claimed_at=now, term=term)},
            sort=[("due_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def finish(self, appointment_id: str, status: str, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": appointment_id, "status": "sending"},
            {"$set": {"status": status, "finished_at": now}},
        )

    async def get(self, appointment_id: str) -> Document | None:
        return await self.collection.find_one({"_id": appointment_id})


class Webhooks:
    """`webhooks`: a hospital's endpoints; deleting one keeps it (with `deleted_at`) so its
    delivery history stays explainable."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.webhooks

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("hospital_id")

    async def insert(self, doc: Document) -> None:
        await self.collection.insert_one(doc)

    async def get(self, hospital_id: str, webhook_id: str) -> Document | None:
        return await self.collection.find_one(
            {"_id": webhook_id, "hospital_id": hospital_id, "deleted_at": {"$exists": False}}
        )

    async def by_id(self, webhook_id: str) -> Document | None:
        return await self.collection.find_one({"_id": webhook_id})

    async def of_hospital(self, hospital_id: str) -> list[Document]:
        return (
            await self.collection.find(
                {"hospital_id": hospital_id, "deleted_at": {"$exists": False}}
            )
            .sort("created_at", ASCENDING)
            .to_list(100)
        )

    async def update(self, hospital_id: str, webhook_id: str, fields: Document) -> bool:
        result = await self.collection.update_one(
            {"_id": webhook_id, "hospital_id": hospital_id, "deleted_at": {"$exists": False}},
            {"$set": fields},
        )
        return result.matched_count == 1


class Deliveries:
    """`webhook_deliveries`: one per (webhook, event), with its attempts."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db.webhook_deliveries

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.collection.create_index(
            [("webhook_id", ASCENDING), ("order_key", ASCENDING), ("occurred_at", ASCENDING)]
        )
        await self.collection.create_index([("webhook_id", ASCENDING), ("created_at", DESCENDING)])

    async def insert_once(self, doc: Document) -> bool:
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def due(
        self, now: dt.datetime, limit: int, exclude_webhooks: list[str]
    ) -> list[Document]:
        query: Document = {"status": "pending", "next_attempt_at": {"$lte": now}}
        if exclude_webhooks:
            query["webhook_id"] = {"$nin": exclude_webhooks}
        return (
            await self.collection.find(query, projection={"body": 0, "history": 0})
            .sort([("next_attempt_at", ASCENDING), ("occurred_at", ASCENDING)])
            .to_list(limit)
        )

    async def postpone_if_blocked(self, delivery: Document, now: dt.datetime) -> bool:
        """Order per appointment: while an older delivery of the same order key is still
        in the retry flow, this one waits — until that one's next attempt (or a second,
        while it is in flight), so blocked deliveries do not crowd the due list. Failed
        ones block nothing: they wait for a manual replay."""
        blocker = await self.collection.find_one(
            {
                "webhook_id": delivery["webhook_id"],
                "order_key": delivery["order_key"],
                "status": {"$in": UNDELIVERED},
                "occurred_at": {"$lt": delivery["occurred_at"]},
            },
            projection={"status": 1, "next_attempt_at": 1},
        )
        if blocker is None:
            return False
        later = now + dt.timedelta(seconds=1)
        if blocker["status"] == "pending":
            later = max(later, blocker["next_attempt_at"])
        await self.collection.update_one(
            {"_id": delivery["_id"], "status": "pending"},
            {"$set": {"next_attempt_at": later, "blocked": True}},
        )
        return True

    async def release_successors(self, delivery: Document, now: dt.datetime) -> int:
        """The blocker is done (delivered or failed): what waited behind it is due now."""
        result = await self.collection.update_many(
            {
                "webhook_id": delivery["webhook_id"],
                "order_key": delivery["order_key"],
                "status": "pending",
                "blocked": True,
            },
            {"$set": {"next_attempt_at": now}, "$unset": {"blocked": ""}},
        )
        return int(result.modified_count)

    async def claim(
        self, delivery_id: str, now: dt.datetime, token: str, owner: str, expires_at: dt.datetime
    ) -> Document | None:
        return await self.collection.find_one_and_update(
            {"_id": delivery_id, "status": "pending", "next_attempt_at": {"$lte": now}},
            {
                "$set": {
                    "status": "in_flight",
                    "claim_token": token,
                    "claimed_by": owner,
                    "claim_expires_at": expires_at,
                },
                "$unset": {"blocked": ""},
            },
            return_document=ReturnDocument.AFTER,
        )

    async def record_attempt(
        self, delivery_id: str, token: str, fields: Document, attempt: Document, unset: list[str]
    ) -> bool:
        """Store an attempt's outcome, fenced by the claim token (a holder whose claim
        expired and was taken over writes nothing)."""
        result = await self.collection.update_one(
            {"_id": delivery_id, "status": "in_flight", "claim_token": token},
            {
                "$set": fields,
                "$inc": {"attempts": 1},
                "$push": {"history": attempt},
                "$unset": dict.fromkeys(
                    ["claim_token", "claimed_by", "claim_expires_at", *unset], ""
                ),
            },
        )
        return result.modified_count == 1

    async def release_expired(self, now: dt.datetime) -> int:
        """Claims whose holder died go back to pending (the receiver may see a repeat)."""
        result = await self.collection.update_many(
            {"status": "in_flight", "claim_expires_at": {"$lt": now}},
            {
                "$set": {"status": "pending", "next_attempt_at": now},
                "$unset": {"claim_token": "", "claimed_by": "", "claim_expires_at": ""},
            },
        )
        return int(result.modified_count)

    async def get(self, webhook_id: str, delivery_id: str) -> Document | None:
        return await self.collection.find_one(
            {"_id": delivery_id, "webhook_id": webhook_id}, projection={"body": 0}
        )

    async def of_webhook(
        self, webhook_id: str, status: str | None, limit: int = 100
    ) -> list[Document]:
        query: Document = {"webhook_id": webhook_id, **_some(status=status)}
        return (
            await self.collection.find(query, projection={"body": 0, "history": 0})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .to_list(limit)
        )

    async def reset(self, webhook_id: str, delivery_id: str, now: dt.datetime) -> Document | None:
        """Replay: back to pending now with a fresh attempt budget; history keeps the rest."""
        return await self.collection.find_one_and_update(
            {
                "_id": delivery_id,
                "webhook_id": webhook_id,
                "status": {"$in": ["failed", "delivered", "pending"]},
            },
            {
                "$set": {"status": "pending", "next_attempt_at": now, "attempts": 0},
                "$unset": {"delivered_at": ""},
                "$push": {"history": {"at": now, "replayed": True}},
            },
            projection={"body": 0},
            return_document=ReturnDocument.AFTER,
        )

    async def body(self, delivery_id: str) -> str | None:
        doc = await self.collection.find_one({"_id": delivery_id}, projection={"body": 1})
        return None if doc is None else str(doc["body"])
