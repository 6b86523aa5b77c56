"""The WeChat Pay fake refuses what WeChat Pay refuses, and signs what it answers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from shared.devstack import DevStack
from shared.settings import Settings
from shared.wechat import paycrypto
from shared.wechat.pay import PayRejected, WeChatPay

if TYPE_CHECKING:  # the kit is a pytest plugin: importing it would skip assert rewriting
    from tests.payfake_kit import NotifySink, PayFake

pytest_plugins = ["tests.payfake_kit"]

JSAPI = "/v3/pay/transactions/jsapi"
REFUNDS = "/v3/refund/domestic/refunds"
EXPIRE = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)  # one value: prepay is idempotent


async def call(
    payfake: PayFake,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    mchid: str | None = None,
    serial: str | None = None,
    key_pem: str | None = None,
    skew: int = 0,
    scheme: str | None = None,
    signed_body: bytes | None = None,
    signed_path: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """A request to the fake, signed like a merchant unless told otherwise; the reply
    (whose signature is checked here too)."""
    creds = payfake.creds
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    stamp = int(time.time()) + skew
    auth = paycrypto.authorization(
        paycrypto.load_private_key(key_pem or creds["merchant_key_pem"]),
        mchid=mchid or creds["mchid"],
        serial=serial or creds["merchant_serial"],
        method=method,
        url=signed_path or path,
        body=data if signed_body is None else signed_body,
        timestamp=stamp,
        nonce_str=paycrypto.nonce(),
    )
    if scheme is not None:
        auth = scheme + auth[len(paycrypto.AUTH_SCHEME) :]
    sent = {
        "Authorization": auth,
        "Accept": "application/json",
        "Content-Type": "application/json",
        **(headers or {}),
    }
    sent = {k: v for k, v in sent.items() if v}
    async with payfake.http.request(
        method, payfake.url + path, data=data or None, headers=sent
    ) as resp:
        reply_raw = await resp.read()
        message = paycrypto.signing_message(
            resp.headers["Wechatpay-Timestamp"], resp.headers["Wechatpay-Nonce"], reply_raw
        )
        assert resp.headers["Wechatpay-Serial"] == creds["public_key_id"]
        assert paycrypto.rsa_verify(
            paycrypto.load_public_key(creds["public_key_pem"]),
            message,
            resp.headers["Wechatpay-Signature"],
        )
        return resp.status, (json.loads(reply_raw) if reply_raw else {})


def order_body(payfake: PayFake, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appid": payfake.creds["appid"],
        "mchid": payfake.creds["mchid"],
        "description": "挂号费",
        "out_trade_no": "GH_FAKE_0001",
        "time_expire": paycrypto.rfc3339(EXPIRE),
        "notify_url": "https://pay.example.org/api/v1/payments/wechat/notify",
        "amount": {"total": 1500, "currency": "CNY"},
        "payer": {"openid": "o_patient"},
    }
    body.update(changes)
    return body


async def test_a_signed_order_is_accepted(payfake: PayFake) -> None:
    status, reply = await call(payfake, "POST", JSAPI, order_body(payfake))
    assert status == 200 and reply["prepay_id"].startswith("wx")


@pytest.mark.parametrize(
    "case",
    [
        "unsigned",
        "scheme",
        "mchid",
        "serial",
        "stale",
        "future",
        "other_key",
        "body",
        "path",
    ],
)
async def test_requests_not_signed_by_the_merchant_are_refused(
    payfake: PayFake, pay_credentials: dict[str, str], case: str
) -> None:
    body = order_body(payfake)
    cases: dict[str, dict[str, Any]] = {
        "unsigned": {"headers": {"Authorization": ""}},
        "scheme": {"scheme": "WECHATPAY2-SHA256-RSA"},
        "mchid": {"mchid": "1900000000"},
        "serial": {"serial": "0" * 40},
        "stale": {"skew": -400},
        "future": {"skew": 400},
        "other_key": {"key_pem": pay_credentials["wechatpay_private_key_pem"]},
        "body": {"signed_body": json.dumps({**body, "amount": {"total": 1}}).encode()},
        "path": {"signed_path": JSAPI + "?x=1"},
    }
    status, reply = await call(payfake, "POST", JSAPI, body, **cases[case])
    assert (status, reply["code"]) == (401, "SIGN_ERROR")
    assert payfake.state.orders == {}


async def test_query_signature_covers_the_query_string(payfake: PayFake) -> None:
    await call(payfake, "POST", JSAPI, order_body(payfake))
    path = f"/v3/pay/transactions/out-trade-no/GH_FAKE_0001?mchid={payfake.creds['mchid']}"
    assert (await call(payfake, "GET", path))[0] == 200
    status, reply = await call(payfake, "GET", path, signed_path=path.split("?")[0])
    assert (status, reply["code"]) == (401, "SIGN_ERROR")
    status, reply = await call(payfake, "GET", path.split("?")[0])
    assert (status, reply["code"], reply["detail"]["field"]) == (400, "PARAM_ERROR", "mchid")


async def test_accept_and_content_type_must_be_json(payfake: PayFake) -> None:
    status, reply = await call(
        payfake, "POST", JSAPI, order_body(payfake), headers={"Accept": "text/html"}
    )
    assert (status, reply["code"]) == (400, "INVALID_REQUEST")
    status, reply = await call(
        payfake, "POST", JSAPI, order_body(payfake), headers={"Content-Type": "text/plain"}
    )
    assert (status, reply["code"]) == (400, "INVALID_REQUEST")
    status, reply = await call(payfake, "POST", JSAPI, raw=b"{not json")
    assert (status, reply["code"]) == (400, "PARAM_ERROR")


PAST = paycrypto.rfc3339(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
INVALID_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("appid", {"appid": None}),
    ("mchid", {"mchid": ""}),
    ("description", {"description": ""}),
    ("description", {"description": "挂" * 43}),  # 129 bytes
    ("out_trade_no", {"out_trade_no": "12345"}),
    ("out_trade_no", {"out_trade_no": "1" * 33}),
    ("out_trade_no", {"out_trade_no": "GH#000001"}),
    ("out_trade_no", {"out_trade_no": 12345678}),
    ("time_expire", {"time_expire": "2026-12-01 10:00:00"}),
    ("time_expire", {"time_expire": "20261201100000"}),
    ("time_expire", {"time_expire": PAST}),
    ("notify_url", {"notify_url": "http://pay.example.org/notify"}),
    ("notify_url", {"notify_url": "https://pay.example.org/notify?order=1"}),
    ("notify_url", {"notify_url": "notify"}),
    ("notify_url", {"notify_url": None}),
    ("amount", {"amount": 1500}),
    ("amount.total", {"amount": {"total": 0, "currency": "CNY"}}),
    ("amount.total", {"amount": {"total": -100, "currency": "CNY"}}),
    ("amount.total", {"amount": {"total": 15.5, "currency": "CNY"}}),
    ("amount.total", {"amount": {"total": "1500", "currency": "CNY"}}),
    ("amount.total", {"amount": {"total": True, "currency": "CNY"}}),
    ("amount.currency", {"amount": {"total": 1500, "currency": "USD"}}),
    ("payer", {"payer": None}),
    ("payer.openid", {"payer": {"openid": ""}}),
]


@pytest.mark.parametrize(("field_name", "change"), INVALID_FIELDS)
async def test_every_invalid_order_field_is_refused_by_name(
    payfake: PayFake, field_name: str, change: dict[str, Any]
) -> None:
    body = {k: v for k, v in order_body(payfake, **change).items() if v is not None}
    status, reply = await call(payfake, "POST", JSAPI, body)
    assert (status, reply["code"], reply["detail"]["field"]) == (400, "PARAM_ERROR", field_name)
    assert field_name in reply["message"]
    assert payfake.state.orders == {}


async def test_another_merchant_or_appid_is_refused(payfake: PayFake) -> None:
    status, reply = await call(payfake, "POST", JSAPI, order_body(payfake, mchid="1900000001"))
    assert (status, reply["code"]) == (400, "MCH_NOT_EXISTS")
    status, reply = await call(payfake, "POST", JSAPI, order_body(payfake, appid="wx_other"))
    assert (status, reply["code"]) == (400, "APPID_MCHID_NOT_MATCH")


async def test_reusing_an_order_number_with_other_parameters_is_refused(payfake: PayFake) -> None:
    first = (await call(payfake, "POST", JSAPI, order_body(payfake)))[1]["prepay_id"]
    assert (await call(payfake, "POST", JSAPI, order_body(payfake)))[1]["prepay_id"] == first
    for change in (
        {"description": "别的"},
        {"amount": {"total": 1, "currency": "CNY"}},
        {"payer": {"openid": "o_other"}},
    ):
        status, reply = await call(payfake, "POST", JSAPI, order_body(payfake, **change))
        assert (status, reply["code"]) == (400, "INVALID_REQUEST")
    assert len(payfake.state.orders) == 1


async def paid(payfake: PayFake, pay: WeChatPay, no: str = "GH_FAKE_0001") -> None:
    prepay_id = await pay.jsapi_prepay(
        out_trade_no=no,
        description="挂号费",
        amount_fen=1500,
        payer_openid="o_patient",
        time_expire=EXPIRE,
    )
    await payfake.pay(prepay_id=prepay_id)


def refund_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "out_trade_no": "GH_FAKE_0001",
        "out_refund_no": "RF_1",
        "reason": "患者取消",
        "amount": {"refund": 1500, "total": 1500, "currency": "CNY"},
    }
    body.update(changes)
    return body


async def test_refunds_are_refused_beyond_what_was_paid(payfake: PayFake) -> None:
    status, reply = await call(payfake, "POST", REFUNDS, refund_body())
    assert (status, reply["code"]) == (404, "RESOURCE_NOT_EXISTS")
    await call(payfake, "POST", JSAPI, order_body(payfake))
    status, reply = await call(payfake, "POST", REFUNDS, refund_body())
    assert (status, reply["code"]) == (400, "INVALID_REQUEST")  # not paid
    await payfake.pay(out_trade_no="GH_FAKE_0001")
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        (
            {"amount": {"refund": 1501, "total": 1500, "currency": "CNY"}},
            400,
            "INVALID_REQUEST",
            None,
        ),
        (
            {"amount": {"refund": 100, "total": 1600, "currency": "CNY"}},
            400,
            "PARAM_ERROR",
            "amount.total",
        ),
        (
            {"amount": {"refund": 0, "total": 1500, "currency": "CNY"}},
            400,
            "PARAM_ERROR",
            "amount.refund",
        ),
        ({"amount": {"refund": 100, "total": 1500}}, 400, "PARAM_ERROR", "amount.currency"),
        ({"out_refund_no": "RF 1"}, 400, "PARAM_ERROR", "out_refund_no"),
        ({"reason": "因" * 27}, 400, "PARAM_ERROR", "reason"),
        ({"notify_url": "http://pay.example.org/n"}, 400, "PARAM_ERROR", "notify_url"),
    ]
    for change, want_status, code, field_name in cases:
        status, reply = await call(payfake, "POST", REFUNDS, refund_body(**change))
        assert (status, reply["code"]) == (want_status, code), change
        if field_name is not None:
            assert reply["detail"]["field"] == field_name
    assert payfake.state.refunds == {}
    part = refund_body(amount={"refund": 1000, "total": 1500, "currency": "CNY"})
    status, first = await call(payfake, "POST", REFUNDS, part)
    assert status == 200 and first["status"] == "PROCESSING"
    assert (await call(payfake, "POST", REFUNDS, part))[1]["refund_id"] == first["refund_id"]
    status, reply = await call(payfake, "POST", REFUNDS, refund_body())  # same no, other amount
    assert (status, reply["code"]) == (400, "INVALID_REQUEST")
    status, reply = await call(
        payfake,
        "POST",
        REFUNDS,
        refund_body(out_refund_no="RF_2", amount={"refund": 501, "total": 1500, "currency": "CNY"}),
    )
    assert (status, reply["code"]) == (400, "INVALID_REQUEST")
    status, reply = await call(
        payfake,
        "POST",
        REFUNDS,
        refund_body(out_refund_no="RF_2", amount={"refund": 500, "total": 1500, "currency": "CNY"}),
    )
    assert status == 200
    assert sum(r.refund for r in payfake.state.refunds.values()) == 1500


async def test_closing_a_paid_order_is_refused(payfake: PayFake, wechatpay: WeChatPay) -> None:
    path = "/v3/pay/transactions/out-trade-no/GH_FAKE_0001/close"
    status, reply = await call(payfake, "POST", path, {"mchid": payfake.creds["mchid"]})
    assert (status, reply["code"]) == (404, "ORDER_NOT_EXIST")
    await paid(payfake, wechatpay)
    status, reply = await call(payfake, "POST", path, {"mchid": payfake.creds["mchid"]})
    assert (status, reply["code"]) == (403, "ORDERPAID")
    assert payfake.state.orders["GH_FAKE_0001"].state == "SUCCESS"


async def test_a_forged_pay_sign_is_refused(
    payfake: PayFake, wechatpay: WeChatPay, pay_credentials: dict[str, str]
) -> None:
    prepay_id = await wechatpay.jsapi_prepay(
        out_trade_no="GH_FAKE_0001",
        description="挂号费",
        amount_fen=1500,
        payer_openid="o_patient",
        time_expire=EXPIRE,
    )
    other = await wechatpay.jsapi_prepay(
        out_trade_no="GH_FAKE_0002",
        description="挂号费",
        amount_fen=1500,
        payer_openid="o_patient",
        time_expire=EXPIRE,
    )
    args = wechatpay.jsapi_pay_args(prepay_id)
    forger = payfake.client(
        wechatpay.notify_url, merchant_key_pem=pay_credentials["wechatpay_private_key_pem"]
    )
    for forged in (
        forger.jsapi_pay_args(prepay_id),
        {**args, "package": f"prepay_id={other}"},
        {**args, "timeStamp": str(int(args["timeStamp"]) + 1)},
        {**args, "nonceStr": args["nonceStr"][::-1]},
        {**args, "signType": "MD5"},
        {**args, "appId": "wx_other"},
        {k: v for k, v in args.items() if k != "paySign"},
    ):
        reply = await payfake.pay(expect=400, **forged)
        assert reply["errMsg"].startswith("requestPayment:fail")
    assert {o.state for o in payfake.state.orders.values()} == {"NOTPAY"}
    reply = await payfake.pay(appId=pay_credentials["appid"], **args)
    assert reply["errMsg"] == "requestPayment:ok"
    assert (await payfake.pay(expect=400, **args))["code"] == "ORDERPAID"


async def test_an_expired_order_cannot_be_paid_unless_forced(
    payfake: PayFake, wechatpay: WeChatPay
) -> None:
    await wechatpay.jsapi_prepay(
        out_trade_no="GH_FAKE_0001",
        description="挂号费",
        amount_fen=1500,
        payer_openid="o_patient",
        time_expire=EXPIRE,
    )
    payfake.state.orders["GH_FAKE_0001"].time_expire = dt.datetime.now(dt.UTC)
    reply = await payfake.pay(expect=400, out_trade_no="GH_FAKE_0001")
    assert reply["code"] == "ORDER_EXPIRED"
    await payfake.pay(out_trade_no="GH_FAKE_0001", force=True)
    assert (await wechatpay.query_order("GH_FAKE_0001")).trade_state == "SUCCESS"


async def deliveries(payfake: PayFake, out_trade_no: str, count: int) -> list[dict[str, Any]]:
    """The first `count` delivery attempts of an order's notifications, once recorded."""
    deadline = time.monotonic() + 10
    while len(found := (await payfake.orders(out_trade_no))["deliveries"]) < count:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.02)
    return list(found[:count])


