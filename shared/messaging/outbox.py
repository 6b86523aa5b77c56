"""Transactional outbox without transactions.

A state change and the events announcing it are one single-document write: the events ride
in the changed document's `outbox` array, with `outbox_pending: true`. After the write the
service flushes that document at once (the fast path); a relay under a lease sweeps every
collection for documents still pending (a crash between commit and publish, a broker
outage) and publishes them. Events are removed only after the broker confirmed them, so a
crash at any point loses nothing and at worst publishes twice (consumers dedupe by id).

An outbox entry keeps the trace context of the request that wrote it (`trace`, W3C
headers; not part of the event): whoever publishes it later — the fast path or the relay
after a crash — publishes it in that trace, so the consumers' handling joins it too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from shared.messaging.events import EventEnvelope, EventPublisher
from shared.storage.lease import Lease
from shared.storage.mongo import Document
from shared.tracing import carrier, resumed

log = logging.getLogger("guahao.outbox")


# the relay leaves a document alone this long after its write: the writer publishes it
# itself at once (the fast path), and a sweep in between would only publish it twice
FAST_PATH_GRACE = dt.timedelta(seconds=5)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


TRACE_FIELD = "trace"


def _entries(events: Sequence[EventEnvelope]) -> list[dict[str, Any]]:
    """The stored form of `events`: each with the current trace context, when there is one."""
    context = carrier()
    entries = [e.model_dump() for e in events]
    if context is not None:
        for entry in entries:
            entry[TRACE_FIELD] = context
    return entries


def outbox_fields(*events: EventEnvelope) -> dict[str, Any]:
    """Fields for a new document that announces `events`."""
    return {"outbox": _entries(events), "outbox_pending": True, "outbox_at": _now()}


def outbox_push(*events: EventEnvelope) -> dict[str, Any]:
    """Update operators that append `events` to a document's outbox (merge into the update)."""
    return {
        "$push": {"outbox": {"$each": _entries(events)}},
        "$set": {"outbox_pending": True, "outbox_at": _now()},
    }


def with_outbox(update: dict[str, Any], *events: EventEnvelope) -> dict[str, Any]:
    """`update` plus the operators that append `events` (one atomic write)."""
    return merge_updates(update, outbox_push(*events))


