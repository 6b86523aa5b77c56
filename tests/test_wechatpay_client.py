"""The WeChat Pay v3 client against the pay fake, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shared.settings import Settings
from shared.wechat.pay import (
    InvalidNotification,
    PayRejected,
    PayUnavailable,
    WeChatPay,
    _order_of,  # the reply parser, on its own
    platform_certificates_of,
    validate_notify_url,
)

if TYPE_CHECKING:  # the kit is a pytest plugin: importing it would skip assert rewriting
    from tests.payfake_kit import NotifySink, PayFake

pytest_plugins = ["tests.payfake_kit"]


EXPIRE = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)  # one value: prepay is idempotent


async def prepay(pay: WeChatPay, no: str = "GH20261201000001", fen: int = 1500) -> str:
    return await pay.jsapi_prepay(
        out_trade_no=no,
        description="挂号费-心内科",
        amount_fen=fen,
        payer_openid="o_patient_1",
        time_expire=EXPIRE,
    )


async def paid_order(
    pay: WeChatPay, payfake: PayFake, no: str = "GH20261201000001", fen: int = 1500
) -> str:
    prepay_id = await prepay(pay, no, fen)
    await payfake.pay(**pay.jsapi_pay_args(prepay_id))
    return prepay_id


async def test_prepay_gives_the_exact_request_payment_arguments(
    wechatpay: WeChatPay, payfake: PayFake, pay_credentials: dict[str, str]
) -> None:
    prepay_id = await prepay(wechatpay)
    args = wechatpay.jsapi_pay_args(prepay_id)
    assert set(args) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert args["package"] == f"prepay_id={prepay_id}" and args["signType"] == "RSA"
    assert abs(int(args["timeStamp"]) - time.time()) < 60 and len(args["nonceStr"]) == 32
    # checked here with cryptography directly, not with the code under test
    merchant = serialization.load_pem_public_key(
        pay_credentials["merchant_public_key_pem"].encode()
    )
    assert isinstance(merchant, rsa.RSAPublicKey)
    message = (
        f"{pay_credentials['appid']}\n{args['timeStamp']}\n{args['nonceStr']}\n{args['package']}\n"
    ).encode()
    merchant.verify(base64.b64decode(args["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())

    order = await wechatpay.query_order("GH20261201000001")
    assert (order.trade_state, order.amount_fen, order.transaction_id) == ("NOTPAY", 1500, None)
    paid = await payfake.pay(**args)
    order = await wechatpay.query_order("GH20261201000001")
    assert order.trade_state == "SUCCESS" and order.amount_fen == 1500
    assert order.transaction_id == paid["transaction_id"] and order.success_time is not None
    assert order.payer_openid == "o_patient_1"


async def test_prepay_is_idempotent_and_refuses_a_reused_number(wechatpay: WeChatPay) -> None:
    first = await prepay(wechatpay)
    assert await prepay(wechatpay) == first
    with pytest.raises(PayRejected) as refused:
        await prepay(wechatpay, fen=1600)
    assert (refused.value.status, refused.value.code) == (400, "INVALID_REQUEST")


async def test_query_of_an_unknown_order_is_rejected(wechatpay: WeChatPay) -> None:
    with pytest.raises(PayRejected) as refused:
        await wechatpay.query_order("GH_NO_SUCH_ORDER")
    assert (refused.value.status, refused.value.code) == (404, "ORDER_NOT_EXIST")


async def test_close_twice_is_fine_and_a_closed_order_cannot_be_prepaid_or_paid(
    wechatpay: WeChatPay, payfake: PayFake
) -> None:
    prepay_id = await prepay(wechatpay)
    await wechatpay.close_order("GH20261201000001")
    await wechatpay.close_order("GH20261201000001")
    assert (await wechatpay.query_order("GH20261201000001")).trade_state == "CLOSED"
    with pytest.raises(PayRejected) as refused:
        await prepay(wechatpay)
    assert refused.value.code == "ORDER_CLOSED"
    reply = await payfake.pay(expect=400, **wechatpay.jsapi_pay_args(prepay_id))
    assert reply["code"] == "ORDER_CLOSED"


async def test_closing_a_paid_order_is_refused(wechatpay: WeChatPay, payfake: PayFake) -> None:
    await paid_order(wechatpay, payfake)
    with pytest.raises(PayRejected) as refused:
        await wechatpay.close_order("GH20261201000001")
    assert refused.value.code == "ORDERPAID"
    with pytest.raises(PayRejected) as again:
        await prepay(wechatpay)
    assert again.value.code == "ORDERPAID"
    assert (await wechatpay.query_order("GH20261201000001")).trade_state == "SUCCESS"


async def wait_refund(pay: WeChatPay, out_refund_no: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while (await pay.query_refund(out_refund_no)).status != status:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_refund_same_number_is_the_same_refund(
    wechatpay: WeChatPay, payfake: PayFake
) -> None:
    await paid_order(wechatpay, payfake)
    refund = await wechatpay.refund(
        out_trade_no="GH20261201000001",
        out_refund_no="RF1",
        refund_fen=500,
        total_fen=1500,
        reason="患者取消",
    )
    assert refund.status in ("PROCESSING", "SUCCESS")
    assert (refund.refund_fen, refund.total_fen) == (500, 1500)
    again = await wechatpay.refund(
        out_trade_no="GH20261201000001",
        out_refund_no="RF1",
        refund_fen=500,
        total_fen=1500,
        reason="患者取消",
    )
    assert again.refund_id == refund.refund_id
    await wait_refund(wechatpay, "RF1", "SUCCESS")
    assert (await wechatpay.query_refund("RF1")).success_time is not None
    assert (await wechatpay.query_order("GH20261201000001")).trade_state == "REFUND"
    with pytest.raises(PayRejected) as over:
        await wechatpay.refund(
            out_trade_no="GH20261201000001",
            out_refund_no="RF2",
            refund_fen=1001,
            total_fen=1500,
            reason="",
        )
    assert (over.value.status, over.value.code) == (400, "INVALID_REQUEST")
    rest = await wechatpay.refund(
        out_trade_no="GH20261201000001",
        out_refund_no="RF2",
        refund_fen=1000,
        total_fen=1500,
        reason="",
    )
    assert rest.refund_id != refund.refund_id
    assert len((await payfake.orders("GH20261201000001"))["orders"][0]["refunds"]) == 2


async def test_refund_query_of_an_unknown_refund_is_rejected(wechatpay: WeChatPay) -> None:
    with pytest.raises(PayRejected) as refused:
        await wechatpay.query_refund("RF_NONE")
    assert (refused.value.status, refused.value.code) == (404, "RESOURCE_NOT_EXISTS")


async def test_a_failed_refund_retried_with_the_same_number_refunds_once(
    wechatpay: WeChatPay, payfake: PayFake
) -> None:
    await paid_order(wechatpay, payfake)
    await payfake.behave(fail_next_refund="system_error")
    with pytest.raises(PayUnavailable):
        await wechatpay.refund(
            out_trade_no="GH20261201000001",
            out_refund_no="RF1",
            refund_fen=1500,
            total_fen=1500,
            reason="停诊",
        )
    refund = await wechatpay.refund(
        out_trade_no="GH20261201000001",
        out_refund_no="RF1",
        refund_fen=1500,
        total_fen=1500,
        reason="停诊",
    )
    await wait_refund(wechatpay, "RF1", "SUCCESS")
    assert [
        r["refund_id"] for r in (await payfake.orders("GH20261201000001"))["orders"][0]["refunds"]
    ] == [refund.refund_id]


async def test_payment_notification_verifies_and_decrypts(
    wechatpay: WeChatPay, payfake: PayFake, notify_sink: NotifySink
) -> None:
    await paid_order(wechatpay, payfake)
    [(headers, body)] = await notify_sink.wait_for(1)
    note = wechatpay.parse_notification(headers, body)
    assert note.event_type == "TRANSACTION.SUCCESS" and note.refund is None
    assert note.order is not None and note.order.trade_state == "SUCCESS"
    assert note.order.out_trade_no == "GH20261201000001" and note.order.amount_fen == 1500
    query = await wechatpay.query_order("GH20261201000001")
    assert note.order.transaction_id == query.transaction_id
    lowered = {key.lower(): value for key, value in headers.items()}
    assert wechatpay.parse_notification(lowered, body).id == note.id


async def test_refund_notification_verifies_and_decrypts(
    wechatpay: WeChatPay, payfake: PayFake, notify_sink: NotifySink
) -> None:
    await paid_order(wechatpay, payfake)
    await wechatpay.refund(
        out_trade_no="GH20261201000001",
        out_refund_no="RF1",
        refund_fen=1500,
        total_fen=1500,
        reason="",
    )
    _, (headers, body) = await notify_sink.wait_for(2)
    note = wechatpay.parse_notification(headers, body)
    assert note.event_type == "REFUND.SUCCESS" and note.order is None
    assert note.refund is not None
    assert (note.refund.out_refund_no, note.refund.status, note.refund.refund_fen) == (
        "RF1",
        "SUCCESS",
        1500,
    )


@pytest.mark.parametrize("outcome", ["abnormal", "closed"])
async def test_a_refund_that_fails_later_is_notified(
    wechatpay: WeChatPay, payfake: PayFake, notify_sink: NotifySink, outcome: str
) -> None:
    await paid_order(wechatpay, payfake)
    await payfake.behave(fail_next_refund=outcome)
    await wechatpay.refund(
        out_trade_no="GH20261201000001",
        out_refund_no="RF1",
        refund_fen=1500,
        total_fen=1500,
        reason="",
    )
    _, (headers, body) = await notify_sink.wait_for(2)
    note = wechatpay.parse_notification(headers, body)
    assert note.event_type == f"REFUND.{outcome.upper()}"
    assert note.refund is not None and note.refund.status == outcome.upper()
    assert (await wechatpay.query_refund("RF1")).status == outcome.upper()
    retry = wechatpay.refund(
        out_trade_no="GH20261201000001",
        out_refund_no="RF2",
        refund_fen=1500,
        total_fen=1500,
        reason="",
    )
    if outcome == "closed":  # a closed refund gave the money back to the refundable amount
        assert (await retry).refund_fen == 1500
    else:
        with pytest.raises(PayRejected):
            await retry


async def test_notification_sent_twice_parses_to_the_same_event(
    wechatpay: WeChatPay, payfake: PayFake, notify_sink: NotifySink
) -> None:
    await payfake.behave(notify="twice")
    await paid_order(wechatpay, payfake)
    first, second = await notify_sink.wait_for(2)
    a, b = (wechatpay.parse_notification(*first), wechatpay.parse_notification(*second))
    assert a.id == b.id and a.order == b.order


@pytest.mark.parametrize("mode", ["bad_signature", "tampered"])
async def test_forged_or_tampered_notification_is_refused(
    wechatpay: WeChatPay, payfake: PayFake, notify_sink: NotifySink, mode: str
) -> None:
    await payfake.behave(notify=mode)
    await paid_order(wechatpay, payfake)
    [(headers, body)] = await notify_sink.wait_for(1)
    with pytest.raises(InvalidNotification):
        wechatpay.parse_notification(headers, body)


async def test_one_changed_byte_or_header_makes_a_notification_invalid(
    wechatpay: WeChatPay, payfake: PayFake, notify_sink: NotifySink, pay_credentials: dict[str, str]
) -> None:
    await paid_order(wechatpay, payfake)
    [(headers, body)] = await notify_sink.wait_for(1)
    wechatpay.parse_notification(headers, body)
    for at in (0, len(body) // 2, len(body) - 2):
        changed = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
        with pytest.raises(InvalidNotification):
            wechatpay.parse_notification(headers, changed)
    # a framework that re-serialises the JSON breaks the signature: never accepted
    with pytest.raises(InvalidNotification):
        wechatpay.parse_notification(headers, json.dumps(json.loads(body)).encode())
    for name, value in (
        ("Wechatpay-Serial", pay_credentials["platform_serial"]),
        ("Wechatpay-Serial", "PUB_KEY_ID_0000"),
        ("Wechatpay-Nonce", "another"),
        ("Wechatpay-Timestamp", str(int(time.time()) - 1)),
        ("Wechatpay-Signature", ""),
        ("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3"),
    ):
        with pytest.raises(InvalidNotification):
            wechatpay.parse_notification({**headers, name: value}, body)
    missing = {k: v for k, v in headers.items() if k.lower() != "wechatpay-signature"}
    with pytest.raises(InvalidNotification):
        wechatpay.parse_notification(missing, body)


async def test_stale_notification_is_refused(
    payfake: PayFake, wechatpay: WeChatPay, notify_sink: NotifySink
) -> None:
    await paid_order(wechatpay, payfake)
    [(headers, body)] = await notify_sink.wait_for(1)
    later = payfake.client(notify_sink.url, clock=lambda: time.time() + 400)
    earlier = payfake.client(notify_sink.url, clock=lambda: time.time() - 400)
    for client in (later, earlier):
        with pytest.raises(InvalidNotification):
            client.parse_notification(headers, body)
    assert (
        payfake.client(notify_sink.url, clock=lambda: time.time() + 200)
        .parse_notification(headers, body)
        .order
        is not None
    )


async def test_a_notification_for_another_merchant_is_refused(
    payfake: PayFake, notify_sink: NotifySink, wechatpay: WeChatPay
) -> None:
    await paid_order(wechatpay, payfake)
    [(headers, body)] = await notify_sink.wait_for(1)
    other = payfake.client(notify_sink.url, mchid="1900000000")
    with pytest.raises(InvalidNotification):
        other.parse_notification(headers, body)


async def test_platform_certificate_serial_is_accepted_during_a_switch_over(
    payfake: PayFake, notify_sink: NotifySink, pay_credentials: dict[str, str]
) -> None:
    plain = payfake.client(notify_sink.url)
    switching = payfake.client(
        notify_sink.url,
        platform_certificates={
            pay_credentials["platform_serial"]: pay_credentials["platform_certificate_pem"]
        },
    )
    try:
        await payfake.behave(switch_serial=True)
        prepay_id = await prepay(switching)
        with pytest.raises(PayUnavailable):
            await plain.query_order("GH20261201000001")
        await payfake.pay(**switching.jsapi_pay_args(prepay_id))
        [(headers, body)] = await notify_sink.wait_for(1)
        assert headers["Wechatpay-Serial"] == pay_credentials["platform_serial"]
        assert switching.parse_notification(headers, body).order is not None
        with pytest.raises(InvalidNotification):
            plain.parse_notification(headers, body)
        await payfake.behave(switch_serial=False)
        assert (await switching.query_order("GH20261201000001")).trade_state == "SUCCESS"
    finally:
        await plain.close()
        await switching.close()


async def test_configured_platform_certificates_verify_after_a_switch(
    payfake: PayFake, notify_sink: NotifySink, pay_credentials: dict[str, str]
) -> None:
    creds = pay_credentials
    settings = Settings.from_env(
        {
            "WECHATPAY_API_BASE": payfake.url,
            "WECHATPAY_MCHID": creds["mchid"],
            "WECHATPAY_MERCHANT_SERIAL": creds["merchant_serial"],
            "WECHATPAY_MERCHANT_KEY": creds["merchant_key_pem"],
            "WECHATPAY_APIV3_KEY": creds["apiv3_key"],
            "WECHATPAY_PUBLIC_KEY": creds["public_key_pem"],
            "WECHATPAY_PUBLIC_KEY_ID": creds["public_key_id"],
            "WECHATPAY_NOTIFY_URL": notify_sink.url,
            "WECHAT_APPID": creds["appid"],
            "WECHATPAY_PLATFORM_CERTIFICATES": creds["platform_certificate_pem"],
        }
    )
    client = WeChatPay.from_settings(settings)
    try:
        await payfake.behave(switch_serial=True)
        await prepay(client)
        assert (await client.query_order("GH20261201000001")).trade_state == "NOTPAY"
    finally:
        await client.close()


async def test_a_response_with_a_bad_signature_is_never_trusted(
    wechatpay: WeChatPay, payfake: PayFake
) -> None:
    await prepay(wechatpay)
    await payfake.behave(forge_responses=True)
    with pytest.raises(PayUnavailable):
        await wechatpay.query_order("GH20261201000001")
    with pytest.raises(PayUnavailable):  # an error reply is not trusted either
        await wechatpay.query_order("GH_NO_SUCH_ORDER")
    await payfake.behave(forge_responses=False)
    assert (await wechatpay.query_order("GH20261201000001")).trade_state == "NOTPAY"


async def test_responses_signed_by_another_key_are_never_trusted(
    payfake: PayFake, notify_sink: NotifySink, pay_credentials: dict[str, str]
) -> None:
    impostor = payfake.client(
        notify_sink.url, public_key_pem=pay_credentials["merchant_public_key_pem"]
    )
    try:
        with pytest.raises(PayUnavailable):
            await prepay(impostor)
    finally:
        await impostor.close()


async def test_timeout_and_refused_connection_are_unavailable(
    payfake: PayFake, notify_sink: NotifySink
) -> None:
    quick = payfake.client(notify_sink.url, timeout=0.3)
    gone = payfake.client(notify_sink.url, api_base="http://127.0.0.1:9")
    try:
        await payfake.behave(slow=5)
        with pytest.raises(PayUnavailable):
            await quick.query_order("GH20261201000001")
        with pytest.raises(PayUnavailable):
            await gone.query_order("GH20261201000001")
    finally:
        await payfake.behave(slow=0)
        await quick.close()
        await gone.close()


async def test_the_merchant_signature_must_match_the_fake(
    payfake: PayFake, notify_sink: NotifySink
) -> None:
    wrong_serial = payfake.client(notify_sink.url, merchant_serial="0" * 40)
    try:
        with pytest.raises(PayRejected) as refused:
            await prepay(wrong_serial)
        assert (refused.value.status, refused.value.code) == (401, "SIGN_ERROR")
    finally:
        await wrong_serial.close()


def test_notify_url_must_be_https_except_on_loopback() -> None:
    assert validate_notify_url("https://pay.example.org/api/v1/payments/wechat/notify")
    assert validate_notify_url("http://127.0.0.1:8080/api/v1/payments/wechat/notify")
    for bad in (
        "http://pay.example.org/notify",
        "ftp://127.0.0.1/x",
        "/notify",
        "https://pay.example.org/notify?x=1",
    ):
        with pytest.raises(ValueError):
            validate_notify_url(bad)
    with pytest.raises(ValueError):
        Settings.from_env({"WECHATPAY_NOTIFY_URL": "http://10.0.0.1/notify"})
    with pytest.raises(ValueError):
        Settings.from_env({"WECHATPAY_APIV3_KEY": "short"})


def test_from_settings_reads_pems_inline_or_from_files(
    pay_credentials: dict[str, str], tmp_path: Any
) -> None:
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_text(pay_credentials["merchant_key_pem"])
    settings = Settings.from_env(
        {
            "WECHATPAY_API_BASE": "http://127.0.0.1:1",
            "WECHATPAY_MCHID": pay_credentials["mchid"],
            "WECHATPAY_MERCHANT_SERIAL": pay_credentials["merchant_serial"],
            "WECHATPAY_MERCHANT_KEY": str(key_file),
            "WECHATPAY_APIV3_KEY": pay_credentials["apiv3_key"],
            "WECHATPAY_PUBLIC_KEY": pay_credentials["public_key_pem"],
            "WECHATPAY_PUBLIC_KEY_ID": pay_credentials["public_key_id"],
            "WECHATPAY_NOTIFY_URL": "https://pay.example.org/api/v1/payments/wechat/notify",
        }
    )
    client = WeChatPay.from_settings(settings)
    assert client.mchid == pay_credentials["mchid"] and client.appid == settings.wechat_appid
    assert platform_certificates_of(None) == {}
    cert_file = tmp_path / "wechatpay_platform.pem"
    cert_file.write_text(pay_credentials["platform_certificate_pem"])
    for given in (pay_credentials["platform_certificate_pem"], f" {cert_file} ,"):
        assert platform_certificates_of(given) == {
            pay_credentials["platform_serial"]: pay_credentials["platform_certificate_pem"].strip()
        }
    with pytest.raises(ValueError):
        platform_certificates_of(pay_credentials["public_key_pem"])
    with pytest.raises(ValueError, match="WECHATPAY_MCHID"):
        WeChatPay.from_settings(Settings())


def test_order_replies_are_typed_strictly_where_money_is_concerned() -> None:
    unpaid = _order_of({"out_trade_no": "GH1", "trade_state": "NOTPAY"})
    assert unpaid.amount_fen is None and unpaid.transaction_id is None
    paid = {
        "out_trade_no": "GH1",
        "trade_state": "SUCCESS",
        "transaction_id": "42",
        "success_time": "2026-12-01T10:00:00+08:00",
        "amount": {"total": 1500},
    }
    assert _order_of(paid).amount_fen == 1500
    for broken in (
        {**paid, "amount": {}},
        {**paid, "amount": {"total": "1500"}},
        {**paid, "amount": {"total": 15.0}},
        {**paid, "transaction_id": ""},
        {**paid, "trade_state": "PAID"},
    ):
        with pytest.raises(ValueError):
            _order_of(broken)
