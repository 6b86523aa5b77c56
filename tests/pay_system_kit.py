"""Builders for the registration-fee system tests: a stack whose payment deadlines are
seconds (PAYMENT_TIMEOUT_SECONDS), a hospital that collects the fee, waiting for an
eventual state (the pay fake's control API: tests/payfake_kit.py `PayFakeControl`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

from shared.devstack import DevStack
from tests.harness import Api, delete_vhost, start_stack
from tests.system_kit import Hospital, make_hospital

T = TypeVar("T")

# unpaid appointments expire after this many seconds in these stacks (not 1..120 minutes)
PAY_WITHIN = 12
PAY_ENV = {
    "PAYMENT_TIMEOUT_SECONDS": str(PAY_WITHIN),
    "PAYMENT_QUERY_AFTER_SECONDS": "2",
    "PAYMENT_QUERY_EVERY_SECONDS": "2",
    "PAYMENT_RETRY_SECONDS": "1",
}


def pay_stack(base: Path, **env: str) -> Iterator[DevStack]:
    started, vhost = start_stack(base, {**PAY_ENV, **env})
    try:
        yield started
    finally:
        started.stop()
        delete_vhost(vhost)


async def paying_hospital(api: Api) -> Hospital:
    h = await make_hospital(api)
    rules = await api.request(
        "PATCH",
        f"/admin/hospitals/{h.id}/rules",
        token=h.staff_token,
        json={"payment": "required", "payment_timeout_minutes": 1},
    )
    assert rules.status == 200, rules.body
    assert rules.body["rules"]["payment"] == "required"
    return h


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 40.0
) -> T:
    """Poll `probe` until `ok` holds (the last value is returned either way, for the assert)."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not ok(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        value = await probe()
    return value
