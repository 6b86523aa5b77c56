"""The embedded store keeps types, and the lease helper holds under contention."""

from __future__ import annotations

import asyncio
import datetime as dt

from pymongo.asynchronous.database import AsyncDatabase

from shared.storage.lease import Lease
from shared.storage.mongo import Document


async def test_set_keeps_datetimes_and_booleans(mongo_db: AsyncDatabase[Document]) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    await mongo_db.t.insert_one({"_id": "a"})
    await mongo_db.t.update_one({"_id": "a"}, {"$set": {"at": now, "flag": True}})
    doc = await mongo_db.t.find_one({"_id": "a"})
    assert doc is not None
    assert doc["at"] == now and doc["flag"] is True


async def test_only_one_of_many_contenders_holds_a_lease(mongo_db: AsyncDatabase[Document]) -> None:
    leases = [
        Lease(mongo_db.leases, "job", f"owner{i}", dt.timedelta(seconds=30)) for i in range(10)
    ]
    terms = await asyncio.gather(*(lease.acquire() for lease in leases))
    assert sum(t is not None for t in terms) == 1


async def test_an_expired_lease_is_taken_over_with_a_higher_term(
    mongo_db: AsyncDatabase[Document],
) -> None:
    first = Lease(mongo_db.leases, "job", "a", dt.timedelta(seconds=-1))
    t1 = await first.acquire()
    second = Lease(mongo_db.leases, "job", "b", dt.timedelta(seconds=30))
    t2 = await second.acquire()
    assert t1 is not None and t2 is not None and t2 > t1
    assert not await first.renew()
    assert await second.renew()


async def test_leases_of_different_names_share_a_collection_independently(
    mongo_db: AsyncDatabase[Document],
) -> None:
    expired = Lease(mongo_db.leases, "a", "me", dt.timedelta(seconds=-1))
    assert await expired.acquire() is not None
    other = Lease(mongo_db.leases, "b", "me", dt.timedelta(seconds=30))
    assert await other.acquire() == 1
    third = Lease(mongo_db.leases, "c", "someone", dt.timedelta(seconds=30))
    assert await third.acquire() == 1
    names = {d["_id"]: d["owner"] async for d in mongo_db.leases.find({})}
    assert names == {"a": "me", "b": "me", "c": "someone"}
