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
from shared.errors import ServiceUnavailable, TokenExpired, Unauthenticated
from shared.jwt_keys import parse_public_keys

log = logging.getLogger("guahao.gateway.auth")

ISSUER = "guahao-auth"
AUDIENCE = "guahao"
ALGORITHMS = ["EdDSA"]
ROLES = frozenset({"patient", "hospital_admin", "platform_admin"})


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

    def __init__(self, keys: KeySource, *, issuer: str = ISSUER, audience: str = AUDIENCE):
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    async def verify(self, authorization: str | None) -> Caller:
        token = bearer_token(authorization)
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
        return _caller(claims)


def _caller(claims: dict[str, Any]) -> Caller:
    sub, role, hid = claims.get("sub"), claims.get("role"), claims.get("hid")
    if not isinstance(sub, str) or role not in ROLES or not (hid is None or isinstance(hid, str)):
        raise Unauthenticated()
    if role == "hospital_admin" and not hid:
        raise Unauthenticated()
    return Caller(user_id=sub, role=role, hospital_id=hid)
