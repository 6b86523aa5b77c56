"""Transactional outbox without transactions.

A state change and the events announcing it are one single-document write: the events ride
in the changed document's `outbox` array, with `outbox_pending: true`. After the write the
service flushes that document at once (the fast path); a relay under a lease sweeps every
collection for documents still pending (a crash between commit and publish, a broker
outage) and publishes them. Events are removed only after the broker confirmed them, so a
crash at any point loses nothing and at worst publishes twice (consumers dedupe by id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from shared.messaging.events import EventEnvelope, EventPublisher
from shared.storage.lease import Lease
from shared.storage.mongo import Document

log = logging.getLogger("guahao.outbox")


def outbox_fields(*events: EventEnvelope) -> dict[str, Any]:
    """Fields for a new document that announces `events`."""
    return {"outbox": [e.model_dump() for e in events], "outbox_pending": True}


def outbox_push(*events: EventEnvelope) -> dict[str, Any]:
    """Update operators that append `events` to a document's outbox (merge into the update)."""
    return {
        "$push": {"outbox": {"$each": [e.model_dump() for e in events]}},
        "$set": {"outbox_pending": True},
    }


def with_outbox(update: dict[str, Any], *events: EventEnvelope) -> dict[str, Any]:
    """`update` plus the operators that append `events` (one atomic write)."""
    merged = {op: dict(fields) for op, fields in update.items()}
    for op, fields in outbox_push(*events).items():
        merged.setdefault(op, {}).update(fields)
    return merged


class EventSink(Protocol):
    """Where a relay sends events: the broker (`EventPublisher`) or a local projection
    (auth's audit log); `publish` returns only once the event is safely recorded."""

    async def publish(self, event: EventEnvelope) -> None: ...


class OutboxRelay:
    """Publishes what documents carry in their outbox, then removes it."""

    def __init__(
        self,
        publisher: EventPublisher | EventSink,
        collections: Sequence[AsyncCollection[Document]],
        lease: Lease,
        *,
        interval: float = 0.5,
    ) -> None:
        self.publisher = publisher
        self.collections = list(collections)
        self.lease = lease
        self.interval = interval

    async def ensure_indexes(self) -> None:
        for collection in self.collections:
            await collection.create_index("outbox_pending")

    async def flush(self, collection: AsyncCollection[Document], doc_id: Any) -> int:
        """Publish a document's pending events in order; return how many went out."""
        doc = await collection.find_one({"_id": doc_id}, projection={"outbox": 1})
        events = (doc or {}).get("outbox") or []
        published: list[str] = []
        try:
            for raw in events:
                event = EventEnvelope.model_validate(raw)
                await self.publisher.publish(event)
                published.append(event.id)
        finally:
            if published:
                await collection.update_one(
                    {"_id": doc_id}, {"$pull": {"outbox": {"id": {"$in": published}}}}
                )
                log.debug("outbox published", extra={"doc": str(doc_id), "n": len(published)})
        await collection.update_one(
            {"_id": doc_id, "outbox": {"$size": 0}}, {"$set": {"outbox_pending": False}}
        )
        return len(published)

    async def flush_quietly(self, collection: AsyncCollection[Document], doc_id: Any) -> None:
        """The fast path after a commit: a failure is left for the relay, never raised."""
        try:
            await self.flush(collection, doc_id)
        except Exception as exc:
            log.warning("outbox publish deferred to the relay", extra={"error": repr(exc)})

    async def sweep(self) -> int:
        """Publish everything still pending (oldest first); return how many events."""
        total = 0
        for collection in self.collections:
            cursor = collection.find({"outbox_pending": True}, projection={"_id": 1}).limit(500)
            async for doc in cursor:
                total += await self.flush(collection, doc["_id"])
        return total

    async def backlog(self) -> int:
        """Documents with unpublished events (a metric)."""
        return sum([await c.count_documents({"outbox_pending": True}) for c in self.collections])

    async def run(self) -> None:
        """The relay loop: only the lease holder sweeps, so replicas do not race."""
        while True:
            try:
                if await self.lease.acquire() is not None:
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox sweep failed", extra={"error": repr(exc)})
            await asyncio.sleep(self.interval)
