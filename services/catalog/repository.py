"""MongoDB access of the catalog service (database `guahao_catalog`).

Collections: `hospitals` (with their booking rules), `departments` (two levels), `doctors`,
`schedules` (one clinic session with its slots embedded). Every write is one document, so
the state change and the events riding in its `outbox` land together. No field is stored
as an explicit null: absent means unset. Dates are `YYYY-MM-DD` strings, which sort and
compare as dates do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.storage.mongo import Document

TOP_LEVEL = "-"


def department_key(parent_id: str | None) -> str:
    """The sibling group a department name must be unique in (no null in a unique index)."""
    return parent_id or TOP_LEVEL


class CatalogRepository:
    """The four catalog collections; callers get plain documents back."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.hospitals: AsyncCollection[Document] = db["hospitals"]
        self.departments: AsyncCollection[Document] = db["departments"]
        self.doctors: AsyncCollection[Document] = db["doctors"]
        self.schedules: AsyncCollection[Document] = db["schedules"]

    @property
    def outbox_collections(self) -> list[AsyncCollection[Document]]:
        """The collections whose documents carry pending events."""
        return [self.hospitals, self.doctors, self.schedules]

    async def ensure_indexes(self) -> None:
        await self.departments.create_indexes(
            [
                IndexModel(
                    [("hospital_id", ASCENDING), ("parent_key", ASCENDING), ("name", ASCENDING)],
                    name="sibling_name_unique",
                    unique=True,
                ),
            ]
        )
        await self.doctors.create_indexes(
            [
                IndexModel(
                    [("hospital_id", ASCENDING), ("department_id", ASCENDING)],
                    name="hospital_department",
                ),
            ]
        )
        # Queried with $elemMatch: nx-27017 answers plain equality on an indexed array
        # path with nothing, $elemMatch correctly (and MongoDB uses the multikey index).
        await self.schedules.create_indexes(
            [
                IndexModel(
                    [("doctor_id", ASCENDING), ("date", ASCENDING), ("session", ASCENDING)],
                    name="one_session_per_doctor",
                    unique=True,
                ),
                IndexModel([("hospital_id", ASCENDING), ("date", ASCENDING)], name="hospital_date"),
                IndexModel("slots.id", name="slot_id"),
            ]
        )

    # hospitals

    async def insert_hospital(self, doc: Document) -> None:
        """Raises DuplicateKeyError when the id exists."""
        await self.hospitals.insert_one(doc)

    async def hospital(self, hospital_id: str) -> Document | None:
        return await self.hospitals.find_one({"_id": hospital_id}, projection={"outbox": 0})

    async def list_hospitals(self) -> list[Document]:
        cursor = self.hospitals.find({}, projection={"outbox": 0}).sort(
            [("name", ASCENDING), ("_id", ASCENDING)]
        )
        return [doc async for doc in cursor]

    async def hospitals_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        cursor = self.hospitals.find({"_id": {"$in": sorted(set(ids))}}, projection={"outbox": 0})
        return {doc["_id"]: doc async for doc in cursor}

    async def update_hospital(
        self, hospital_id: str, version: int, update: dict[str, Any]
    ) -> Document | None:
        """Apply `update` if the hospital is still at `version`; the new document, or None."""
        return await self.hospitals.find_one_and_update(
            {"_id": hospital_id, "version": version},
            update,
            projection={"outbox": 0},
            return_document=ReturnDocument.AFTER,
        )

    # departments

    async def insert_department(self, doc: Document) -> None:
        """Raises DuplicateKeyError for a taken id or a sibling with the same name."""
        await self.departments.insert_one(doc)

    async def department(self, department_id: str) -> Document | None:
        return await self.departments.find_one({"_id": department_id})

    async def departments_of(self, hospital_id: str) -> list[Document]:
        cursor = self.departments.find({"hospital_id": hospital_id}).sort(
            [("name", ASCENDING), ("_id", ASCENDING)]
        )
        return [doc async for doc in cursor]

    async def departments_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        cursor = self.departments.find({"_id": {"$in": sorted(set(ids))}})
        return {doc["_id"]: doc async for doc in cursor}

    # doctors

    async def insert_doctor(self, doc: Document) -> None:
        await self.doctors.insert_one(doc)

    async def doctor(self, doctor_id: str) -> Document | None:
        return await self.doctors.find_one({"_id": doctor_id}, projection={"outbox": 0})

    async def find_doctors(
        self,
        *,
        hospital_id: str | None = None,
        department_ids: list[str] | None = None,
        published: bool | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> list[Document]:
        """By name; `skip`/`limit` select a page (`limit` 0: all)."""
        query: dict[str, Any] = {}
        if hospital_id is not None:
            query["hospital_id"] = hospital_id
        if department_ids is not None:
            query["department_id"] = {"$in": department_ids}
        if published is not None:
            query["published"] = published
        cursor = self.doctors.find(query, projection={"outbox": 0}).sort(
            [("name", ASCENDING), ("_id", ASCENDING)]
        )
        if skip:
            cursor = cursor.skip(skip)
        if limit:
            cursor = cursor.limit(limit)
        return [doc async for doc in cursor]

    async def doctors_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        cursor = self.doctors.find({"_id": {"$in": sorted(set(ids))}}, projection={"outbox": 0})
        return {doc["_id"]: doc async for doc in cursor}

    async def update_doctor(
        self, hospital_id: str, doctor_id: str, version: int, update: dict[str, Any]
    ) -> Document | None:
        """Apply `update` if the doctor (of this hospital) is still at `version`."""
        return await self.doctors.find_one_and_update(
            {"_id": doctor_id, "hospital_id": hospital_id, "version": version},
            update,
            projection={"outbox": 0},
            return_document=ReturnDocument.AFTER,
        )

    # schedules

    async def insert_schedule(self, doc: Document) -> None:
        """Raises DuplicateKeyError for a taken id or a second (doctor, date, session)."""
        await self.schedules.insert_one(doc)

    async def schedule(self, schedule_id: str) -> Document | None:
        return await self.schedules.find_one({"_id": schedule_id}, projection={"outbox": 0})

    async def schedule_with_slot(self, slot_id: str) -> Document | None:
        return await self.schedules.find_one(
            {"slots": {"$elemMatch": {"id": slot_id}}}, projection={"outbox": 0}
        )

    async def find_schedules(
        self,
        *,
        date_from: dt.date,
        date_to: dt.date,
        hospital_id: str | None = None,
        doctor_ids: list[str] | None = None,
    ) -> list[Document]:
        """Schedules dated within [date_from, date_to], by date."""
        query: dict[str, Any] = {
            "date": {"$gte": date_from.isoformat(), "$lte": date_to.isoformat()}
        }
        if hospital_id is not None:
            query["hospital_id"] = hospital_id
        if doctor_ids is not None:
            query["doctor_id"] = {"$in": doctor_ids}
        cursor = self.schedules.find(query, projection={"outbox": 0}).sort(
            [("date", ASCENDING), ("doctor_id", ASCENDING), ("_id", ASCENDING)]
        )
        return [doc async for doc in cursor]

    async def existing_schedule_ids(self, ids: Iterable[str]) -> set[str]:
        cursor = self.schedules.find({"_id": {"$in": sorted(set(ids))}}, projection={"_id": 1})
        return {doc["_id"] async for doc in cursor}
