"""The payment service on the real store against the WeChat Pay fake over HTTP (no broker):
the order state machine, one prepay however many taps, notifications verified on the raw
bytes and recorded once, the settlement jobs (query, close, refund with the same
out_refund_no)."""

from __future__ import annotations

import asyncio

import pytest

from services.payment.domain import TRANSITIONS, can_move
from shared.contracts.payment import order_id_for, refund_no_for
from shared.errors import InvalidState, NotFound, Unauthenticated
from tests.payment_kit import Kit, kit

pytest_plugins = ["tests.payfake_kit"]
__all__ = ["kit"]  # the fixture


def test_the_order_life_cycle_never_goes_backwards() -> None:
    assert can_move("unpaid", "paid") and can_move("paid", "refunding")
    assert can_move("refunding", "refunded") and can_move("unpaid", "closed")
    for final in ("refunded", "closed"):
        assert not TRANSITIONS[final]
    assert not can_move("refunded", "paid") and not can_move("closed", "paid")
    assert not can_move("paid", "unpaid") and not can_move("refunding", "paid")


async def test_fifty_concurrent_taps_make_one_prepay(kit: Kit) -> None:
    aid = kit.appointment()
    taps = await asyncio.gather(*(kit.tap(aid) for _ in range(50)))
    assert len({t["package"] for t in taps}) == 1
    assert all(t["signType"] == "RSA" and t["paySign"] for t in taps)
    orders = (await kit.payfake.orders())["orders"]
    assert [o["out_trade_no"] for o in orders] == [order_id_for(aid)]
    assert orders[0]["total"] == 5000 and orders[0]["openid"] == "o_u_1"
    again = await kit.tap(aid)  # a later tap reuses the prepay id
    assert again["package"] == taps[0]["package"]


async def test_only_the_owner_may_pay(kit: Kit) -> None:
    aid = kit.appointment("u_1")
    with pytest.raises(NotFound):
        await kit.tap(aid, "u_2")
    with pytest.raises(InvalidState):
        await kit.tap("apt_unknown", "u_1")


async def test_paid_notification_is_recorded_once(kit: Kit) -> None:
    aid = kit.appointment()
    await kit.payfake.behave(notify="twice")
    await kit.payfake.pay(**await kit.tap(aid))
    await kit.deliver(2)
    doc = await kit.order(aid)
    assert doc["state"] == "paid" and doc["transaction_id"]
    assert await kit.events() == ["payment.succeeded"]
    event = kit.publisher.events[0]
    assert event.data["payment"]["appointment_id"] == aid
    assert event.routing_key == f"payment.succeeded.{kit.hospital_id}"
    with pytest.raises(InvalidState):  # paid: no second prepay
        await kit.tap(aid)


async def test_forged_and_tampered_notifications_change_nothing(kit: Kit) -> None:
    forged, tampered = kit.appointment("u_1"), kit.appointment("u_2")
    await kit.payfake.behave(notify="bad_signature")
    await kit.payfake.pay(**await kit.tap(forged, "u_1"))
    headers, body = (await kit.sink.wait_for(1))[0]
    with pytest.raises(Unauthenticated):
        await kit.service.notification(headers, body)
    await kit.payfake.pay(**await kit.tap(tampered, "u_2"))
    headers, body = (await kit.sink.wait_for(2))[1]
    with pytest.raises(Unauthenticated):  # one byte changed after signing
        await kit.service.notification(headers, body.replace(b"{", b"{ ", 1))
    assert (await kit.order(forged))["state"] == "unpaid"
    assert (await kit.order(tampered))["state"] == "unpaid" and await kit.events() == []
    await kit.service.notification(headers, body)  # the genuine bytes
    assert (await kit.order(tampered))["state"] == "paid"


async def test_a_lost_notification_is_settled_by_the_query_job(kit: Kit) -> None:
    aid = kit.appointment()
    await kit.payfake.behave(notify="never")
    await kit.payfake.pay(**await kit.tap(aid))
    assert await kit.jobs.query_unsettled() == 0  # not due yet (30 s after the prepay)
    kit.clock.advance(seconds=31)
    assert await kit.jobs.query_unsettled() == 1
    assert (await kit.order(aid))["state"] == "paid"
    assert await kit.events() == ["payment.succeeded"]


async def test_an_unpaid_query_is_repeated_every_minute_until_pay_by(kit: Kit) -> None:
    aid = kit.appointment(minutes=3)
    await kit.tap(aid)
    kit.clock.advance(seconds=31)
    assert await kit.jobs.query_unsettled() == 1
    assert await kit.jobs.query_unsettled() == 0
    kit.clock.advance(seconds=61)
    assert await kit.jobs.query_unsettled() == 1
    kit.clock.advance(minutes=10)  # long past pay_by: it stops
    await kit.jobs.query_unsettled()
    assert not (await kit.order(aid))["querying"]


async def test_a_cancelled_unpaid_order_is_closed_at_wechat_pay(kit: Kit) -> None:
    aid = kit.appointment()
    args = await kit.tap(aid)
    await kit.service.on_appointment_event(kit.cancelled(aid, "system", "unpaid"))
    assert await kit.jobs.close_cancelled() == 1
    assert (await kit.order(aid))["state"] == "closed"
    (fake,) = (await kit.payfake.orders(order_id_for(aid)))["orders"]
    assert fake["state"] == "CLOSED"
    await kit.payfake.pay(expect=400, **args)  # the patient can no longer pay
    with pytest.raises(InvalidState):
        await kit.tap(aid)


