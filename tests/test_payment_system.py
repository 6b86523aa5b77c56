"""Issue 13 acceptance through the gateway, against the WeChat Pay fake over HTTP, on the
real broker and the embedded store: pay → booked, duplicate / forged / tampered / lost
notifications, expiry at pay_by, refunds (late payment, patient cancel, 停诊, a refund
that fails once), 50 taps → one prepay, the staff's day of payments."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.contracts.payment import order_id_for
from shared.devstack import DevStack
from tests.harness import Api, Response
from tests.pay_system_kit import eventually, pay_stack, paying_hospital
from tests.payfake_kit import PayFakeControl
from tests.system_kit import TOMORROW, Hospital, book, make_schedule, patient

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    yield from pay_stack(tmp_path_factory.mktemp("payment"))


@pytest.fixture
def fake(api: Api) -> PayFakeControl:
    return PayFakeControl(api.stack.wechatpay_url, api.session)


SESSIONS: dict[str, Iterator[tuple[dt.date, str]]] = {}


def next_session(h: Hospital) -> tuple[dt.date, str]:
    """A session of the hospital's doctor not used yet (one per doctor, date and session)."""
    sessions = SESSIONS.setdefault(
        h.id, iter([(TOMORROW + dt.timedelta(days=d), s) for d in range(5) for s in ("am", "pm")])
    )
    return next(sessions)


async def booked_unpaid(api: Api, h: Hospital, n: int, capacity: int = 3) -> tuple[str, str, str]:
    """A patient's fresh pending_payment appointment: (token, appointment id, slot id)."""
    date, session = next_session(h)
    schedule = await make_schedule(
        api,
        h,
        capacity=capacity,
        date=date,
        session=session,
        starts=("08:00",) if session == "am" else ("14:00",),
    )
    slot = schedule["slots"][0]["id"]
    token, pid = await patient(api, n)
    resp = await book(api, token, slot, pid)
    assert resp.status == 201, resp.body
    assert resp.body["status"] == "pending_payment" and resp.body["pay_by"]
    assert resp.body["payment"]["order_id"] == order_id_for(resp.body["id"])
    assert resp.body["payment"]["amount_cents"] == resp.body["fee_cents"] == 5000
    return token, resp.body["id"], slot


async def tap(api: Api, token: str, aid: str) -> dict[str, Any]:
    resp = await api.request("POST", f"/appointments/{aid}/pay", token=token)
    assert resp.status == 200, resp.body
    assert set(resp.body) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    return dict(resp.body)


async def view(api: Api, token: str, aid: str) -> dict[str, Any]:
    resp = await api.request("GET", f"/appointments/{aid}", token=token)
    assert resp.status == 200, resp.body
    return dict(resp.body)


async def until(
    api: Api, token: str, aid: str, status: str, payment: str, timeout: float = 40.0
) -> dict[str, Any]:
    got = await eventually(
        lambda: view(api, token, aid),
        lambda v: v["status"] == status and (v.get("payment") or {}).get("status") == payment,
        timeout,
    )
    assert (got["status"], got["payment"]["status"]) == (status, payment), got
    return got


async def remaining(api: Api, h: Hospital, slot: str) -> int:
    resp = await api.request("GET", f"/admin/hospitals/{h.id}/schedules", token=h.staff_token)
    assert resp.status == 200, resp.body
    for schedule in resp.body["items"]:
        for s in schedule["slots"]:
            if s["id"] == slot:
                return int(s["remaining"])
    raise AssertionError(slot)


async def test_pay_books_once_even_when_notified_twice(
    api: Api, fake: PayFakeControl, hospital_events: Any
) -> None:
    h = await paying_hospital(api)
    await hospital_events.bind(h.id)
    token, aid, slot = await booked_unpaid(api, h, 201)
    assert await remaining(api, h, slot) == 2  # held while unpaid
    await fake.behave(notify="twice")
    await fake.pay(**await tap(api, token, aid))
    booked = await until(api, token, aid, "booked", "paid")
    assert booked["pay_by"] is None
    order = await fake.orders(order_id_for(aid))
    assert [d["status"] for d in order["deliveries"]].count(204) == 2  # both answered
    events = [m.type for m in await hospital_events.collect(until=5, timeout=8)]
    assert events.count("appointment.pending_payment") == 1
    assert events.count("payment.succeeded") == 1 and events.count("appointment.booked") == 1
    again = await api.request("POST", f"/appointments/{aid}/pay", token=token)
    assert again.status == 409, again.body


