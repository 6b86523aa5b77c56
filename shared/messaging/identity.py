"""Signed caller identity on RPC requests, so that the broker is not the whole authority.

Every process of a deployment shares one HMAC-SHA256 key (`GUAHAO_RPC_KEY`). A request
carries, besides its body, the sending process kind (`x-service`), the end user the gateway
verified (`x-caller`, absent for a service's own calls), its deadline (`x-deadline`) and a
signature over all of them plus the target service, the method, the correlation id and a
digest of the body. A server refuses (an error reply, never executed) a request that is
unsigned, signed with another key, altered in any signed part, replayed to the same
process, or valid for longer than `MAX_HORIZON` seconds.

Rotation: `GUAHAO_RPC_KEY` takes several comma-separated keys; the first signs, every one
verifies. Add the new key second everywhere, then move it first, then drop the old one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.keyfile import create_secret_file
from shared.settings import Settings

log = logging.getLogger("guahao.rpc.identity")

SERVICE_HEADER = "x-service"
SIGNATURE_HEADER = "x-signature"
CALLER_HEADER = "x-caller"
DEADLINE_HEADER = "x-deadline"
KEY_BYTES = 32
# a signed request is worthless after this long, whatever deadline it claims
MAX_HORIZON = 300.0
_VERSION = "guahao-rpc-v1"


class RefusedRequest(Exception):
    """A request whose identity cannot be verified; `reason` is a metrics label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RpcKeys:
    """The key that signs and every key accepted when verifying (rotation)."""

    signing: bytes
    verifying: tuple[bytes, ...]

    @classmethod
    def parse(cls, value: str) -> RpcKeys:
        """`GUAHAO_RPC_KEY`: base64 keys of at least 32 bytes, comma-separated."""
        keys = []
        for part in value.split(","):
            try:
                key = base64.b64decode(part.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("GUAHAO_RPC_KEY: each key must be base64") from None
            if len(key) < KEY_BYTES:
                raise ValueError(f"GUAHAO_RPC_KEY: each key must be at least {KEY_BYTES} bytes")
            keys.append(key)
        if not keys:
            raise ValueError("GUAHAO_RPC_KEY is empty")
        return cls(keys[0], tuple(keys))


def new_rpc_key() -> str:
    """A fresh key in the form `GUAHAO_RPC_KEY` takes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def load_rpc_keys(settings: Settings) -> RpcKeys:
    """The RPC keys from `GUAHAO_RPC_KEY`, else the dev key generated once into
    `<data_dir>/keys/rpc.key` (every process sharing the data dir reads the same)."""
    if settings.rpc_key:
        return RpcKeys.parse(settings.rpc_key)
    path = settings.data_dir / "keys" / "rpc.key"
    raw, created = create_secret_file(path, lambda: new_rpc_key().encode())
    if created:
        log.warning("generated an RPC signing key", extra={"path": str(path)})
    return RpcKeys.parse(raw.decode())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


class RpcIdentity:
    """Signs this process's requests as `service` and verifies the requests it serves."""

    def __init__(
        self,
        service: str,
        keys: RpcKeys,
        *,
        clock: Callable[[], float] = time.time,
        replay_memory: int = 100_000,
    ) -> None:
        self.service = service
        self._keys = keys
        self._clock = clock
        self._seen: dict[str, float] = {}  # correlation id -> deadline, until it passes
        self._replay_memory = replay_memory

    @classmethod
    def from_settings(cls, service: str, settings: Settings) -> RpcIdentity:
        return cls(service, load_rpc_keys(settings))

    def sign(
        self, target: str, method: str, correlation_id: str, headers: Mapping[str, Any], body: bytes
    ) -> dict[str, str]:
        """The headers to add to a request for `target.method` (which already carries its
        `x-deadline` and, on behalf of a user, `x-caller`)."""
        payload = _payload(
            self.service,
            target,
            method,
            correlation_id,
            _text(headers.get(DEADLINE_HEADER)),
            _text(headers.get(CALLER_HEADER)),
            body,
        )
        return {SERVICE_HEADER: self.service, SIGNATURE_HEADER: _mac(self._keys.signing, payload)}

    def verify(
        self,
        target: str,
        method: str,
        correlation_id: str,
        headers: Mapping[str, Any],
        body: bytes,
        *,
        redelivered: bool = False,
    ) -> str:
        """The signing process kind of a request served as `target.method`; raises
        RefusedRequest when it is not a genuine, fresh request of this deployment.

        `redelivered` (set by the broker, never by a publisher) marks a delivery given back
        because the channel that took it was lost before acknowledging it (a broker node
        died): the same request again, not a replay, so a correlation id already seen is
        accepted for it. Handlers are idempotent (bookings by their Idempotency-Key)."""
        signature = _text(headers.get(SIGNATURE_HEADER))
        sender = _text(headers.get(SERVICE_HEADER))
        deadline_raw = headers.get(DEADLINE_HEADER)
        if not signature or not sender:
            raise RefusedRequest("unsigned")
        if not isinstance(deadline_raw, int) or not correlation_id:
            raise RefusedRequest("malformed")
        payload = _payload(
            sender,
            target,
            method,
            correlation_id,
            str(deadline_raw),
            _text(headers.get(CALLER_HEADER)),
            body,
        )
        if not any(
            hmac.compare_digest(signature, _mac(key, payload)) for key in self._keys.verifying
        ):
            raise RefusedRequest("bad_signature")
        now = self._clock()
        deadline = deadline_raw / 1000
        if deadline > now + MAX_HORIZON:
            raise RefusedRequest("too_far")
        self._remember(correlation_id, deadline, now, redelivered)
        return sender

    def _remember(
        self, correlation_id: str, deadline: float, now: float, redelivered: bool
    ) -> None:
        if correlation_id in self._seen:
            if redelivered:
                return
            raise RefusedRequest("replayed")
        if len(self._seen) >= self._replay_memory:
            self._seen = {cid: d for cid, d in self._seen.items() if d >= now}
            if len(self._seen) >= self._replay_memory:
                raise RefusedRequest("replay_memory_full")
        self._seen[correlation_id] = deadline


def _payload(
    sender: str,
    target: str,
    method: str,
    correlation_id: str,
    deadline: str,
    caller: str,
    body: bytes,
) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    fields = (_VERSION, sender, target, method, correlation_id, deadline, caller, digest)
    if any("\n" in f for f in fields):
        raise RefusedRequest("malformed")
    return "\n".join(fields).encode()


def _mac(key: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()).decode()
