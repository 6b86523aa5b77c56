"""Staff sessions revoked before their access tokens expire, checked without an RPC per request.

Auth gives every staff account a token version (the `tv` claim of its access tokens) and
raises it when the account is disabled, changes role or has its password reset or changed.
Each gateway replica keeps `user id → lowest valid version` in memory and refuses (401)
tokens below it:

- it polls `auth.revocations` every `interval` seconds (default 2) for what was revoked
  since its last answer (with an overlap), so a revocation reaches every replica within
  `interval` + one RPC;
- the replica that served the revoking request refreshes before answering it, so on that
  replica the old tokens are refused by the time the client sees the reply;
- entries are forgotten once every token they refuse has expired (access TTL + margin).

While auth cannot be reached the last list stays in force and the staleness grows (a
warning is logged while it exceeds `STALE_WARNING` seconds); an access token lives 15
minutes at most, so that is the bound during an auth outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from gateway.auth import Rpc
from shared.contracts.auth import RevocationList
from shared.errors import DomainError

log = logging.getLogger("guahao.gateway.revocations")

ACCESS_TTL = 15 * 60.0
# tokens are refused this long after a revocation (their exp is at most ACCESS_TTL later)
REMEMBER_FOR = ACCESS_TTL + 120.0
# asked again each poll: revocations committed while the previous poll was answered
OVERLAP = 10.0
STALE_WARNING = 30.0


class Revocations:
    """The revoked token versions this gateway replica knows of."""

    def __init__(
        self,
        rpc: Rpc,
        *,
        service: str = "auth",
        interval: float = 2.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rpc = rpc
        self._service = service
        self.interval = interval
        self._timeout = timeout
        self._clock = clock
        # user id → (lowest valid token version, revoked at, epoch seconds)
        self._versions: dict[str, tuple[int, float]] = {}
        self._since: float | None = None
        self.refreshed_at: float | None = None
        self._lock = asyncio.Lock()

    def is_revoked(self, user_id: str, token_version: int) -> bool:
        """Whether a token of `user_id` carrying `token_version` was revoked."""
        known = self._versions.get(user_id)
        return known is not None and token_version < known[0]

    def apply(self, user_id: str, token_version: int, at: float) -> None:
        """Learn one revocation (a higher version wins)."""
        known = self._versions.get(user_id)
        if known is None or token_version > known[0]:
            self._versions[user_id] = (token_version, at)

    @property
    def age(self) -> float:
        """Seconds since the list was last confirmed by auth (inf before the first time)."""
        return float("inf") if self.refreshed_at is None else self._clock() - self.refreshed_at

    async def refresh(self) -> bool:
        """Fetch what was revoked since the last answer; False when auth did not answer."""
        async with self._lock:
            since = self._since if self._since is not None else self._clock() - REMEMBER_FOR
            try:
                reply: Any = await self._rpc.call(
                    self._service, "revocations", {"since": max(0.0, since)}, timeout=self._timeout
                )
                answer = RevocationList.model_validate(reply)
            except (DomainError, ValidationError, TimeoutError, ConnectionError) as exc:
                stale = self.refreshed_at is not None and self.age > STALE_WARNING
                level = logging.WARNING if stale else logging.DEBUG
                log.log(
                    level,
                    "revocations not refreshed",
                    extra={"error": repr(exc), "age": round(self.age, 1)},
                )
                return False
            for item in answer.items:
                self.apply(item.user_id, item.token_version, item.at)
            # auth's clock decides what "since" means: no skew between the two hosts
            self._since = answer.now - OVERLAP
            self.refreshed_at = self._clock()
            self._forget(answer.now - REMEMBER_FOR)
            return True

    def _forget(self, before: float) -> None:
        for user_id in [u for u, (_, at) in self._versions.items() if at < before]:
            del self._versions[user_id]

    async def run(self) -> None:
        """Poll for as long as the gateway runs."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("revocation poll failed")
            await asyncio.sleep(self.interval)