async def test_forged_and_tampered_notifications_are_refused(
    api: Api, fake: PayFakeControl
) -> None:
    h = await paying_hospital(api)
    for n, mode in ((202, "bad_signature"), (203, "tampered")):
        token, aid, _ = await booked_unpaid(api, h, n)
        await fake.behave(notify=mode)
        await fake.pay(**await tap(api, token, aid))
        order_id = order_id_for(aid)

        async def deliveries(order_id: str = order_id) -> dict[str, Any]:
            return await fake.orders(order_id)

        order = await eventually(deliveries, lambda o: len(o["deliveries"]) >= 2, 10)
        assert {d["status"] for d in order["deliveries"]} == {401}, order["deliveries"]
        # only WeChat Pay's query (the paid order is real) settles it, never the forgery
        await until(api, token, aid, "booked", "paid")
    raw = json.dumps({"id": "x", "event_type": "TRANSACTION.SUCCESS"}).encode()
    forged = await api.request(
        "POST",
        "/payments/wechat/notify",
        data=raw,
        headers={
            "Content-Type": "application/json",
            "Wechatpay-Serial": "PUB_KEY_ID_0000",
            "Wechatpay-Signature": "AAAA",
            "Wechatpay-Timestamp": "1700000000",
            "Wechatpay-Nonce": "n",
        },
    )
    assert forged.status == 401, forged.body
    huge = await api.request("POST", "/payments/wechat/notify", data=b"x" * 70_000)
    assert huge.status == 413


async def test_a_lost_notification_is_settled_by_the_query_job(
    api: Api, fake: PayFakeControl
) -> None:
    h = await paying_hospital(api)
    token, aid, _ = await booked_unpaid(api, h, 204)
    await fake.behave(notify="never")
    await fake.pay(**await tap(api, token, aid))
    await until(api, token, aid, "booked", "paid")


async def test_unpaid_at_pay_by_is_cancelled_the_unit_returns_once_the_order_closes(
    api: Api, fake: PayFakeControl
) -> None:
    h = await paying_hospital(api)
    token, aid, slot = await booked_unpaid(api, h, 205, capacity=1)
    args = await tap(api, token, aid)
    assert await remaining(api, h, slot) == 0
    cancelled = await until(api, token, aid, "cancelled", "closed")
    assert (cancelled["cancelled_by"], cancelled["reason"]) == ("system", "unpaid")
    assert await remaining(api, h, slot) == 1
    order = await eventually(
        lambda: fake.orders(order_id_for(aid)), lambda o: o["orders"][0]["state"] == "CLOSED", 20
    )
    assert order["orders"][0]["state"] == "CLOSED"
    late = await fake.pay(400, **args)
    assert late.get("code") == "ORDER_CLOSED", late
    # the freed unit can be booked again, once
    token2, pid2 = await patient(api, 206)
    assert (await book(api, token2, slot, pid2)).status == 201
    assert await remaining(api, h, slot) == 0


async def test_a_payment_after_expiry_is_refunded(api: Api, fake: PayFakeControl) -> None:
    h = await paying_hospital(api)
    token, aid, slot = await booked_unpaid(api, h, 207)
    args = await tap(api, token, aid)
    await fake.behave(slow=4)  # the close of the expired order is still on its way …
    try:
        await until(api, token, aid, "cancelled", "closed")
        await asyncio.sleep(1.0)
        await fake.pay(**args, force=True)  # … when the patient's payment goes through
    finally:
        await fake.behave(slow=0)
    refunded = await until(api, token, aid, "cancelled", "refunded", timeout=60)
    assert refunded["refund"]["status"] == "succeeded"
    assert refunded["refund"]["amount_cents"] == 5000
    order = (await fake.orders(order_id_for(aid)))["orders"][0]
    assert [r["status"] for r in order["refunds"]] == ["SUCCESS"]


async def cancel_paid(api: Api, h: Hospital, n: int, fake: PayFakeControl) -> tuple[str, str, str]:
    token, aid, slot = await booked_unpaid(api, h, n)
    await fake.pay(**await tap(api, token, aid))
    await until(api, token, aid, "booked", "paid")
    return token, aid, slot


async def test_patient_cancel_and_stop_clinic_refund_in_full(
    api: Api, fake: PayFakeControl
) -> None:
    h = await paying_hospital(api)
    token, aid, _ = await cancel_paid(api, h, 208, fake)
    cancelled = await api.request("POST", f"/appointments/{aid}/cancel", token=token)
    assert cancelled.status == 200 and cancelled.body["payment"]["status"] == "refunding"
    await until(api, token, aid, "cancelled", "refunded")
    token2, aid2, _ = await cancel_paid(api, h, 209, fake)
    schedule_id = (await view(api, token2, aid2))["schedule_id"]
    stop = await api.request(
        "POST",
        f"/admin/hospitals/{h.id}/schedules/{schedule_id}/stop",
        token=h.staff_token,
        json={"reason": "医生外出会诊"},
    )
    assert stop.status == 200, stop.body
    stopped = await until(api, token2, aid2, "cancelled", "refunded")
    assert stopped["cancelled_by"] == "hospital"


