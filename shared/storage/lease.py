"""Leases: run-once work across any number of replicas, with a fencing term."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.storage.mongo import Document

log = logging.getLogger("guahao.lease")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Lease:
    """A named lease document: one holder at a time until it expires.

    `term` increases on every change of holder, so work stamped with a term can be fenced
    off when a stale holder wakes up after its lease was taken over.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        name: str,
        owner: str,
        ttl: dt.timedelta,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.collection = collection
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self.clock = clock
        self.term: int | None = None

    async def acquire(self) -> int | None:
        """Take (or keep) the lease; return its term, or None when another holder has it."""
        now = self.clock()
        try:
            # `$and` spelled out: nx-27017 drops the `_id` term of `{_id, $or: [...]}`
            await self.collection.update_one(
                {
                    "$and": [
                        {"_id": self.name},
                        {"$or": [{"expires_at": {"$lt": now}}, {"owner": self.owner}]},
                    ]
                },
                {"$set": {"owner": self.owner, "expires_at": now + self.ttl}, "$inc": {"term": 1}},
                upsert=True,
            )
        except DuplicateKeyError:
            self.term = None
            return None
        doc = await self.collection.find_one({"_id": self.name})
        if doc is None or doc.get("owner") != self.owner:
            self.term = None
            return None
        self.term = int(doc["term"])
        log.debug("lease acquired", extra={"lease": self.name, "term": self.term})
        return self.term

    async def renew(self) -> bool:
        """Extend a held lease; False when it was lost (stop the work)."""
        if self.term is None:
            return False
        result = await self.collection.update_one(
            {"_id": self.name, "owner": self.owner, "term": self.term},
            {"$set": {"expires_at": self.clock() + self.ttl}},
        )
        if result.matched_count != 1:
            log.info("lease lost", extra={"lease": self.name, "term": self.term})
            self.term = None
            return False
        return True

    async def release(self) -> None:
        """Give the lease up early so another replica can take it at once."""
        if self.term is None:
            return
        await self.collection.update_one(
            {"_id": self.name, "owner": self.owner, "term": self.term},
            {"$set": {"expires_at": self.clock() - dt.timedelta(seconds=1)}},
        )
        self.term = None


async def run_leased(
    lease: Lease,
    work: Callable[[int], Awaitable[object]],
    interval: float,
    idle_interval: float | None = None,
) -> None:
    """Run `work(term)` every `interval` seconds while this replica holds the lease. A pass
    that found nothing to do (`work` returned a falsy value) doubles the pause, up to
    `idle_interval`; one that did something brings it back to `interval` (an idle system
    costs little, a busy one is served at full pace)."""
    pause, longest = interval, max(interval, idle_interval or interval)
    while True:
        did: object = True
        try:
            term = await lease.acquire()
            if term is not None:
                did = await work(term)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("job pass failed", extra={"lease": lease.name, "error": repr(exc)})
        pause = interval if did else min(pause * 2, longest)
        await asyncio.sleep(pause)
