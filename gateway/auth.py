"""Access-token verification: EdDSA JWTs checked against configured public keys.

The gateway never holds a private key. The keys it trusts come from configuration
(`GUAHAO_JWT_PUBLIC_KEYS`, several for rotation; `make run` derives them from the dev key),
never from whoever answers on the broker. `SigningKeyCache` (keys fetched from the
`auth.signing_keys` RPC, cached by `kid`, refetched at most once per `refetch_interval`)
remains for tests that inject a fake RPC client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import ValidationError

from shared.context import Caller
from shared.contracts.auth import SigningKeys
from shared.errors import (
    PasswordChangeRequired,
    ServiceUnavailable,
    TokenExpired,
    Unauthenticated,
)
from shared.jwt_keys import parse_public_keys

log = logging.getLogger("guahao.gateway.auth")

ISSUER = "guahao-auth"
AUDIENCE = "guahao"
ALGORITHMS = ["EdDSA"]
SESSION_REVOKED = "登录已失效，请重新登录 / session revoked, log in again"
ROLES = frozenset({"patient", "hospital_admin", "desk", "platform_admin"})
HOSPITAL_ROLES = frozenset({"hospital_admin", "desk"})


class RevokedSessions(Protocol):
    def is_revoked(self, user_id: str, token_version: int) -> bool: ...


class Rpc(Protocol):
    async def call(
        self,
        service: str,
        method: str,
        params: Any = None,
        *,
        caller: Caller | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - RpcClient.call's signature
    ) -> Any: ...


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated()
    return token


class KeySource(Protocol):
    async def get(self, kid: str) -> Ed25519PublicKey | None: ...


class ConfiguredSigningKeys:
    """The public keys of `GUAHAO_JWT_PUBLIC_KEYS`, by kid; fixed for the process."""

    def __init__(self, keys: dict[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    @classmethod
    def from_setting(cls, value: str) -> ConfiguredSigningKeys:
        keys = cls(parse_public_keys(value))
        log.info("signing keys configured", extra={"kids": sorted(keys._keys)})
        return keys

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)


class SigningKeyCache:
    """Public keys by kid, filled from `auth.signing_keys`."""

    def __init__(
        self,
        rpc: Rpc,
        *,
        service: str = "auth",
        refetch_interval: float = 10.0,
        retry_after_failure: float = 1.0,
        fetch_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rpc = rpc
        self._service = service
        self._refetch_interval = refetch_interval
        self._retry_after_failure = retry_after_failure
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._next_fetch_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        """The key for `kid`, refetching the set when it is unknown (rate-limited).

        Raises ServiceUnavailable only when auth cannot be reached and no key is cached.
        """
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._keys.get(kid)
            if key is None and self._clock() >= self._next_fetch_at:
                await self._fetch()
                key = self._keys.get(kid)
        if key is None and not self._keys:
            raise ServiceUnavailable(service=self._service, reason="no signing keys")
        return key

    async def _fetch(self) -> None:
        try:
            reply = await self._rpc.call(self._service, "signing_keys", timeout=self._fetch_timeout)
            published = SigningKeys.model_validate(reply)
        except (ServiceUnavailable, ValidationError) as exc:
            log.warning("signing keys unavailable", extra={"error": repr(exc)})
            self._next_fetch_at = self._clock() + self._retry_after_failure
            return
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in published.keys:
            if entry.alg not in ALGORITHMS:
                continue
            try:
                public = load_pem_public_key(entry.public_key_pem.encode())
            except ValueError:
                log.warning("unreadable signing key", extra={"kid": entry.kid})
                continue
            if isinstance(public, Ed25519PublicKey):
                keys[entry.kid] = public
        self._keys = keys
        self._next_fetch_at = self._clock() + self._refetch_interval
        log.info("signing keys loaded", extra={"kids": sorted(keys)})


class TokenVerifier:
    """Turns an Authorization header into the verified Caller, or raises 401/503."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        revocations: RevokedSessions | None = None,
        cache_size: int = 50_000,
    ):
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self.revocations = revocations
        self._cache_size = cache_size
        self._verified: dict[str, tuple[float, Caller, dict[str, Any]]] = {}

    async def verify(
        self, authorization: str | None, *, password_change_pending_ok: bool = False
    ) -> Caller:
        """The caller of a valid, unrevoked token. A token issued after a password reset
        (`pwc`) opens only the routes that allow it (`password_change_pending_ok`).

        A token whose signature was checked once is remembered until it expires (the
        signature check is most of what the gateway spends on a request); revocation and
        `pwc` are checked on every request, remembered or not."""
        token = bearer_token(authorization)
        remembered = self._verified.get(token)
        if remembered is not None and time.time() >= remembered[0]:
            del self._verified[token]
            raise TokenExpired()
        if remembered is None:
            caller, claims = await self._verify(token)
            if len(self._verified) >= self._cache_size:
                self._verified.clear()
            self._verified[token] = (float(claims["exp"]), caller, claims)
        else:
            _, caller, claims = remembered
        if caller.role != "patient" and self.revocations is not None:
            version = claims.get("tv", 0)
            if not isinstance(version, int) or self.revocations.is_revoked(caller.user_id, version):
                raise Unauthenticated(SESSION_REVOKED)
        if claims.get("pwc") and not password_change_pending_ok:
            raise PasswordChangeRequired()
        return caller

    async def _verify(self, token: str) -> tuple[Caller, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated() from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in ALGORITHMS:
            raise Unauthenticated()
        key = await self._keys.get(kid)
        if key is None:
            raise Unauthenticated()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.InvalidTokenError:
            raise Unauthenticated() from None
        return _caller(claims), claims


def _caller(claims: dict[str, Any]) -> Caller:
    sub, role, hid = claims.get("sub"), claims.get("role"), claims.get("hid")
    if not isinstance(sub, str) or role not in ROLES or not (hid is None or isinstance(hid, str)):
        raise Unauthenticated()
    if role in HOSPITAL_ROLES and not hid:
        raise Unauthenticated()
    return Caller(user_id=sub, role=role, hospital_id=hid)
