"""Staff accounts of a hospital: create, list, disable, change role, reset and change
passwords, and the revocations the gateway applies.

Revocation: every staff account has a `token_version` (absent = 0) that its access tokens
carry as the `tv` claim. Disabling, a role change, a password reset or change increments
it and stamps `sessions_revoked_at`, in the same single-document write as the change (with
the action's audit entry in the document's outbox); the account's refresh tokens are then
revoked. Gateways poll `revocations` and refuse tokens whose `tv` is lower (README).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.asynchronous.collection import AsyncCollection

from services.auth.repository import RefreshTokenRepository, UserRepository
from services.auth.service import AuthService
from shared.access import check_hospital_role
from shared.context import Caller
from shared.contracts.auth import (
    CreateStaffParams,
    PasswordChange,
    PasswordResetParams,
    PasswordResetResult,
    Revocation,
    RevocationList,
    StaffAccount,
    StaffList,
    StaffPatchParams,
    TokenPair,
)
from shared.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from shared.ids import new_id
from shared.messaging.events import EventEnvelope, new_event
from shared.messaging.outbox import outbox_fields, with_outbox
from shared.storage.mongo import Document

log = logging.getLogger("guahao.auth.staff")

USERNAME_TAKEN = "用户名已存在 / username taken"
NO_SUCH_STAFF = "账号不存在 / no such staff account"
NOT_YOURSELF = "不能对自己的账号这样操作 / not on your own account"


class HospitalDirectory(Protocol):
    async def exists(self, hospital_id: str) -> bool: ...


class AuditOutbox(Protocol):
    """Records a document's pending audit entries right after the write that carried them."""

    async def flush_quietly(self, collection: AsyncCollection[Document], doc_id: Any) -> None: ...


def account_view(doc: Document) -> StaffAccount:
    return StaffAccount(
        id=doc["_id"],
        username=doc["username"],
        hospital_id=doc["hospital_id"],
        role=doc["role"],
        disabled=bool(doc.get("disabled")),
        must_change_password=bool(doc.get("must_change_password")),
    )


