"""Kill the payment service between every pair of steps of pay, close (expiry) and refund;
then a fresh process (new memory, same store, same WeChat Pay) finishes: the order and
WeChat Pay agree, one prepay per order, one refund, each event published once.

In-process, an armed fault point raises `Crash` (a BaseException no clean-up path catches),
as `kill -9` would stop the flow there; `test_payment_process_kill` does the same with real
processes (GUAHAO_FAULT_POINTS) through the gateway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.payment.app import build
from services.payment.domain import PREPAY_CLAIM
from shared.contracts.payment import order_id_for
from shared.faults import Crash
from shared.storage.mongo import Document
from tests.payment_kit import Kit, Openids, kit

pytest_plugins = ["tests.payfake_kit"]
__all__ = ["kit"]  # the fixture
ROOT = Path(__file__).resolve().parent.parent


def restart(kit: Kit, db: AsyncDatabase[Document]) -> None:
    """The next process: fresh objects and memory on the same store and pay fake."""
    kit.faults.disarm()
    kit.payment = build(
        db,
        pay=kit.pay,
        openids=Openids(),
        appointments=kit.appointments,
        outbox=kit.relay,
        clock=kit.clock,
        faults=kit.faults,
        pace=kit.service.pace,
    )
    kit.service, kit.orders, kit.jobs = (
        kit.payment.service,
        kit.payment.orders,
        kit.payment.settlement,
    )


async def settle_all(kit: Kit, rounds: int = 6) -> None:
    """Every job pass a restarted replica would make, with time passing between them."""
    for _ in range(rounds):
        kit.clock.advance(seconds=31)
        await kit.jobs.run_once()
        await kit.relay.settle()  # what the fast path published is marked sent first
        await kit.relay.mark_sent()
        await kit.relay.sweep(everything=True)


async def fake_order(kit: Kit, aid: str) -> dict[str, object]:
    orders = (await kit.payfake.orders(order_id_for(aid)))["orders"]
    assert len(orders) == 1, orders
    return dict(orders[0])


@pytest.mark.parametrize("point", ["pay.after_claim", "pay.after_prepay"])
async def test_a_tap_killed_mid_way_leaves_one_order_payable(
    kit: Kit, mongo_db: AsyncDatabase[Document], point: str
) -> None:
    aid = kit.appointment()
    kit.faults.arm(point)
    with pytest.raises(Crash):
        await kit.tap(aid)
    restart(kit, mongo_db)
    kit.clock.advance(seconds=16)  # the dead claimer's claim has expired
    args = await kit.tap(aid)
    assert args == {**args, "signType": "RSA"}
    await kit.payfake.pay(**args)
    await kit.deliver(1)
    assert (await kit.order(aid))["state"] == "paid"
    assert (await fake_order(kit, aid))["state"] == "SUCCESS"
    await settle_all(kit, rounds=1)
    assert kit.publisher.types() == ["payment.succeeded"]


async def test_killed_after_recording_the_payment_publishes_it_once(
    kit: Kit, mongo_db: AsyncDatabase[Document]
) -> None:
    aid = kit.appointment()
    await kit.payfake.behave(notify="never")
    await kit.payfake.pay(**await kit.tap(aid))
    kit.faults.arm("paid.after_write")
    kit.clock.advance(seconds=31)
    with pytest.raises(Crash):
        await kit.jobs.query_unsettled()
    restart(kit, mongo_db)
    await settle_all(kit)
    assert (await kit.order(aid))["state"] == "paid"
    assert kit.publisher.types() == ["payment.succeeded"]


async def test_killed_after_closing_at_wechat_pay_closes_the_order(
    kit: Kit, mongo_db: AsyncDatabase[Document]
) -> None:
    aid = kit.appointment()
    await kit.tap(aid)
    await kit.service.on_appointment_event(kit.cancelled(aid, "system", "unpaid"))
    kit.faults.arm("close.after_close")
    with pytest.raises(Crash):
        await kit.jobs.close_cancelled()
    assert (await kit.order(aid))["state"] == "unpaid"
    restart(kit, mongo_db)
    await settle_all(kit)
    doc = await kit.order(aid)
    assert doc["state"] == "closed" and not doc["closing"]
    assert (await fake_order(kit, aid))["state"] == "CLOSED"


async def test_killed_after_submitting_a_refund_refunds_once(
    kit: Kit, mongo_db: AsyncDatabase[Document]
) -> None:
    aid = kit.appointment()
    await kit.payfake.behave(notify="never", scope="global")
    await kit.payfake.pay(**await kit.tap(aid))
    kit.clock.advance(seconds=31)
    await kit.jobs.query_unsettled()
    await kit.service.on_appointment_event(kit.cancelled(aid, "patient", "患者取消"))
    kit.faults.arm("refund.after_submit")
    with pytest.raises(Crash):
        await kit.jobs.push_refunds()
    restart(kit, mongo_db)
    for _ in range(20):
        await settle_all(kit, rounds=1)
        if (await kit.order(aid))["state"] == "refunded":
            break
        await asyncio.sleep(0.1)
    assert (await kit.order(aid))["state"] == "refunded"
    refunds = (await fake_order(kit, aid))["refunds"]
    assert isinstance(refunds, list) and len(refunds) == 1
    assert refunds[0]["status"] == "SUCCESS"
    assert kit.publisher.types() == ["payment.succeeded", "payment.refunded"]


def test_every_payment_fault_point_is_exercised() -> None:
    source = "".join(p.read_text() for p in (ROOT / "services" / "payment").glob("*.py"))
    points = set(re.findall(r'faults\.point\("([^"]+)"\)', source))
    assert points == {
        "pay.after_claim",
        "pay.after_prepay",
        "paid.after_write",
        "close.after_close",
        "refund.after_submit",
    }
    assert PREPAY_CLAIM < dt.timedelta(seconds=16)  # what the restart waits for
