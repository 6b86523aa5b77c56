"""Wiring of the auth service: keys, repositories, WeChat client, services, RPC methods."""

from __future__ import annotations

import datetime as dt

import aiohttp
from argon2 import PasswordHasher

from services.auth.handlers import register
from services.auth.keys import dev_admin_password, load_pii_keys, load_signing_key
from services.auth.patients import PatientService
from services.auth.pii import PiiCipher
from services.auth.repository import (
    LoginFailureRepository,
    PatientRepository,
    RefreshTokenRepository,
    UserRepository,
)
from services.auth.service import AuthService
from services.auth.tokens import TokenIssuer
from shared.context import Caller
from shared.contracts.catalog import HospitalRef
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
        reply = await self.rpc.call("catalog", "hospital_exists",
                                    HospitalRef(hospital_id=hospital_id))
        return bool(reply["exists"])


async def wire(rt: ServiceRuntime) -> None:
    """Build the auth service on the runtime's connections and register its methods."""
    settings = rt.settings
    users, refresh_tokens = UserRepository(rt.db), RefreshTokenRepository(rt.db)
    login_failures, patients = LoginFailureRepository(rt.db), PatientRepository(rt.db)
    for repo in (users, refresh_tokens, login_failures, patients):
        await repo.ensure_indexes()

    http = aiohttp.ClientSession()
    rt.on_close(http.close)
    wechat = WechatClient(
        http, appid=settings.wechat_appid, secret=settings.wechat_secret,
        api_base=settings.wechat_api_base,
    )
    auth = AuthService(
        users, TokenIssuer(load_signing_key(settings), utcnow), refresh_tokens, wechat,
        PasswordHasher(), utcnow, login_failures=login_failures,
        hospitals=CatalogHospitals(rt.rpc_client), patients=patients,
        appointments=BookingAppointments(rt.rpc_client),
    )
    profiles = PatientService(patients, users, PiiCipher(load_pii_keys(settings)), utcnow)
    register(rt.rpc_server, auth, profiles)

    await auth.bootstrap_admin(
        settings.admin_username or DEV_ADMIN_USERNAME,
        settings.admin_password or dev_admin_password(settings),
    )