def merge_updates(update: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Two update documents as one (operator by operator; `extra` wins on a shared field)."""
    merged = {op: dict(fields) for op, fields in update.items()}
    for op, fields in extra.items():
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
        idle_interval: float = 5.0,
        background: bool = False,
    ) -> None:
        self.publisher = publisher
        self.collections = list(collections)
        self.lease = lease
        self.interval = interval
        self.idle_interval = idle_interval
        self._sent: dict[str, tuple[AsyncCollection[Document], dict[Any, list[str]]]] = {}
        self._sent_signal = asyncio.Event()
        self.background = background
        self._publishing: set[asyncio.Task[None]] = set()

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
                with resumed(raw.get(TRACE_FIELD)):  # in the trace of the writing request
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

    async def publish_committed(
        self, collection: AsyncCollection[Document], doc_id: Any, events: Sequence[EventEnvelope]
    ) -> None:
        """The fast path after a commit, without reading back what was just written: publish
        the events this process wrote and have them marked sent in the background, in
        batches. A failure is left for the relay, never raised. With `background`, the
        publishing itself happens after the caller has its answer (the events are safe in
        the document already)."""
        if not self.background:
            await self._publish_committed(collection, doc_id, events)
            return
        task = asyncio.create_task(self._publish_committed(collection, doc_id, events))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def settle(self) -> None:
        """Wait for the publishing started in the background (at shutdown)."""
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)

    async def _publish_committed(
        self, collection: AsyncCollection[Document], doc_id: Any, events: Sequence[EventEnvelope]
    ) -> None:
        published: list[str] = []
        try:
            for event in events:
                await self.publisher.publish(event)
                published.append(event.id)
        except Exception as exc:
            log.warning("outbox publish deferred to the relay", extra={"error": repr(exc)})
        if published:
            _, docs = self._sent.setdefault(collection.full_name, (collection, {}))
            docs.setdefault(doc_id, []).extend(published)
            self._sent_signal.set()

    async def mark_sent(self) -> int:
        """Remove the events the fast path published from their documents' outboxes: two
        writes per collection for a whole batch."""
        batches, self._sent = self._sent, {}
        marked = 0
        for collection, docs in batches.values():
            ids = list(docs)
            event_ids = [e for events in docs.values() for e in events]
            await collection.update_many(
                {"_id": {"$in": ids}}, {"$pull": {"outbox": {"id": {"$in": event_ids}}}}
            )
            await collection.update_many(
                {"_id": {"$in": ids}, "outbox": {"$size": 0}}, {"$set": {"outbox_pending": False}}
            )
            marked += len(event_ids)
        return marked

    async def run_marker(self) -> None:
        """Marks what the fast path published, a batch at a time; idle costs nothing."""
        while True:
            await self._sent_signal.wait()
            self._sent_signal.clear()
            await asyncio.sleep(0.05)  # let a burst gather into one batch
            try:
                await self.mark_sent()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the relay publishes them again; consumers dedupe
                log.warning("outbox marking failed", extra={"error": repr(exc)})

    async def flush_quietly(self, collection: AsyncCollection[Document], doc_id: Any) -> None:
        """The fast path after a commit: a failure is left for the relay, never raised."""
        try:
            await self.flush(collection, doc_id)
        except Exception as exc:
            log.warning("outbox publish deferred to the relay", extra={"error": repr(exc)})

    async def sweep(self, *, everything: bool = False) -> int:
        """Publish what is still pending; return how many events. Documents written in the
        last `FAST_PATH_GRACE` are left to their writer's fast path unless `everything`
        (at shutdown, or to settle a test)."""
        total = 0
        settled_before = _now() if everything else _now() - FAST_PATH_GRACE
        for collection in self.collections:
            # equality on the flag only: an index look-up whatever the collection's size
            cursor = collection.find(
                {"outbox_pending": True}, projection={"_id": 1, "outbox_at": 1}
            ).limit(500)
            async for doc in cursor:
                if doc.get("outbox_at", settled_before) <= settled_before:
                    total += await self.flush(collection, doc["_id"])
        return total

    async def backlog(self) -> int:
        """Documents with unpublished events (a metric)."""
        return sum([await c.count_documents({"outbox_pending": True}) for c in self.collections])

    async def oldest_age(self) -> float:
        """Seconds since the oldest still unpublished event was written, 0 when none is
        (a metric: a growing age means nothing publishes — broker down, relay stuck)."""
        oldest: dt.datetime | None = None
        for collection in self.collections:
            doc = await collection.find_one(
                {"outbox_pending": True},
                projection={"_id": 0, "outbox_at": 1},
                sort=[("outbox_at", 1)],
            )
            at = (doc or {}).get("outbox_at")
            if isinstance(at, dt.datetime) and (oldest is None or at < oldest):
                oldest = at
        if oldest is None:
            return 0.0
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        return max((_now() - oldest).total_seconds(), 0.0)

    async def run(self) -> None:
        """The relay loop: only the lease holder sweeps, so replicas do not race. With
        nothing to publish it slows down to `idle_interval` (the fast path publishes the
        normal traffic; the sweep is for what a crash or an outage left behind)."""
        marker = asyncio.create_task(self.run_marker())
        pause = self.interval
        try:
            while True:
                found = 0
                try:
                    if await self.lease.acquire() is not None:
                        found = await self.sweep()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("outbox sweep failed", extra={"error": repr(exc)})
                pause = self.interval if found else min(pause * 2, self.idle_interval)
                await asyncio.sleep(pause)
        finally:
            marker.cancel()
            try:
                await self.settle()
                await self.mark_sent()
            except Exception as exc:
                log.warning("outbox marking at stop failed", extra={"error": repr(exc)})
