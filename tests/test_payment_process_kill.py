"""kill -9 of the payment process (GUAHAO_FAULT_POINTS: the process exits at the point)
between the steps of pay, expire and refund, through the gateway with the pay fake over
HTTP; after a restart the appointment, the order and WeChat Pay agree."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared.contracts.payment import order_id_for
from shared.devstack import DevStack
from tests.harness import Api
from tests.pay_system_kit import eventually, pay_stack, paying_hospital
from tests.payfake_kit import PayFakeControl
from tests.test_payment_system import booked_unpaid, remaining, tap, until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    # longer than a dead claimer's prepay claim (15 s): its patient can still pay after it
    # and a dead process's settlement lease lapses in 8 s, not production's 30
    yield from pay_stack(
        tmp_path_factory.mktemp("payment-kill"),
        PAYMENT_TIMEOUT_SECONDS="40",
        PAYMENT_SETTLEMENT_LEASE_SECONDS="8",
    )


@pytest.fixture
def fake(api: Api) -> PayFakeControl:
    return PayFakeControl(api.stack.wechatpay_url, api.session)


async def restart_payment(api: Api, points: str = "") -> None:
    """kill -9, then a new payment process (armed with `points`), serving once /readyz
    says so."""
    api.stack.kill_process("payment")
    api.stack.start_process("payment", GUAHAO_FAULT_POINTS=points)
    ready = await eventually(lambda: api.request("GET", "/readyz"), lambda r: r.status == 200, 60)
    assert ready.status == 200, ready.body


async def died(stack: DevStack, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.procs["payment"].poll() is None:
        assert time.monotonic() < deadline, "the payment process did not reach its fault point"
        await asyncio.sleep(0.2)
    assert stack.procs["payment"].returncode == 137


async def tap_until_answered(api: Api, token: str, aid: str) -> dict[str, Any]:
    async def attempt() -> Any:
        return await api.request("POST", f"/appointments/{aid}/pay", token=token)

    resp = await eventually(attempt, lambda r: r.status == 200, 60)
    assert resp.status == 200, resp.body
    return dict(resp.body)


async def test_killed_between_the_steps_of_pay(
    api: Api, stack: DevStack, fake: PayFakeControl
) -> None:
    h = await paying_hospital(api)
    for n, point in enumerate(("pay.after_claim", "pay.after_prepay")):
        token, aid, _ = await booked_unpaid(api, h, 400 + n)
        await restart_payment(api, point)
        await api.request("POST", f"/appointments/{aid}/pay", token=token)
        await died(stack)
        await restart_payment(api)
        await fake.pay(**await tap_until_answered(api, token, aid))
        await until(api, token, aid, "booked", "paid")
        assert len((await fake.orders(order_id_for(aid)))["orders"]) == 1
    token, aid, _ = await booked_unpaid(api, h, 402)
    args = await tap_until_answered(api, token, aid)
    await restart_payment(api, "paid.after_write")  # stored, not yet announced nor answered
    await fake.pay(**args)
    await died(stack)
    await restart_payment(api)
    await until(api, token, aid, "booked", "paid")


async def test_killed_between_the_steps_of_expiry(
    api: Api, stack: DevStack, fake: PayFakeControl
) -> None:
    h = await paying_hospital(api)
    token, aid, slot = await booked_unpaid(api, h, 410, capacity=1)
    await tap(api, token, aid)
    await restart_payment(api, "close.after_close")
    await died(stack, timeout=90)  # closed at WeChat Pay, not yet recorded
    await restart_payment(api)
    await until(api, token, aid, "cancelled", "closed")
    assert await remaining(api, h, slot) == 1

    async def order_state() -> str:
        day = await api.request("GET", f"/admin/hospitals/{h.id}/payments", token=h.staff_token)
        return str({i["order_id"]: i["status"] for i in day.body["items"]}[order_id_for(aid)])

    # the dead process's settlement lease (8 s here) expires before the new one closes it
    assert await eventually(order_state, lambda s: s == "closed", 75) == "closed"
    assert (await fake.orders(order_id_for(aid)))["orders"][0]["state"] == "CLOSED"


async def test_killed_between_the_steps_of_a_refund(
    api: Api, stack: DevStack, fake: PayFakeControl
) -> None:
    h = await paying_hospital(api)
    token, aid, _ = await booked_unpaid(api, h, 420)
    await fake.pay(**await tap(api, token, aid))
    await until(api, token, aid, "booked", "paid")
    await restart_payment(api, "refund.after_submit")
    assert (await api.request("POST", f"/appointments/{aid}/cancel", token=token)).status == 200
    await died(stack)  # the refund was asked for, the answer is lost
    await restart_payment(api)
    done = await until(api, token, aid, "cancelled", "refunded", timeout=90)  # lease: 8 s here
    refunds = (await fake.orders(order_id_for(aid)))["orders"][0]["refunds"]
    assert [r["out_refund_no"] for r in refunds] == [done["refund"]["out_refund_no"]]
    assert refunds[0]["status"] == "SUCCESS"