async def test_unanswered_notifications_are_retried_and_can_be_resent(
    payfake: PayFake, wechatpay: WeChatPay, notify_sink: NotifySink
) -> None:
    notify_sink.status = 500
    await paid(payfake, wechatpay)
    received = await notify_sink.wait_for(3)  # the first try and 2 retries (the kit's setting)
    assert len({body for _, body in received}) == 1
    attempts = await deliveries(payfake, "GH_FAKE_0001", 3)
    assert [d["status"] for d in attempts] == [500, 500, 500]
    await asyncio.sleep(0.3)  # and then it gives up
    assert len(notify_sink.received) == 3
    notify_sink.status = 204
    await payfake.control("renotify", {"out_trade_no": "GH_FAKE_0001"})
    headers, body = (await notify_sink.wait_for(4))[3]
    assert wechatpay.parse_notification(headers, body).event_type == "TRANSACTION.SUCCESS"


async def test_notify_never_and_late(
    payfake: PayFake, wechatpay: WeChatPay, notify_sink: NotifySink
) -> None:
    await payfake.behave(notify="never")
    await paid(payfake, wechatpay, "GH_FAKE_0001")
    await payfake.behave(notify="late", notify_delay=0.3)
    await paid(payfake, wechatpay, "GH_FAKE_0002")
    [(headers, body)] = await notify_sink.wait_for(1)
    note = wechatpay.parse_notification(headers, body)
    assert note.order is not None and note.order.out_trade_no == "GH_FAKE_0002"
    assert [d["status"] for d in await deliveries(payfake, "GH_FAKE_0001", 1)] == ["withheld"]
    # "next" applies to one order only: the third is notified normally
    await paid(payfake, wechatpay, "GH_FAKE_0003")
    await notify_sink.wait_for(2)