def temporary_password() -> str:
    """A one-time password for a reset: 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


class StaffService:
    """Staff accounts of one hospital, managed by its admins (or the platform admin)."""

    def __init__(
        self,
        users: UserRepository,
        refresh_tokens: RefreshTokenRepository,
        sessions: AuthService,
        passwords: PasswordHasher,
        clock: Callable[[], dt.datetime],
        *,
        audit_outbox: AuditOutbox,
        hospitals: HospitalDirectory | None = None,
    ) -> None:
        self.users = users
        self.refresh_tokens = refresh_tokens
        self.sessions = sessions
        self.passwords = passwords
        self.clock = clock
        self.audit_outbox = audit_outbox
        self.hospitals = hospitals

    async def create_staff(self, caller: Caller | None, params: CreateStaffParams) -> StaffAccount:
        """A staff account of a hospital: by the platform admin or that hospital's admins."""
        caller = check_hospital_role(caller, params.hospital_id)
        if self.hospitals is not None and not await self.hospitals.exists(params.hospital_id):
            raise NotFound("医院不存在 / hospital not found", hospital_id=params.hospital_id)
        if await self.users.by_username(params.username) is not None:
            raise Conflict(USERNAME_TAKEN, fields={"username": "已存在 / taken"})
        account = {"_id": new_id("s"), "username": params.username}
        event = self._event(
            caller, "staff.created", params.hospital_id, {"role": params.role}, account
        )
        user = await self.users.insert_staff(
            params.username,
            await self._hash(params.password),
            params.role,
            self.clock(),
            hospital_id=params.hospital_id,
            extra={"_id": account["_id"]} | outbox_fields(event),
        )
        if user is None:
            raise Conflict(USERNAME_TAKEN, fields={"username": "已存在 / taken"})
        await self.audit_outbox.flush_quietly(self.users.collection, user["_id"])
        log.info(
            "staff account created",
            extra={"user_id": user["_id"], "hospital_id": params.hospital_id, "role": params.role},
        )
        return account_view(user)

    async def list_staff(self, caller: Caller | None, hospital_id: str) -> StaffList:
        check_hospital_role(caller, hospital_id)
        return StaffList(items=[account_view(d) for d in await self.users.staff_of(hospital_id)])

    async def update_staff(self, caller: Caller | None, params: StaffPatchParams) -> StaffAccount:
        """Disable, enable or change the role of an account; disabling and a role change
        end its sessions at once."""
        caller = check_hospital_role(caller, params.hospital_id)
        doc = await self._account(params.hospital_id, params.staff_id)
        sets: dict[str, Any] = {}
        unsets: dict[str, Any] = {}
        events: list[EventEnvelope] = []
        if params.disabled is not None and params.disabled != bool(doc.get("disabled")):
            if params.disabled:
                sets["disabled"] = True
            else:
                unsets["disabled"] = ""
            events.append(
                self._event(
                    caller,
                    "staff.disabled" if params.disabled else "staff.enabled",
                    params.hospital_id,
                    {},
                    doc,
                )
            )
        if params.role is not None and params.role != doc["role"]:
            sets["role"] = params.role
            events.append(
                self._event(
                    caller,
                    "staff.role_changed",
                    params.hospital_id,
                    {"role": params.role, "from_role": doc["role"]},
                    doc,
                )
            )
        if not events:
            return account_view(doc)
        if doc["_id"] == caller.user_id:
            raise Conflict(NOT_YOURSELF)
        revoke = bool(params.disabled) or "role" in sets
        update: dict[str, Any] = {"$set": sets} if sets else {}
        if unsets:
            update["$unset"] = unsets
        updated = await self._write(doc, update, events, revoke=revoke)
        log.info(
            "staff account changed",
            extra={"user_id": doc["_id"], "changes": [e.type for e in events], "revoked": revoke},
        )
        return account_view(updated)

    async def reset_password(
        self, caller: Caller | None, params: PasswordResetParams
    ) -> PasswordResetResult:
        """Set a new password (the given one, or a generated one shown once); the account
        must change it at its next login, and its sessions end at once."""
        caller = check_hospital_role(caller, params.hospital_id)
        doc = await self._account(params.hospital_id, params.staff_id)
        if doc["_id"] == caller.user_id:
            raise Conflict(NOT_YOURSELF + " (POST /auth/password)")
        generated = params.password is None
        password = temporary_password() if params.password is None else params.password
        event = self._event(
            caller, "staff.password_reset", params.hospital_id, {"generated": generated}, doc
        )
        update = {
            "$set": {"password_hash": await self._hash(password), "must_change_password": True}
        }
        updated = await self._write(doc, update, [event], revoke=True)
        log.info("staff password reset", extra={"user_id": doc["_id"], "generated": generated})
        return PasswordResetResult(
            account=account_view(updated), temporary_password=password if generated else None
        )

    async def change_password(self, caller: Caller | None, params: PasswordChange) -> TokenPair:
        """One's own password: every other session ends; the reply is a new session."""
        if caller is None:
            raise Unauthenticated()
        user = await self.users.get(caller.user_id)
        if user is None or user.get("disabled"):
            raise Unauthenticated()
        stored = user.get("password_hash")
        if stored is None:
            raise Forbidden()  # patients log in with WeChat and have no password
        if not await self._verify(stored, params.old):
            raise ValidationFailed.field("old", "当前密码错误 / wrong current password")
        events = []
        if user.get("hospital_id"):
            events.append(
                self._event(caller, "staff.password_changed", user["hospital_id"], {}, user)
            )
        update: dict[str, Any] = {
            "$set": {"password_hash": await self._hash(params.new)},
            "$unset": {"must_change_password": ""},
        }
        updated = await self._write(
            user, update, events, revoke=True, guard={"password_hash": stored}
        )
        log.info("password changed", extra={"user_id": user["_id"]})
        return await self.sessions.new_session(updated)

    async def revocations(self, caller: Caller | None, since: float) -> RevocationList:
        """Accounts revoked at or after `since` (epoch seconds), for the gateways.

        Internal callers (no caller identity) and the platform admin only.
        """
        if caller is not None and not caller.is_platform_admin:
            raise Forbidden()
        now = self.clock()
        docs = await self.users.revoked_since(dt.datetime.fromtimestamp(since, dt.UTC))
        items = []
        for doc in docs:
            at: dt.datetime = doc["sessions_revoked_at"]
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.UTC)
            items.append(
                Revocation(
                    user_id=doc["_id"],
                    token_version=int(doc.get("token_version", 0)),
                    at=at.timestamp(),
                )
            )
        return RevocationList(items=items, now=now.timestamp())

    async def _account(self, hospital_id: str, staff_id: str) -> Document:
        doc = await self.users.get(staff_id)
        if doc is None or doc.get("hospital_id") != hospital_id:
            raise NotFound(NO_SUCH_STAFF)
        return doc

    async def _write(
        self,
        doc: Document,
        update: dict[str, Any],
        events: list[EventEnvelope],
        *,
        revoke: bool,
        guard: Document | None = None,
    ) -> Document:
        """One write: the change, the revocation (token version) and the audit entries."""
        now = self.clock()
        if revoke:
            update.setdefault("$set", {})["sessions_revoked_at"] = now
            update["$inc"] = {"token_version": 1}
        if events:
            update = with_outbox(update, *events)
        updated = await self.users.update_user(doc["_id"], update, guard)
        if updated is None:
            raise Conflict("账号正被同时修改，请重试 / concurrent change, try again")
        if revoke:
            await self.refresh_tokens.revoke_user(doc["_id"], now)
        if events:
            await self.audit_outbox.flush_quietly(self.users.collection, doc["_id"])
        return updated

    def _event(
        self,
        caller: Caller,
        type: str,
        hospital_id: str,
        data: dict[str, Any],
        account: Document | None = None,
    ) -> EventEnvelope:
        staff = {"id": account["_id"], "username": account["username"]} if account else {}
        return new_event(
            type,
            hospital_id,
            {"staff": staff | data} if account else data,
            at=self.clock(),
            actor=caller,
        )

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self.passwords.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self.passwords.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
