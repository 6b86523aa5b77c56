"""Request rate limits: in-process token buckets.

Limits are per gateway replica: with N replicas behind a load balancer a client gets up to
N times the configured rate. That is the intended trade (no shared store on the hot path);
the per-replica numbers are chosen with that in mind.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shared.errors import RateLimited

IP = "ip"
USER = "user"
LOGIN = "login"
REFRESH = "refresh"
WECHAT_LOGIN = "wechat_login"


@dataclass(frozen=True)
class Rate:
    """`per_second` tokens refill continuously up to `burst`."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate needs a positive refill and a burst of at least 1: {self}")

    @classmethod
    def per_minute(cls, count: float, burst: int) -> Rate:
        return cls(count / 60.0, burst)


# One client address may be a whole carrier NAT, an office or (with proxies not yet
# trusted) the load balancer: limits keyed by address alone are generous, and the tight
# ones are keyed by what identifies one actor (user, username + address, token family).
DEFAULT_RATES: Mapping[str, Rate] = MappingProxyType(
    {
        IP: Rate(100, 200),  # every request, per client address
        USER: Rate(10, 20),  # every authenticated request, per user
        LOGIN: Rate.per_minute(10, 10),  # staff password login, per username + client address
        REFRESH: Rate.per_minute(10, 10),  # per refresh-token family (one app install)
        # per client address: each login spends a one-time wx.login code that only WeChat
        # mints, so a crowd behind one address (an 08:00 release rush) must get through
        WECHAT_LOGIN: Rate(50, 100),
        "book": Rate(5, 20),  # per patient: a flash crowd of one patient's retries stays bounded
    }
)


_PERIODS = MappingProxyType({"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0})


def parse_rates(spec: str) -> dict[str, Rate]:
    """`login=10/min:10, ip=20/s:40` → rates by class (burst defaults to the count)."""
    rates: dict[str, Rate] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        try:
            name, _, value = item.partition("=")
            amount, _, rest = value.partition("/")
            period, _, burst = rest.partition(":")
            count = float(amount)
            rates[name.strip()] = Rate(
                count / _PERIODS[period.strip() or "s"], int(burst) if burst else int(count)
            )
        except (KeyError, ValueError):
            raise ValueError(
                f"bad rate limit {item!r}: expected NAME=COUNT/s|min|h[:BURST]"
            ) from None
    return rates


class TokenBuckets:
    """One bucket per key, least recently used first; idle (full) buckets are pruned and
    the total is capped, so memory stays bounded whatever the number of clients."""

    def __init__(
        self, rate: Rate, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take one token; return 0 when granted, else the seconds until one is available."""
        now = self._clock()
        self._prune(now)
        tokens, last = self._buckets.pop(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - last) * self.rate.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate.per_second
        self._buckets[key] = (tokens, now)
        return wait

    def _prune(self, now: float) -> None:
        refill = self.rate.burst / self.rate.per_second
        while self._buckets:
            key, (_, last) = next(iter(self._buckets.items()))
            if now - last < refill and len(self._buckets) < self.max_keys:
                return
            del self._buckets[key]


class Limits:
    """Named rate classes (`ip`, `user`, `login`, and any a route names)."""

    def __init__(
        self,
        rates: Mapping[str, Rate] | None = None,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        merged = {**DEFAULT_RATES, **(rates or {})}
        self._classes = {
            name: TokenBuckets(rate, max_keys=max_keys, clock=clock)
            for name, rate in merged.items()
        }

    @property
    def classes(self) -> frozenset[str]:
        return frozenset(self._classes)

    def hit(self, rate_class: str, key: str) -> None:
        """Count one request of `key` against `rate_class`; raise RateLimited when over."""
        buckets = self._classes.get(rate_class)
        if buckets is None:
            raise KeyError(f"unknown rate class {rate_class!r}")
        wait = buckets.take(key)
        if wait > 0:
            raise RateLimited(retry_after=max(1, math.ceil(wait)), limit=rate_class)

    def tracked_keys(self, rate_class: str) -> int:
        return len(self._classes[rate_class])


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`10.0.0.0/8`, `127.0.0.1`, ... → networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client address: the peer, unless the peer is a trusted proxy, in which case
    X-Forwarded-For is walked from the right (each proxy appends the address it saw),
    skipping trusted proxies, and the first untrusted entry is the client. Entries left of
    it were written by the client and are never believed. Behind several hops (a cloud
    load balancer, then nginx) every hop's address or network must be trusted."""
    address = peer or "unknown"
    if not forwarded_for or not _in(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if not hop:
            continue
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address
        address = hop
        if not _in(hop, trusted):
            break
    return address


def refresh_family_key(refresh_token: str) -> str:
    """The rate-limit key of a refresh token: its family (`<family>.<secret>`); a token
    without one (issued before families were spelled out) is its own key."""
    family, dot, _ = refresh_token.partition(".")
    return f"family:{family}" if dot and family else f"token:{refresh_token}"


def username_ip_key(username: str, ip: str) -> str:
    """Staff login: one bucket per username per address, so nobody elsewhere can use up an
    account's logins (usernames match case-insensitively)."""
    return f"{username.strip().lower()}|{ip}"