async def test_reset_forgets_everything(payfake: PayFake, wechatpay: WeChatPay) -> None:
    await paid(payfake, wechatpay)
    await payfake.behave(slow=0.01, switch_serial=True)
    await payfake.reset()
    assert (await payfake.orders())["orders"] == []
    with pytest.raises(PayRejected):
        await wechatpay.query_order("GH_FAKE_0001")


def test_the_command_line_fake_serves_the_dev_credentials(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared.wechat.payfake",
            "--port",
            "0",
            "--credentials",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "wechatpay-fake listening on http://127.0.0.1:" in line
        creds_file = tmp_path / paycrypto.DEV_CREDENTIALS_FILE
        assert creds_file.stat().st_mode & 0o777 == 0o600
        assert paycrypto.dev_pay_credentials(tmp_path) == json.loads(creds_file.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0


async def test_devstack_configures_the_services_for_its_pay_fake(
    tmp_path: Path, payfake_http: aiohttp.ClientSession
) -> None:
    http = payfake_http
    stack = DevStack(
        tmp_path, env={**os.environ, "WECHAT_APPID": "wx_dev_guahao"}, gateway_port=18080
    )
    stack.gateway_port = 18080
    env: dict[str, str] = {"WECHAT_APPID": "wx_dev_guahao"}
    try:
        await asyncio.to_thread(stack._start_pay_fake, env)
        settings = Settings.from_env(env)
        assert settings.wechatpay_notify_url == (
            "http://127.0.0.1:18080/api/v1/payments/wechat/notify"
        )
        client = WeChatPay.from_settings(settings)
        try:
            with pytest.raises(PayRejected) as refused:  # a verified, signed answer
                await client.query_order("GH_NONE_001")
            assert refused.value.code == "ORDER_NOT_EXIST"
            prepay_id = await client.jsapi_prepay(
                out_trade_no="GH_DEV_0001",
                description="挂号费",
                amount_fen=100,
                payer_openid="o_dev",
                time_expire=EXPIRE,
            )
            stack.env = env
            async with http.post(
                f"{stack.wechatpay_url}/__control/pay", json=client.jsapi_pay_args(prepay_id)
            ) as resp:
                assert resp.status == 200, await resp.text()
            assert (await client.query_order("GH_DEV_0001")).trade_state == "SUCCESS"
        finally:
            await client.close()
    finally:
        proc = stack.procs["wechatpay-fake"]
        stack.stop()
    assert proc.poll() is not None


async def test_undeliverable_notifications_are_recorded_and_given_up(payfake: PayFake) -> None:
    # a notify URL nobody listens on: the attempts are recorded as errors, then given up
    gone = payfake.client("http://127.0.0.1:9/notify")
    try:
        await paid(payfake, gone)
        attempts = await deliveries(payfake, "GH_FAKE_0001", 3)
        assert [d["status"] for d in attempts] == ["ClientConnectorError"] * 3
    finally:
        await gone.close()