async def test_a_refund_that_fails_once_is_retried_with_the_same_out_refund_no(
    api: Api, fake: PayFakeControl
) -> None:
    h = await paying_hospital(api)
    token, aid, _ = await cancel_paid(api, h, 210, fake)
    await fake.behave(fail_next_refund="system_error")
    assert (await api.request("POST", f"/appointments/{aid}/cancel", token=token)).status == 200
    done = await until(api, token, aid, "cancelled", "refunded")
    order = (await fake.orders(order_id_for(aid)))["orders"][0]
    assert [r["out_refund_no"] for r in order["refunds"]] == [done["refund"]["out_refund_no"]]


async def test_fifty_concurrent_taps_make_one_prepay(api: Api, fake: PayFakeControl) -> None:
    h = await paying_hospital(api)
    token, aid, _ = await booked_unpaid(api, h, 211)
    replies: list[Response] = await asyncio.gather(
        *(api.request("POST", f"/appointments/{aid}/pay", token=token) for _ in range(50))
    )
    assert {r.status for r in replies} == {200}, [r.body for r in replies if r.status != 200]
    assert len({r.body["package"] for r in replies}) == 1
    assert (
        len([o for o in (await fake.orders())["orders"] if o["out_trade_no"] == order_id_for(aid)])
        == 1
    )
    other_token, _ = await patient(api, 212)
    theirs = await api.request("POST", f"/appointments/{aid}/pay", token=other_token)
    assert theirs.status == 404


async def test_staff_see_the_day_of_payments_of_their_hospital_only(
    api: Api, fake: PayFakeControl
) -> None:
    h, other = await paying_hospital(api), await paying_hospital(api)
    token, aid, _ = await cancel_paid(api, h, 213, fake)
    resp = await api.request("GET", f"/admin/hospitals/{h.id}/payments", token=h.staff_token)
    assert resp.status == 200, resp.body
    (item,) = resp.body["items"]
    assert (item["order_id"], item["status"], item["amount_cents"]) == (
        order_id_for(aid),
        "paid",
        5000,
    )
    assert resp.body["totals"]["paid_cents"] == 5000
    paid = await api.request(
        "GET",
        f"/admin/hospitals/{h.id}/payments",
        token=h.staff_token,
        params={"status": "refunded"},
    )
    assert paid.status == 200 and paid.body["items"] == []
    bad = await api.request(
        "GET", f"/admin/hospitals/{h.id}/payments", token=h.staff_token, params={"status": "bogus"}
    )
    assert bad.status == 422
    foreign = await api.request("GET", f"/admin/hospitals/{h.id}/payments", token=other.staff_token)
    assert foreign.status == 404
    mine = await api.request("GET", f"/admin/hospitals/{h.id}/payments", token=token)
    assert mine.status == 403


async def test_a_flash_crowd_never_oversells_and_releases_every_unpaid_unit(
    api: Api, fake: PayFakeControl
) -> None:
    """60 patients at once for 20 numbers; half of the winners never pay."""
    h = await paying_hospital(api)
    date, session = next_session(h)
    schedule = await make_schedule(
        api,
        h,
        capacity=20,
        date=date,
        session=session,
        starts=("08:00",) if session == "am" else ("14:00",),
    )
    slot = schedule["slots"][0]["id"]
    patients = await asyncio.gather(*(patient(api, 300 + n) for n in range(60)))
    # as the mini-program's confirm page does before the tap
    checks = await asyncio.gather(
        *(
            api.request(
                "GET",
                "/appointments/eligibility",
                token=t,
                params={"slot_id": slot, "patient_id": p},
            )
            for t, p in patients
        )
    )
    assert {c.status for c in checks} == {200}

    async def tap_book(token: str, pid: str) -> Response:
        key = uuid.uuid4().hex  # a 503 (overloaded box) is retried with the same key
        for _ in range(5):
            resp = await book(api, token, slot, pid, key)
            if resp.status != 503:
                return resp
            await asyncio.sleep(0.5)
        return resp

    replies = await asyncio.gather(*(tap_book(t, p) for t, p in patients))
    won = [
        (t, r.body["id"])
        for (t, _), r in zip(patients, replies, strict=True)
        if r.status in (200, 201)
    ]
    assert len(won) == 20, [r.body for r in replies if r.status not in (200, 201, 409)]
    assert {r.error_code for r in replies if r.status not in (200, 201)} == {"SLOT_FULL"}
    assert await remaining(api, h, slot) == 0
    payers, idle = won[:10], won[10:]
    for token, aid in payers:
        await fake.pay(**await tap(api, token, aid))
    for token, aid in payers:
        await until(api, token, aid, "booked", "paid")
    for token, aid in idle:
        await until(api, token, aid, "cancelled", "closed")
    assert await remaining(api, h, slot) == 10
    staff = await api.request(
        "GET",
        f"/admin/hospitals/{h.id}/appointments",
        token=h.staff_token,
        params={"schedule_id": schedule["id"]},
    )
    statuses = [a["status"] for a in staff.body["items"]]
    assert statuses.count("booked") == 10 and statuses.count("cancelled") == 10
