"""The embedded store does what booking's writes need, as MongoDB does them: operators on
dotted paths reach into sub-documents (the launcher's fix; nx-27017's Python update path
alone treats `slots.a.booked` as one top-level key), guards on them hold under a race."""

from __future__ import annotations

import asyncio

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.storage.mongo import Document


async def test_inc_push_pull_unset_reach_into_sub_documents(
    mongo_db: AsyncDatabase[Document],
) -> None:
    c = mongo_db.dotted
    await c.insert_one({"_id": 1, "slots": {"a": {"booked": 0, "holders": []}}, "n": 0})
    await c.update_one(
        {"_id": 1}, {"$inc": {"slots.a.booked": 2, "n": 1}, "$push": {"slots.a.holders": "x"}}
    )
    await c.update_one(
        {"_id": 1}, {"$addToSet": {"slots.a.holders": "y"}, "$set": {"slots.a.note": "z"}}
    )
    await c.update_one(
        {"_id": 1}, {"$pull": {"slots.a.holders": "x"}, "$inc": {"slots.a.booked": -1}}
    )
    await c.update_one(
        {"_id": 1}, {"$unset": {"slots.a.note": ""}, "$inc": {"day.h|d|2026-12-02": 1}}
    )
    doc = await c.find_one({"_id": 1})
    assert doc == {
        "_id": 1,
        "n": 1,
        "slots": {"a": {"booked": 1, "holders": ["y"]}},
        "day": {"h|d|2026-12-02": 1},
    }
    assert "slots.a.booked" not in doc


async def test_a_guard_on_a_sub_document_holds_under_a_race(
    mongo_db: AsyncDatabase[Document],
) -> None:
    c = mongo_db.race
    await c.insert_one(
        {"_id": "s", "seq": 0, "slots": {"x": {"capacity": 25, "booked": 0, "holders": []}}}
    )

    async def reserve(i: int) -> Document | None:
        return await c.find_one_and_update(
            {
                "_id": "s",
                "slots.x.holders": {"$nin": [f"a{i}"]},
                "$expr": {"$lt": ["$slots.x.booked", "$slots.x.capacity"]},
            },
            {"$push": {"slots.x.holders": f"a{i}"}, "$inc": {"slots.x.booked": 1, "seq": 1}},
            projection={"seq": 1},
            return_document=ReturnDocument.AFTER,
        )

    results = await asyncio.gather(*(reserve(i) for i in range(120)))
    won = [r for r in results if r is not None]
    assert sorted(r["seq"] for r in won) == list(range(1, 26))
    doc = await c.find_one({"_id": "s"})
    assert doc is not None and doc["slots"]["x"]["booked"] == 25
    assert len(set(doc["slots"]["x"]["holders"])) == 25
