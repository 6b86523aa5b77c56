"""MongoDB access of the auth service (database `guahao_auth`).

Every invariant rests on a single-document atomic write or a unique index, never on a
transaction. No field is ever stored as an explicit null: absent means unset.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.ids import new_id
from shared.storage.mongo import Document

REFRESH_REUSE_MEMORY = dt.timedelta(days=7)


def username_key(username: str) -> str:
    """Usernames are unique and matched case-insensitively."""
    return username.strip().lower()


class UserRepository:
    """`users`: patients (by WeChat openid) and staff (by username)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db["users"]

    async def ensure_indexes(self) -> None:
        # Partial: a staff account has no openid and a patient no username.
        await self.collection.create_indexes(
            [
                IndexModel(
                    "openid",
                    name="openid_unique",
                    unique=True,
                    partialFilterExpression={"openid": {"$exists": True}},
                ),
                IndexModel(
                    "username_key",
                    name="username_unique",
                    unique=True,
                    partialFilterExpression={"username_key": {"$exists": True}},
                ),
                IndexModel("hospital_id", name="hospital_id"),
                IndexModel("sessions_revoked_at", name="sessions_revoked_at"),
            ]
        )

    async def upsert_patient(self, openid: str, unionid: str | None, now: dt.datetime) -> Document:
        """The patient user of `openid`, created on first login."""
        update: dict[str, Any] = {
            "$setOnInsert": {"_id": new_id("u"), "role": "patient", "created_at": now},
            "$set": {"last_login_at": now} | ({"unionid": unionid} if unionid else {}),
        }
        try:
            await self.collection.update_one({"openid": openid}, update, upsert=True)
        except DuplicateKeyError:
            pass  # a concurrent first login of the same user inserted it
        doc = await self.collection.find_one({"openid": openid})
        assert doc is not None
        return doc

    async def get(self, user_id: str) -> Document | None:
        return await self.collection.find_one({"_id": user_id})

    async def by_username(self, username: str) -> Document | None:
        return await self.collection.find_one({"username_key": username_key(username)})

    async def insert_staff(
        self,
        username: str,
        password_hash: str,
        role: str,
        now: dt.datetime,
        hospital_id: str | None = None,
        *,
        extra: Document | None = None,
    ) -> Document | None:
        """Create a staff account; None when the username is taken.

        `extra`: more fields written with it (e.g. the outbox of its audit entry).
        """
        doc: Document = {
            "_id": new_id("s"),
            "role": role,
            "username": username,
            "username_key": username_key(username),
            "password_hash": password_hash,
            "created_at": now,
            **(extra or {}),
        }
        if hospital_id is not None:
            doc["hospital_id"] = hospital_id
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return None
        return doc

    async def record_consent(
        self, user_id: str, kind: str, version: str, now: dt.datetime
    ) -> Document | None:
        """Keep the latest consent per kind (version and time) on the user document."""
        return await self.collection.find_one_and_update(
            {"_id": user_id},
            {"$set": {f"consents.{kind}": {"version": version, "at": now}}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete(self, user_id: str) -> bool:
        result = await self.collection.delete_one({"_id": user_id})
        return result.deleted_count == 1

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.collection.update_one(
            {"_id": user_id}, {"$set": {"password_hash": password_hash}}
        )

    async def staff_of(self, hospital_id: str) -> list[Document]:
        """A hospital's staff accounts, oldest first."""
        cursor = self.collection.find({"hospital_id": hospital_id}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return await cursor.to_list()

    async def update_staff(
        self, user_id: str, hospital_id: str, update: dict[str, Any]
    ) -> Document | None:
        """Apply `update` to a staff account of `hospital_id`; the account after it."""
        return await self.collection.find_one_and_update(
            {"_id": user_id, "hospital_id": hospital_id},
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def update_user(
        self, user_id: str, update: dict[str, Any], guard: Document | None = None
    ) -> Document | None:
        """Apply `update` to a user (only if it still matches `guard`); the user after it."""
        return await self.collection.find_one_and_update(
            {"_id": user_id, **(guard or {})},
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def revoked_since(self, since: dt.datetime) -> list[Document]:
        """Accounts whose sessions were revoked at or after `since`."""
        cursor = self.collection.find(
            {"sessions_revoked_at": {"$gte": since}},
            projection={"_id": 1, "token_version": 1, "sessions_revoked_at": 1},
        )
        return await cursor.to_list()

    async def set_default_patient(self, user_id: str, patient_id: str) -> None:
        await self.collection.update_one(
            {"_id": user_id}, {"$set": {"default_patient_id": patient_id}}
        )

    async def clear_default_patient(self, user_id: str, patient_id: str) -> None:
        """Forget the default only if it is still `patient_id` (a newer choice stays)."""
        await self.collection.update_one(
            {"_id": user_id, "default_patient_id": patient_id},
            {"$unset": {"default_patient_id": ""}},
        )


class RefreshTokenRepository:
    """`refresh_tokens`: one document per issued token, keyed by its SHA-256 hash.

    Kept a week past expiry so that replaying an old used token still revokes its family.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db["refresh_tokens"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(
            [
                IndexModel("family", name="family"),
                IndexModel("user_id", name="user_id"),
                IndexModel(
                    "expires_at",
                    name="expires_ttl",
                    expireAfterSeconds=int(REFRESH_REUSE_MEMORY.total_seconds()),
                ),
            ]
        )

    async def insert(
        self,
        token_hash: str,
        user_id: str,
        family: str,
        expires_at: dt.datetime,
        now: dt.datetime,
        *,
        token_version: int = 0,
    ) -> None:
        """`token_version`: the account's when issued; a refresh under a newer one fails."""
        doc: Document = {
            "_id": token_hash,
            "user_id": user_id,
            "family": family,
            "expires_at": expires_at,
            "created_at": now,
        }
        if token_version:
            doc["token_version"] = token_version
        await self.collection.insert_one(doc)

    async def consume(self, token_hash: str, now: dt.datetime) -> Document | None:
        """Mark a live token used, atomically: of concurrent presenters only one wins."""
        return await self.collection.find_one_and_update(
            {
                "_id": token_hash,
                "used_at": {"$exists": False},
                "revoked_at": {"$exists": False},
                "expires_at": {"$gt": now},
            },
            {"$set": {"used_at": now}},
        )

    async def get(self, token_hash: str) -> Document | None:
        return await self.collection.find_one({"_id": token_hash})

    async def revoke_family(self, family: str, now: dt.datetime) -> int:
        result = await self.collection.update_many(
            {"family": family, "revoked_at": {"$exists": False}}, {"$set": {"revoked_at": now}}
        )
        return result.modified_count

    async def family_revoked(self, family: str) -> bool:
        return (
            await self.collection.find_one(
                {"family": family, "revoked_at": {"$exists": True}}, {"_id": 1}
            )
            is not None
        )

    async def revoke_user(self, user_id: str, now: dt.datetime) -> int:
        result = await self.collection.update_many(
            {"user_id": user_id, "revoked_at": {"$exists": False}}, {"$set": {"revoked_at": now}}
        )
        return result.modified_count


class AuditRepository:
    """`audit`: what staff did, one entry per event that caused it (keyed by event id, so
    a redelivered event or a replayed outbox records nothing twice)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db["audit"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(
            [
                IndexModel([("hospital_id", ASCENDING), ("at", ASCENDING)], name="hospital_at"),
            ]
        )

    async def record(self, entry: Document) -> bool:
        """Insert once; False when this entry (event id) is already recorded."""
        try:
            await self.collection.insert_one(entry)
        except DuplicateKeyError:
            return False
        return True

    async def between(
        self, hospital_id: str, start: dt.datetime, end: dt.datetime, limit: int
    ) -> list[Document]:
        """Entries of `hospital_id` with start <= at < end, oldest first."""
        cursor = (
            self.collection.find(
                {"hospital_id": hospital_id, "at": {"$gte": start, "$lt": end}},
            )
            .sort([("at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return await cursor.to_list()


class LoginFailureRepository:
    """`login_failures`: staff login attempts in a fixed window, per key (the service uses
    username + client address)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db["login_failures"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(
            [IndexModel("window_ends_at", name="window_ttl", expireAfterSeconds=0)]
        )

    async def get(self, username: str) -> Document | None:
        return await self.collection.find_one({"_id": username_key(username)})

    async def record(self, username: str, now: dt.datetime, window: dt.timedelta) -> Document:
        """Count one failure in the current window (a new one once the old has ended)."""
        key = username_key(username)
        for _ in range(3):
            doc = await self.collection.find_one_and_update(
                {"_id": key, "window_ends_at": {"$gt": now}},
                {"$inc": {"failures": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return doc
            fresh = {"failures": 1, "window_ends_at": now + window}
            result = await self.collection.update_one(
                {"_id": key, "window_ends_at": {"$lte": now}}, {"$set": fresh}
            )
            if result.matched_count:
                return {"_id": key, **fresh}
            try:
                await self.collection.insert_one({"_id": key, **fresh})
                return {"_id": key, **fresh}
            except DuplicateKeyError:
                continue  # a concurrent failure opened the window first: count into it
        raise RuntimeError("login failure could not be recorded")

    async def clear(self, username: str) -> None:
        await self.collection.delete_one({"_id": username_key(username)})


class PatientRepository:
    """`patients`: a user's profiles, each in one of `limit` numbered slots.

    The unique (user_id, slot) index caps a user's profiles without a transaction; the
    unique (user_id, id_hash) index keeps one profile per person per user.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db["patients"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(
            [
                IndexModel(
                    [("user_id", ASCENDING), ("slot", ASCENDING)], name="user_slot", unique=True
                ),
                IndexModel(
                    [("user_id", ASCENDING), ("id_hash", ASCENDING)],
                    name="user_person",
                    unique=True,
                ),
                IndexModel("id_hash", name="id_hash"),
            ]
        )

    async def list_for_user(self, user_id: str) -> list[Document]:
        """Oldest first."""
        cursor = self.collection.find({"user_id": user_id}).sort(
            [("created_at", ASCENDING), ("slot", ASCENDING)]
        )
        return await cursor.to_list()

    async def get(self, user_id: str, patient_id: str) -> Document | None:
        return await self.collection.find_one({"_id": patient_id, "user_id": user_id})

    async def insert(self, doc: Document) -> bool:
        """Insert; False when the slot or the person is already taken for this user."""
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def has_person(self, user_id: str, id_hash: str) -> bool:
        return (
            await self.collection.find_one({"user_id": user_id, "id_hash": id_hash}, {"_id": 1})
            is not None
        )

    async def update(self, user_id: str, patient_id: str, fields: Document) -> Document | None:
        return await self.collection.find_one_and_update(
            {"_id": patient_id, "user_id": user_id},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )

    async def delete(self, user_id: str, patient_id: str) -> bool:
        result = await self.collection.delete_one({"_id": patient_id, "user_id": user_id})
        return result.deleted_count == 1

    async def delete_all(self, user_id: str) -> int:
        result = await self.collection.delete_many({"user_id": user_id})
        return int(result.deleted_count)
