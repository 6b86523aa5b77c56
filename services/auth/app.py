"""Wiring of the auth service: keys, repositories, WeChat client, services, RPC methods."""

from __future__ import annotations

import datetime as dt

import aiohttp
from argon2 import PasswordHasher

from services.auth.audit import AUDITED_EVENTS, AuditTrail
from services.auth.handlers import register
from services.auth.keys import dev_admin_password, load_pii_keys, load_signing_key
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
from shared.contracts.booking import ForgetPatient
from shared.contracts.catalog import HospitalRef
from shared.messaging.outbox import OutboxRelay
from shared.messaging.rpc import RpcClient
from shared.runtime import ServiceRuntime
from shared.wechat import WechatClient

DEV_ADMIN_USERNAME = "admin"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BookingAppointments:
    """How many active appointments (today or later) and waiting 候补 entries a patient has,
    asked of booking on the patient's own behalf (before their account may be deleted)."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def active_count(self, caller: Caller) -> tuple[int, int]:
        reply = await self.rpc.call("booking", "count_active_appointments", None, caller=caller)
        return int(reply["active"]), int(reply.get("waiting", 0))


class CatalogHospitals:
    """Whether a hospital exists, asked of the catalog (staff accounts belong to one)."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def exists(self, hospital_id: str) -> bool:
        reply = await self.rpc.call(
            "catalog", "hospital_exists", HospitalRef(hospital_id=hospital_id)
        )
        return bool(reply["exists"])


class BookingPatients:
    """Tells booking a profile is going, before it goes (it must never book again)."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def forget_patient(self, user_id: str, patient_id: str, id_hash: str) -> None:
        await self.rpc.call(
            "booking",
            "forget_patient",
            ForgetPatient(user_id=user_id, patient_id=patient_id, id_hash=id_hash),
        )


async def wire(rt: ServiceRuntime) -> None:
    """Build the auth service on the runtime's connections and register its methods."""
    settings = rt.settings
    users, refresh_tokens = UserRepository(rt.db), RefreshTokenRepository(rt.db)
    login_failures, patients = LoginFailureRepository(rt.db), PatientRepository(rt.db)
    audit_entries = AuditRepository(rt.db)
    for repo in (users, refresh_tokens, login_failures, patients, audit_entries):
        await repo.ensure_indexes()

    audit = AuditTrail(audit_entries, utcnow)
    # staff actions of other services arrive as events naming their actor
    rt.consume("audit", AUDITED_EVENTS, audit.on_event)
    # auth's own staff-account actions: their audit entries ride in the changed user
    # document's outbox and are relayed into the log locally (never to the broker). Each
    # is flushed at once after its write; the relay only repairs a crash in between, so
    # it sweeps every 2 s rather than the services' 0.5 s.
    audit_relay = OutboxRelay(
        audit,
        [users.collection],
        rt.lease("auth.audit_outbox", dt.timedelta(seconds=10)),
        interval=2.0,
    )
    await audit_relay.ensure_indexes()
    rt.add_job("auth.audit_outbox", audit_relay.run)
    rt.on_close(lambda: audit_relay.sweep(everything=True))

    http = aiohttp.ClientSession()
    rt.on_close(http.close)
    wechat = WechatClient(
        http,
        appid=settings.wechat_appid,
        secret=settings.wechat_secret,
        api_base=settings.wechat_api_base,
    )
    passwords = PasswordHasher()
    auth = AuthService(
        users,
        TokenIssuer(load_signing_key(settings), utcnow),
        refresh_tokens,
        wechat,
        passwords,
        utcnow,
        login_failures=login_failures,
        patients=patients,
        appointments=BookingAppointments(rt.rpc_client),
        booking=BookingPatients(rt.rpc_client),
    )
    staff = StaffService(
        users,
        refresh_tokens,
        auth,
        passwords,
        utcnow,
        audit_outbox=audit_relay,
        hospitals=CatalogHospitals(rt.rpc_client),
    )
    profiles = PatientService(
        patients,
        users,
        PiiCipher(load_pii_keys(settings)),
        utcnow,
        events=rt.events,
        booking=BookingPatients(rt.rpc_client),
    )
    register(rt.rpc_server, auth, profiles, staff, audit)

    await auth.bootstrap_admin(
        settings.admin_username or DEV_ADMIN_USERNAME,
        settings.admin_password or dev_admin_password(settings),
    )