async def test_a_never_tapped_cancelled_order_is_closed_without_wechat_pay(kit: Kit) -> None:
    aid = kit.appointment()
    await kit.service.on_appointment_event(kit.cancelled(aid, "patient", "患者取消"))
    assert (await kit.order(aid))["state"] == "closed"
    assert await kit.jobs.close_cancelled() == 0
    assert (await kit.payfake.orders())["orders"] == []


async def test_a_payment_after_the_cancellation_is_refunded(kit: Kit) -> None:
    aid = kit.appointment()
    args = await kit.tap(aid)
    await kit.service.on_appointment_event(kit.cancelled(aid, "system", "unpaid"))
    await kit.payfake.pay(**args)  # paid before the close job ran
    await kit.deliver(1)
    doc = await kit.order(aid)
    assert doc["state"] == "refunding"
    assert doc["refund"]["out_refund_no"] == refund_no_for(order_id_for(aid))
    assert await kit.jobs.close_cancelled() == 0  # nothing to close any more
    await kit.jobs.push_refunds()
    await kit.deliver(2)  # the REFUND.SUCCESS notification
    assert (await kit.order(aid))["state"] == "refunded"
    assert await kit.events() == ["payment.succeeded", "payment.refunded"]
    (fake,) = (await kit.payfake.orders(order_id_for(aid)))["orders"]
    assert [r["out_refund_no"] for r in fake["refunds"]] == [doc["refund"]["out_refund_no"]]
    # a late duplicate "paid" never reopens the refunded order
    await kit.payfake.control("renotify", {"out_trade_no": order_id_for(aid)})
    await kit.deliver(3)
    assert (await kit.order(aid))["state"] == "refunded"
    assert (await kit.events()).count("payment.succeeded") == 1


async def test_a_failed_refund_is_retried_with_the_same_out_refund_no(kit: Kit) -> None:
    aid = kit.appointment()
    await kit.payfake.behave(notify="never")
    await kit.payfake.pay(**await kit.tap(aid))
    kit.clock.advance(seconds=31)
    await kit.jobs.query_unsettled()
    await kit.service.on_appointment_event(kit.cancelled(aid, "hospital", "停诊"))
    await kit.payfake.behave(fail_next_refund="system_error", notify="never", scope="global")
    assert await kit.jobs.push_refunds() == 1
    assert (await kit.order(aid))["state"] == "refunding"
    assert await kit.jobs.push_refunds() == 0  # retried within 60 s, not at once
    kit.clock.advance(seconds=31)
    assert await kit.jobs.push_refunds() == 1
    for _ in range(50):  # PROCESSING → SUCCESS, learnt by the query
        if (await kit.order(aid))["state"] == "refunded":
            break
        await asyncio.sleep(0.1)
        kit.clock.advance(seconds=11)
        await kit.jobs.push_refunds()
    doc = await kit.order(aid)
    assert doc["state"] == "refunded" and doc["refund"]["reason"].startswith("医院取消")
    (fake,) = (await kit.payfake.orders(order_id_for(aid)))["orders"]
    assert len(fake["refunds"]) == 1 and fake["refunds"][0]["status"] == "SUCCESS"


async def test_the_day_lists_orders_refunds_and_totals(kit: Kit) -> None:
    paid, unpaid = kit.appointment("u_1"), kit.appointment("u_2")
    await kit.payfake.pay(**await kit.tap(paid))
    await kit.deliver(1)
    await kit.tap(unpaid, "u_2")
    day = await kit.service.day(kit.hospital_id, None, None)
    assert {i.order_id: i.status for i in day.items} == {
        order_id_for(paid): "paid",
        order_id_for(unpaid): "unpaid",
    }
    assert (day.totals.orders, day.totals.paid_cents, day.totals.net_cents) == (2, 5000, 5000)
    only_paid = await kit.service.day(kit.hospital_id, None, "paid")
    assert [i.order_id for i in only_paid.items] == [order_id_for(paid)]


async def test_a_refund_wechat_pay_closed_is_asked_again_under_a_new_number(kit: Kit) -> None:
    aid = kit.appointment()
    await kit.payfake.pay(**await kit.tap(aid))
    await kit.deliver(1)
    await kit.service.on_appointment_event(kit.cancelled(aid, "patient", "患者取消"))
    await kit.payfake.behave(fail_next_refund="closed")
    await kit.jobs.push_refunds()
    first = refund_no_for(order_id_for(aid))
    await kit.deliver(2)  # REFUND.CLOSED
    doc = await kit.order(aid)
    assert doc["state"] == "refunding"
    assert doc["refund"]["out_refund_no"] == refund_no_for(order_id_for(aid), 1) != first
    kit.clock.advance(seconds=31)
    await kit.jobs.push_refunds()
    await kit.deliver(3)
    assert (await kit.order(aid))["state"] == "refunded"
    (fake,) = (await kit.payfake.orders(order_id_for(aid)))["orders"]
    assert [r["status"] for r in fake["refunds"]] == ["CLOSED", "SUCCESS"]
