"""Test kit of the auth service tests (no tests here): a fake clock, a stub WeChat and
builders that wire the services to a test database without a broker."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymongo.asynchronous.database import AsyncDatabase

from services.auth.audit import AuditTrail
from services.auth.keys import PiiKeys, SigningKeyMaterial
from services.auth.patients import PatientService
from services.auth.pii import PiiCipher
from services.auth.repository import (
    AuditRepository,
    LoginFailureRepository,
    PatientRepository,
    RefreshTokenRepository,
    UserRepository,
)
from services.auth.service import AuthService
from services.auth.staff import StaffService
from services.auth.tokens import TokenIssuer
from shared.context import Caller
from shared.idcard import check_character
from shared.messaging.outbox import OutboxRelay
from shared.storage.mongo import Document
from shared.wechat import Code2Session


class FakeClock:
    """Starts at the real now (JWT libraries check `exp` against the real clock)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class StubWechat:
    """code2session from a table: code → openid, or code → exception to raise."""

    codes: dict[str, str | Exception] = field(default_factory=dict)
    calls: int = 0

    async def code2session(self, js_code: str) -> Code2Session:
        self.calls += 1
        outcome = self.codes[js_code]
        if isinstance(outcome, Exception):
            raise outcome
        return Code2Session(openid=outcome, session_key=f"sk-{secrets.token_hex(8)}")


# argon2 at its cheapest: the tests exercise the logic, not the cost parameters
FAST_PASSWORDS = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class AuthKit:
    service: AuthService
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    signing_key: SigningKeyMaterial
    staff: StaffService
    audit: AuditTrail


async def build_auth(db: AsyncDatabase[Document], clock: FakeClock, wechat: StubWechat) -> AuthKit:
    users, refresh_tokens = UserRepository(db), RefreshTokenRepository(db)
    failures, audit_entries = LoginFailureRepository(db), AuditRepository(db)
    for repo in (users, refresh_tokens, failures, audit_entries):
        await repo.ensure_indexes()
    key = SigningKeyMaterial.from_private_key(Ed25519PrivateKey.generate())
    service = AuthService(
        users,
        TokenIssuer(key, clock),
        refresh_tokens,
        wechat,
        FAST_PASSWORDS,
        clock,
        login_failures=failures,
    )
    audit = AuditTrail(audit_entries, clock)
    relay = OutboxRelay(audit, [users.collection], lease=None)  # type: ignore[arg-type]
    staff = StaffService(users, refresh_tokens, service, FAST_PASSWORDS, clock, audit_outbox=relay)
    return AuthKit(service, users, refresh_tokens, key, staff, audit)


async def build_patients(db: AsyncDatabase[Document], clock: FakeClock) -> PatientService:
    users, patients = UserRepository(db), PatientRepository(db)
    for repo in (users, patients):
        await repo.ensure_indexes()
    cipher = PiiCipher(PiiKeys.from_bytes(secrets.token_bytes(64)))
    return PatientService(patients, users, cipher, clock)


async def new_patient(service: PatientService) -> Caller:
    """A patient user as a first WeChat login creates it, as the caller its token gives."""
    openid = f"openid-{secrets.token_hex(6)}"
    user = await service.users.upsert_patient(openid, None, service.clock())
    await service.users.record_consent(user["_id"], "patient_data", "2026-12", service.clock())
    return Caller(user_id=user["_id"], role="patient")


PLATFORM_ADMIN = Caller(user_id="s_platform", role="platform_admin")


def resident_id(birth: str = "19900307", sequence: str = "123", region: str = "110105") -> str:
    """A valid 18-character resident ID; the last sequence digit odd → male."""
    first17 = region + birth + sequence
    return first17 + check_character(first17)
