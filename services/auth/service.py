"""Who may log in and what they get: WeChat and staff logins, token rotation, accounts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.auth.repository import (
    LoginFailureRepository,
    PatientRepository,
    RefreshTokenRepository,
    UserRepository,
)
from services.auth.tokens import Clock, TokenIssuer, hash_refresh_token
from shared.context import Caller
from shared.contracts.auth import (
    AccountDeleted,
    Consent,
    ConsentGiven,
    Me,
    SigningKeys,
    TokenPair,
    UserRef,
)
from shared.errors import (
    Forbidden,
    InvalidState,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    WechatError,
)
from shared.storage.mongo import Document
from shared.wechat.client import Code2Session
from shared.wechat.errors import WechatApiError, WechatUnavailable

log = logging.getLogger("guahao.auth")

LOGIN_CODE_REJECTED = frozenset({40029, 40163})
WECHAT_RATE_LIMITED = 45011
MAX_LOGIN_FAILURES = 5
# argon2 takes ~50 ms of a core and 64 MiB per check: bound how many run at once and how
# many may wait, so a flood of logins cannot starve the process or exhaust its memory
MAX_CONCURRENT_PASSWORD_CHECKS = 2
MAX_WAITING_PASSWORD_CHECKS = 32
LOGIN_FAILURE_WINDOW = dt.timedelta(minutes=15)
WRONG_CREDENTIALS = "用户名或密码错误 / wrong username or password"
SESSION_ENDED = "登录已失效，请重新登录 / session expired, log in again"
ACCOUNT_DISABLED = "账号已停用 / account disabled"


def login_throttle_key(username: str, client_ip: str | None) -> str:
    """Failed staff logins are counted per username (case-insensitive) and address."""
    return f"{username}|{client_ip or '-'}"


class SessionExchanger(Protocol):
    async def code2session(self, js_code: str) -> Code2Session: ...


class ActiveAppointments(Protocol):
    async def active_count(self, caller: Caller) -> tuple[int, int]:
        """(active appointments today or later, waiting 候补 entries)."""
        ...


class ProfileForgetting(Protocol):
    async def forget_patient(self, user_id: str, patient_id: str, id_hash: str) -> None: ...


def require_caller(caller: Caller | None) -> Caller:
    if caller is None:
        raise Unauthenticated()
    return caller


class AuthService:
    """Logins, token rotation and staff accounts; storage and WeChat come in as collaborators.

    Managing staff accounts (create, disable, reset, roles) lives in `services.auth.staff`.
    """

    def __init__(
        self,
        users: UserRepository,
        tokens: TokenIssuer,
        refresh_tokens: RefreshTokenRepository,
        wechat: SessionExchanger,
        passwords: PasswordHasher,
        clock: Clock,
        *,
        login_failures: LoginFailureRepository,
        patients: PatientRepository | None = None,
        appointments: ActiveAppointments | None = None,
        booking: ProfileForgetting | None = None,
    ) -> None:
        self.users = users
        self.tokens = tokens
        self.refresh_tokens = refresh_tokens
        self.wechat = wechat
        self.passwords = passwords
        self.clock = clock
        self.login_failures = login_failures
        self.patients = patients
        self.appointments = appointments
        self.booking = booking
        # verified against when the username is unknown, so that costs the same as a miss
        self._dummy_hash = passwords.hash(uuid.uuid4().hex)
        self._password_checks = asyncio.Semaphore(MAX_CONCURRENT_PASSWORD_CHECKS)
        self._password_waiting = 0

    async def wechat_login(self, code: str) -> TokenPair:
        """Exchange a `wx.login` code; the first login creates the patient user."""
        try:
            session = await self.wechat.code2session(code)
        except WechatApiError as exc:
            log.info("wechat login refused", extra={"wechat_errcode": exc.errcode})
            if exc.errcode in LOGIN_CODE_REJECTED:
                raise Unauthenticated(
                    "登录凭证无效或已使用 / login code invalid or used", wechat_errcode=exc.errcode
                ) from None
            if exc.errcode == WECHAT_RATE_LIMITED:
                raise RateLimited(retry_after=60) from None
            raise WechatError(errcode=exc.errcode) from None
        except WechatUnavailable:
            log.warning("wechat unreachable for login")
            raise ServiceUnavailable(upstream="wechat") from None
        # the session_key is deliberately dropped: nothing here decrypts WeChat user data
        user = await self.users.upsert_patient(session.openid, session.unionid, self.clock())
        log.info("patient logged in", extra={"user_id": user["_id"]})
        return await self._issue(user, family=uuid.uuid4().hex)

    async def staff_login(
        self, username: str, password: str, client_ip: str | None = None
    ) -> TokenPair:
        """Password login of staff; unknown user and wrong password look the same.

        Attempts are counted per username and client address, and counted before the
        password is checked (one atomic increment), so concurrent guesses cannot all slip
        past the check, and nobody at another address can lock an account out. A success
        clears that address's count.
        """
        now = self.clock()
        throttle = login_throttle_key(username, client_ip)
        attempts = await self.login_failures.record(throttle, now, LOGIN_FAILURE_WINDOW)
        if attempts["failures"] > MAX_LOGIN_FAILURES:
            window_left = (attempts["window_ends_at"] - now).total_seconds()
            raise RateLimited(retry_after=max(1, math.ceil(window_left)))
        user = await self.users.by_username(username)
        stored: str | None = user.get("password_hash") if user else None
        matches = await self._verify(stored or self._dummy_hash, password)
        if user is None or stored is None or not matches:
            log.info("staff login failed", extra={"user_id": user["_id"] if user else None})
            raise Unauthenticated(WRONG_CREDENTIALS)
        await self.login_failures.clear(throttle)
        if self.passwords.check_needs_rehash(stored):
            await self.users.set_password_hash(user["_id"], await self._hash(password))
        log.info("staff logged in", extra={"user_id": user["_id"], "role": user["role"]})
        return await self._issue(user, family=uuid.uuid4().hex)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the presented token dies, a new one of the same family is issued.

        A token presented twice means it leaked (or a client raced itself): the whole
        family is revoked, so the thief's and the owner's sessions both end.
        """
        now = self.clock()
        token_hash = hash_refresh_token(refresh_token)
        record = await self.refresh_tokens.consume(token_hash, now)
        if record is None:
            known = await self.refresh_tokens.get(token_hash)
            if known is not None and ("used_at" in known or "revoked_at" in known):
                revoked = await self.refresh_tokens.revoke_family(known["family"], now)
                log.warning(
                    "refresh token reused; family revoked",
                    extra={"user_id": known["user_id"], "revoked": revoked},
                )
            raise Unauthenticated(SESSION_ENDED)
        user = await self.users.get(record["user_id"])
        if user is None:
            await self.refresh_tokens.revoke_family(record["family"], now)
            raise Unauthenticated()
        if record.get("token_version", 0) != user.get("token_version", 0):
            # issued before the account's sessions were revoked (a refresh racing the
            # revocation can insert a token after the revoke swept the others)
            await self.refresh_tokens.revoke_family(record["family"], now)
            raise Unauthenticated(SESSION_ENDED)
        pair = await self._issue(user, family=record["family"])
        # a reuse detected between our consume and our insert revoked the family before
        # the new token existed; catch that here rather than hand out a live token
        if await self.refresh_tokens.family_revoked(record["family"]):
            await self.refresh_tokens.revoke_family(record["family"], now)
            raise Unauthenticated(SESSION_ENDED)
        return pair

    async def logout(self, caller: Caller | None, refresh_token: str | None) -> None:
        """End the session of `refresh_token` (its family); without one, every session."""
        caller = require_caller(caller)
        now = self.clock()
        if refresh_token is None:
            await self.refresh_tokens.revoke_user(caller.user_id, now)
        else:
            known = await self.refresh_tokens.get(hash_refresh_token(refresh_token))
            if known is not None and known["user_id"] == caller.user_id:
                await self.refresh_tokens.revoke_family(known["family"], now)
        log.info("logged out", extra={"user_id": caller.user_id})

    async def me(self, caller: Caller | None) -> Me:
        caller = require_caller(caller)
        user = await self.users.get(caller.user_id)
        if user is None:
            raise Unauthenticated()
        return Me(
            id=user["_id"],
            role=user["role"],
            hospital_id=user.get("hospital_id"),
            consents=_consents(user),
        )

    async def record_consent(self, caller: Caller | None, params: ConsentGiven) -> Me:
        """Record that the user agreed to a document version (PIPL: provable consent)."""
        caller = require_caller(caller)
        user = await self.users.record_consent(
            caller.user_id, params.kind, params.version, self.clock()
        )
        if user is None:
            raise Unauthenticated()
        log.info(
            "consent recorded",
            extra={"user_id": caller.user_id, "kind": params.kind, "version": params.version},
        )
        return Me(
            id=user["_id"],
            role=user["role"],
            hospital_id=user.get("hospital_id"),
            consents=_consents(user),
        )

    async def delete_account(self, caller: Caller | None) -> AccountDeleted:
        """A patient deletes their account: refused (409 INVALID_STATE) while they hold active
        appointments today or later or waiting 候补 entries (cancel them first, so the hospital
        is told and the number returns to the pool, and no promotion books for a deleted
        account); otherwise the patient profiles, sessions and the user
        document go. Appointment history stays with booking and the hospital (medical
        records), keyed by an id that no longer resolves to a person here."""
        caller = require_caller(caller)
        if caller.role != "patient":
            raise Forbidden()
        if self.appointments is not None:
            active, waiting = await self.appointments.active_count(caller)
            if active or waiting:
                raise InvalidState(
                    "还有待就诊的预约或候补，请先取消 / cancel your active "
                    "appointments and waitlist entries first",
                    active=active,
                    waiting=waiting,
                )
        if self.patients is not None and self.booking is not None:
            # as for a single profile: booking refuses them before they go
            for profile in await self.patients.list_for_user(caller.user_id):
                await self.booking.forget_patient(
                    caller.user_id, profile["_id"], profile["id_hash"]
                )
        removed = await self.patients.delete_all(caller.user_id) if self.patients else 0
        await self.refresh_tokens.revoke_user(caller.user_id, self.clock())
        await self.users.delete(caller.user_id)
        log.warning(
            "account deleted", extra={"user_id": caller.user_id, "patients_deleted": removed}
        )
        return AccountDeleted(deleted=True, patients_deleted=removed)

    def signing_keys(self) -> SigningKeys:
        return self.tokens.signing_keys()

    async def bootstrap_admin(self, username: str, password: str) -> bool:
        """Create the platform admin unless it exists; True when this call created it.

        Safe when several replicas start at once: the unique username decides.
        """
        if await self.users.by_username(username) is not None:
            return False
        user = await self.users.insert_staff(
            username, await self._hash(password), "platform_admin", self.clock()
        )
        if user is not None:
            log.warning("platform admin created", extra={"user_id": user["_id"]})
        return user is not None

    async def new_session(self, user: Document) -> TokenPair:
        """A fresh session (new refresh family) of `user`, e.g. after a password change."""
        return await self._issue(user, family=uuid.uuid4().hex)

    async def _issue(self, user: Document, *, family: str) -> TokenPair:
        if user.get("disabled"):
            # after the password check, so this tells nothing to someone without it
            log.info("disabled account refused", extra={"user_id": user["_id"]})
            raise Unauthenticated(ACCOUNT_DISABLED)
        role, hospital_id = user["role"], user.get("hospital_id")
        must_change = bool(user.get("must_change_password"))
        version = int(user.get("token_version", 0))
        refresh, refresh_hash, expires_at = self.tokens.new_refresh_token(family)
        await self.refresh_tokens.insert(
            refresh_hash,
            user["_id"],
            family,
            expires_at,
            self.clock(),
            token_version=version,
        )
        return TokenPair(
            access_token=self.tokens.access_token(
                user["_id"],
                role,
                hospital_id,
                token_version=version if role != "patient" else None,
                must_change_password=must_change,
            ),
            refresh_token=refresh,
            expires_in=self.tokens.access_ttl_seconds,
            user=UserRef(id=user["_id"], role=role, hospital_id=hospital_id),
            must_change_password=must_change,
        )

    async def _hash(self, password: str) -> str:
        async with self._password_slot():
            return await asyncio.to_thread(self.passwords.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._password_slot():
            try:
                return await asyncio.to_thread(self.passwords.verify, password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

    @contextlib.asynccontextmanager
    async def _password_slot(self) -> AsyncIterator[None]:
        """One of MAX_CONCURRENT_PASSWORD_CHECKS argon2 slots; 429 when too many wait."""
        if self._password_waiting >= MAX_WAITING_PASSWORD_CHECKS:
            raise RateLimited(retry_after=1)
        self._password_waiting += 1
        try:
            await self._password_checks.acquire()
        finally:
            self._password_waiting -= 1
        try:
            yield
        finally:
            self._password_checks.release()


def _consents(user: Document) -> list[Consent]:
    out = []
    for kind, entry in sorted((user.get("consents") or {}).items()):
        at = entry.get("at")
        at_text = at.isoformat() if isinstance(at, dt.datetime) else str(at)
        out.append(Consent(kind=kind, version=str(entry.get("version")), at=at_text))
    return out
