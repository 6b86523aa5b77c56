"""Patients' WeChat openids, from auth (notify's subscribe messages, payment's prepay)."""

from __future__ import annotations

import time

from shared.contracts.notify import UserOpenid, UserOpenidQuery
from shared.errors import NotFound
from shared.messaging.rpc import RpcClient


class AuthOpenids:
    """Patients' openids from auth (`user_openid`), cached briefly: a user's openid never
    changes, but a short TTL keeps memory bounded and a deleted user forgotten."""

    def __init__(self, rpc: RpcClient, ttl: float = 300.0, max_entries: int = 10_000) -> None:
        self.rpc = rpc
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, str]] = {}

    async def openid(self, user_id: str) -> str | None:
        cached = self._cache.get(user_id)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            reply = await self.rpc.call("auth", "user_openid", UserOpenidQuery(user_id=user_id))
        except NotFound:
            return None
        openid = UserOpenid.model_validate(reply).openid
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[user_id] = (time.monotonic(), openid)
        return openid
