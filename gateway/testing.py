"""Test kit for the gateway: a fake RPC client and a token signer (tests only)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel

from gateway.auth import AUDIENCE, ISSUER, ConfiguredSigningKeys
from shared.context import Caller, request_id_var
from shared.errors import ServiceUnavailable

Client = TestClient[web.Request, web.Application]  # a test client of the gateway app
MakeClient = Callable[..., Awaitable[Client]]  # the `make_client` fixture: options -> Client


class TokenSigner:
    """An Ed25519 key pair that signs access tokens the way auth does."""

    def __init__(self, kid: str = "test-key-1") -> None:
        self.kid = kid
        self.private_key = Ed25519PrivateKey.generate()

    @property
    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def configured_keys(self) -> ConfiguredSigningKeys:
        """What the gateway trusts when its configuration lists this signer's key."""
        return ConfiguredSigningKeys({self.kid: self.private_key.public_key()})

    def key_entry(self) -> dict[str, str]:
        return {"kid": self.kid, "alg": "EdDSA", "public_key_pem": self.public_key_pem}

    def token(
        self,
        sub: str = "u_1",
        role: str = "patient",
        hid: str | None = None,
        *,
        ttl: float = 300,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "role": role,
            "iat": now,
            "exp": now + int(ttl),
        }
        if hid is not None:
            payload["hid"] = hid
        payload.update(claims)
        header = {"kid": self.kid, **(headers or {})}
        return jwt.encode(payload, self.private_key, algorithm="EdDSA", headers=header)


def signing_keys(*signers: TokenSigner) -> dict[str, Any]:
    """The `auth.signing_keys` reply publishing these signers' public keys."""
    return {"issuer": ISSUER, "audience": AUDIENCE, "keys": [s.key_entry() for s in signers]}


@dataclass(frozen=True)
class RecordedCall:
    service: str
    method: str
    params: Any
    caller: Caller | None
    request_id: str
    timeout: float | None


Responder = Callable[[Any, Caller | None], Any]


class FakeRpc:
    """Stands in for RpcClient: answers registered methods, records every call; a method
    nobody registered fails like an unserved queue (ServiceUnavailable)."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self._methods: dict[tuple[str, str], Responder] = {}

    def on(self, service: str, method: str, respond: Responder | Any) -> None:
        """Answer `service.method` with `respond(params, caller)` (sync or async), a fixed
        value, or raise the exception instance given."""
        if callable(respond):
            self._methods[(service, method)] = respond
        else:
            self._methods[(service, method)] = lambda _p, _c: respond

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    async def call(
        self,
        service: str,
        method: str,
        params: BaseModel | dict[str, Any] | None = None,
        *,
        caller: Caller | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - RpcClient.call's signature
    ) -> Any:
        self.calls.append(
            RecordedCall(service, method, params, caller, request_id_var.get(), timeout)
        )
        respond = self._methods.get((service, method))
        if respond is None:
            raise ServiceUnavailable(service=service, reason="no such service")
        result = respond(params, caller)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, BaseException):
            raise result
        return result


def fake_auth(*signers: TokenSigner) -> FakeRpc:
    """A FakeRpc whose `auth.signing_keys` publishes the given signers' keys."""
    rpc = FakeRpc()
    rpc.on("auth", "signing_keys", signing_keys(*signers))
    return rpc


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def authenticated(caller: Caller | None) -> Caller:
    """The caller a responder was given for an authenticated route (never None there)."""
    assert caller is not None, "the gateway forwarded no caller"
    return caller
