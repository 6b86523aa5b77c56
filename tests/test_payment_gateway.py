"""The gateway's side of the registration fee, without a broker: WeChat Pay's notification
reaches the payment service byte for byte (the signature covers the bytes), capped, without
a token; 204 only once payment stored it, its 401 passed on; the patient and staff routes."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.testing import FakeRpc, TokenSigner, bearer
from shared.contracts.payment import MAX_NOTIFICATION_BYTES, NotificationParams
from shared.errors import Unauthenticated

pytest_plugins = ["tests.gateway_fixtures"]

NOTIFY = "/api/v1/payments/wechat/notify"
# key order, spacing and escapes a JSON round trip would change
RAW = b'{"id":"EV-1", "create_time":"2026-12-01T08:00:00+08:00","summary":"\\u652f\\u4ed8"}'
SIGNED = {
    "Wechatpay-Serial": "PUB_KEY_ID_01",
    "Wechatpay-Signature": "c2ln",
    "Wechatpay-Timestamp": "1764547200",
    "Wechatpay-Nonce": "abc",
    "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
}


async def test_a_notification_is_forwarded_byte_for_byte(
    client: TestClient[Any, Any], rpc: FakeRpc
) -> None:
    rpc.on("payment", "notify", {})
    resp = await client.post(
        NOTIFY, data=RAW, headers={**SIGNED, "Content-Type": "application/json", "Cookie": "x=1"}
    )
    assert resp.status == 204 and await resp.read() == b""
    (call,) = rpc.calls_to("notify")
    params = NotificationParams.model_validate(call.params)
    assert base64.b64decode(params.body_b64) == RAW
    assert params.headers == {**SIGNED, "Content-Type": "application/json"}
    assert call.caller is None


async def test_an_unverifiable_notification_is_a_401(
    client: TestClient[Any, Any], rpc: FakeRpc
) -> None:
    rpc.on("payment", "notify", Unauthenticated("通知验签失败 / notification not verified"))
    resp = await client.post(NOTIFY, data=RAW, headers=SIGNED)
    assert resp.status == 401


async def test_an_oversized_notification_never_reaches_payment(
    client: TestClient[Any, Any], rpc: FakeRpc
) -> None:
    rpc.on("payment", "notify", {})

    async def chunks() -> Any:  # no Content-Length: only counting the bytes catches it
        for _ in range(MAX_NOTIFICATION_BYTES // 1024 + 2):
            yield b"x" * 1024

    resp = await client.post(NOTIFY, data=chunks(), headers=SIGNED)
    assert resp.status == 413
    assert rpc.calls_to("notify") == []


async def test_pay_is_for_patients_and_the_day_for_the_hospital_s_admins(
    client: TestClient[Any, Any], rpc: FakeRpc, signer: TokenSigner
) -> None:
    args = {
        "timeStamp": "1",
        "nonceStr": "n",
        "package": "prepay_id=wx1",
        "signType": "RSA",
        "paySign": "s",
    }
    rpc.on("payment", "pay", args)
    rpc.on(
        "payment",
        "list_payments",
        {
            "date": "2026-12-01",
            "items": [],
            "totals": {"orders": 0, "paid_cents": 0, "refunded_cents": 0, "net_cents": 0},
        },
    )
    paid = await client.post("/api/v1/appointments/apt_1/pay", headers=bearer(signer.token("u_1")))
    assert paid.status == 200 and await paid.json() == args
    assert rpc.calls_to("pay")[0].params == {"appointment_id": "apt_1"}
    staff = await client.post(
        "/api/v1/appointments/apt_1/pay",
        headers=bearer(signer.token("s_1", "hospital_admin", "h_1")),
    )
    assert staff.status == 403
    day = await client.get(
        "/api/v1/admin/hospitals/h_1/payments?date=2026-12-01",
        headers=bearer(signer.token("s_1", "hospital_admin", "h_1")),
    )
    assert day.status == 200
    other = await client.get(
        "/api/v1/admin/hospitals/h_2/payments",
        headers=bearer(signer.token("s_1", "hospital_admin", "h_1")),
    )
    assert other.status == 404
    bad = await client.get(
        "/api/v1/admin/hospitals/h_1/payments?date=2026-13-01",
        headers=bearer(signer.token("s_1", "hospital_admin", "h_1")),
    )
    assert bad.status == 422


async def test_the_openapi_document_lists_the_payment_endpoints(
    client: TestClient[Any, Any],
) -> None:
    paths = (await (await client.get("/api/v1/openapi.json")).json())["paths"]
    assert "post" in paths[NOTIFY]
    assert "post" in paths["/api/v1/appointments/{appointment_id}/pay"]
    assert "get" in paths["/api/v1/admin/hospitals/{hospital_id}/payments"]
