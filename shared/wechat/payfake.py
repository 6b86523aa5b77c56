"""A local stand-in for WeChat Pay API v3 (JSAPI, refunds), plus control endpoints under
/__control/.

It refuses what WeChat Pay refuses (merchant signature, fields, order number reuse, over-
refund, closing a paid order, a forged paySign), signs every response and notification with
its own key (public-key mode, or a platform certificate after `switch_serial`), encrypts
notification resources with the APIv3 key and retries notifications that are not answered
2xx. Run it with

    python -m shared.wechat.payfake --port 0 --credentials .data

(`--credentials` is a credentials JSON file, or a data dir where the dev set is created.)

Control API (JSON, no signature):
- `POST /__control/pay` {prepay_id} | {out_trade_no} | the `wx.requestPayment` arguments
  {appId?, timeStamp, nonceStr, package, signType, paySign} (paySign verified with the
  merchant key; 400 with `errMsg: "requestPayment:fail …"` otherwise); `force: true` pays
  an order past its time_expire. The TRANSACTION.SUCCESS notification follows.
- `POST /__control/behaviour` {notify: normal|twice|late|never|bad_signature|tampered,
  notify_delay, scope: next|global, fail_next_refund: system_error|abnormal|closed, slow,
  switch_serial, forge_responses, refund_delay, notify_retries, notify_retry_delay}.
- `POST /__control/renotify` {out_trade_no | out_refund_no}: send that notification again.
- `GET /__control/orders[?out_trade_no=]`: orders, their refunds and every delivery attempt.
- `POST /__control/reset`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from shared.wechat import paycrypto
from shared.wechat.serving import control_body, serve_until_signalled

MAX_CLOCK_SKEW = 300.0
PREPAY_TTL = 7200.0
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
NOTIFY_MODES = frozenset({"normal", "twice", "late", "never", "bad_signature", "tampered"})
PAID_STATES = frozenset({"SUCCESS", "REFUND"})
TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "订单发生过退款",
}


class FakeError(Exception):
    """A WeChat Pay refusal: HTTP status and a JSON body {code, message[, detail]}."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field_name: str | None = None,
        location: str = "body",
    ) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message
        self.detail = None if field_name is None else {"field": field_name, "location": location}

    def body(self) -> dict[str, Any]:
        reply: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            reply["detail"] = self.detail
        return reply


def param_error(field_name: str, issue: str, location: str = "body") -> FakeError:
    return FakeError(400, "PARAM_ERROR", f"{field_name}: {issue}", field_name, location)


@dataclass
class NotifyMode:
    """How notifications of an order are delivered: normal, twice, late, never,
    bad_signature or tampered (`delay` seconds for late)."""

    mode: str = "normal"
    delay: float = 0.0


@dataclass
class _Order:
    out_trade_no: str
    params: str
    appid: str
    mchid: str
    description: str
    total: int
    openid: str
    notify_url: str
    time_expire: dt.datetime
    prepay_id: str
    prepaid_at: float
    notify: NotifyMode
    state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    refunds: list[str] = field(default_factory=list)


@dataclass
class _Refund:
    out_refund_no: str
    params: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    reason: str
    notify_url: str
    create_time: str
    status: str = "PROCESSING"
    success_time: str | None = None
    outcome: str = "SUCCESS"


class FakeWechatPay:
    """All state of the fake: one merchant's orders, refunds and notification deliveries."""

    def __init__(
        self,
        creds: dict[str, str],
        *,
        notify_retries: int = 3,
        notify_retry_delay: float = 0.2,
        refund_delay: float = 0.2,
    ) -> None:
        self.appid, self.mchid = creds["appid"], creds["mchid"]
        self.merchant_serial = creds["merchant_serial"]
        self.merchant_key = paycrypto.load_public_key(creds["merchant_public_key_pem"])
        self.apiv3_key = creds["apiv3_key"]
        self.public_key_id = creds["public_key_id"]
        self.key = paycrypto.load_private_key(creds["wechatpay_private_key_pem"])
        self.platform_serial = creds["platform_serial"]
        self.platform_key = paycrypto.load_private_key(creds["platform_private_key_pem"])
        self.default_notify_retries = notify_retries
        self.default_notify_retry_delay = notify_retry_delay
        self.default_refund_delay = refund_delay
        self.http: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.reset()

    def reset(self) -> None:
        """Forget orders, refunds, deliveries and every behaviour switch."""
        for task in self.tasks:
            task.cancel()
        self.orders: dict[str, _Order] = {}
        self.by_prepay: dict[str, str] = {}
        self.refunds: dict[str, _Refund] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.global_notify = NotifyMode()
        self.next_notify: NotifyMode | None = None
        self.fail_next_refund: str | None = None
        self.slow = 0.0
        self.switch_serial = False
        self.forge_responses = False
        self.notify_retries = self.default_notify_retries
        self.notify_retry_delay = self.default_notify_retry_delay
        self.refund_delay = self.default_refund_delay

    def signed_headers(self, body: bytes, *, forge: bool = False) -> dict[str, str]:
        """Wechatpay-* headers signing `body` (with the platform key after switch_serial);
        `forge` signs something else, as an attacker without the key would."""
        timestamp, nonce_str = str(int(time.time())), paycrypto.nonce()
        key, serial = (
            (self.platform_key, self.platform_serial)
            if self.switch_serial
            else (self.key, self.public_key_id)
        )
        signed = paycrypto.signing_message(timestamp, nonce_str, body + (b" " if forge else b""))
        return {
            "Wechatpay-Nonce": nonce_str,
            "Wechatpay-Signature": paycrypto.rsa_sign(key, signed),
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": paycrypto.SIGNATURE_TYPE,
        }

    def check_signature(self, request: web.Request, raw: bytes) -> None:
        """The merchant's Authorization header, or 401 SIGN_ERROR."""
        params = paycrypto.parse_authorization(request.headers.get("Authorization", ""))
        if params is None:
            raise FakeError(
                401, "SIGN_ERROR", f"Authorization 缺失或认证类型不是 {paycrypto.AUTH_SCHEME}"
            )
        timestamp, nonce_str = params.get("timestamp", ""), params.get("nonce_str", "")
        if params.get("mchid") != self.mchid:
            raise FakeError(401, "SIGN_ERROR", "商户号 mchid 与签名不匹配")
        if params.get("serial_no") != self.merchant_serial:
            raise FakeError(401, "SIGN_ERROR", "商户证书序列号 serial_no 有误")
        if not nonce_str:
            raise FakeError(401, "SIGN_ERROR", "nonce_str 缺失")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW:
            raise FakeError(401, "SIGN_ERROR", "timestamp 与当前时间相差超过 5 分钟")
        message = paycrypto.signing_message(
            request.method, request.raw_path, timestamp, nonce_str, raw
        )
        if not paycrypto.rsa_verify(self.merchant_key, message, params.get("signature", "")):
            raise FakeError(401, "SIGN_ERROR", "签名错误，请检查签名串与请求体")

    def take_notify_mode(self) -> NotifyMode:
        mode, self.next_notify = self.next_notify or self.global_notify, None
        return mode

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def transaction_resource(self, order: _Order) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "appid": order.appid,
            "mchid": order.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": order.state,
            "trade_state_desc": TRADE_STATE_DESC.get(order.state, ""),
            "attach": "",
            "payer": {"openid": order.openid},
            "amount": {"total": order.total, "currency": "CNY", "payer_currency": "CNY"},
        }
        if order.transaction_id is not None:
            reply.update(
                transaction_id=order.transaction_id,
                bank_type="OTHERS",
                success_time=order.success_time,
            )
            reply["amount"]["payer_total"] = order.total
        return reply

    def refund_reply(self, refund: _Refund) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund.create_time,
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
                "settlement_total": refund.total,
                "settlement_refund": refund.refund,
                "discount_refund": 0,
                "currency": "CNY",
            },
        }
        if refund.success_time is not None:
            reply["success_time"] = refund.success_time
        return reply

    def refund_resource(self, refund: _Refund) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "mchid": self.mchid,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": refund.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
            },
        }
        if refund.success_time is not None:
            resource["success_time"] = refund.success_time
        return resource

    def notify_transaction(self, order: _Order) -> None:
        self.spawn(
            self.deliver(
                order.notify,
                order.notify_url,
                "TRANSACTION.SUCCESS",
                "支付成功",
                "transaction",
                self.transaction_resource(order),
                {"out_trade_no": order.out_trade_no},
            )
        )

    def notify_refund(self, refund: _Refund) -> None:
        order = self.orders[refund.out_trade_no]
        event = f"REFUND.{refund.status}"
        summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}
        self.spawn(
            self.deliver(
                order.notify,
                refund.notify_url,
                event,
                summary.get(refund.status, ""),
                "refund",
                self.refund_resource(refund),
                {"out_trade_no": refund.out_trade_no, "out_refund_no": refund.out_refund_no},
            )
        )

    async def deliver(
        self,
        how: NotifyMode,
        url: str,
        event_type: str,
        summary: str,
        original_type: str,
        resource: dict[str, Any],
        about: dict[str, str],
    ) -> None:
        """POST one notification as WeChat Pay does, retrying until a 2xx answer."""
        nonce_str = paycrypto.nonce(12)
        plain = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": paycrypto.rfc3339(dt.datetime.now(dt.UTC)),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": paycrypto.aes_gcm_encrypt(
                    self.apiv3_key, plain, original_type, nonce_str
                ),
                "associated_data": original_type,
                "nonce": nonce_str,
            },
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        record = {"event_type": event_type, "mode": how.mode, **about}
        if how.mode == "never":
            self.deliveries.append({**record, "attempt": 0, "status": "withheld"})
            return
        if how.mode == "late":
            await asyncio.sleep(how.delay)
        for copy in range(2 if how.mode == "twice" else 1):
            for attempt in range(1, self.notify_retries + 2):
                headers = self.signed_headers(body, forge=how.mode == "bad_signature")
                sent = body
                if how.mode == "tampered":  # one byte of the id changed after signing
                    at = body.index(b'"id":"') + 6
                    sent = (
                        body[:at] + (b"0" if body[at : at + 1] != b"0" else b"1") + body[at + 1 :]
                    )
                status = await self._post(url, sent, headers)
                self.deliveries.append(
                    {**record, "copy": copy + 1, "attempt": attempt, "status": status}
                )
                if isinstance(status, int) and 200 <= status < 300:
                    break
                await asyncio.sleep(self.notify_retry_delay)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int | str:
        if self.http is None:
            return "no http session"
        try:
            async with self.http.post(
                url,
                data=body,
                headers={
                    **headers,
                    "Content-Type": "application/json",
                    "User-Agent": "Mozilla/4.0 (guahao WeChat Pay fake)",
                },
                timeout=aiohttp.ClientTimeout(total=5),
            ) as resp:
                await resp.read()
                return resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            return type(exc).__name__

    async def settle_refund(self, refund: _Refund) -> None:
        await asyncio.sleep(self.refund_delay)
        refund.status = refund.outcome
        if refund.status == "SUCCESS":
            refund.success_time = paycrypto.rfc3339(dt.datetime.now(dt.UTC))
            self.orders[refund.out_trade_no].state = "REFUND"
        self.notify_refund(refund)


FAKE_PAY = web.AppKey("fake_wechatpay", FakeWechatPay)
_Reply = tuple[int, dict[str, Any]]
_Handler = Callable[[web.Request, FakeWechatPay, bytes], Awaitable[_Reply]]


def _pay_endpoint(handler: _Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wraps a handler with `slow`, request checks, signature check and signed replies."""

    async def endpoint(request: web.Request) -> web.Response:
        fake = request.app[FAKE_PAY]
        if fake.slow:
            await asyncio.sleep(fake.slow)
        raw = await request.read()
        try:
            accept = request.headers.get("Accept", "")
            if "application/json" not in accept and "*/*" not in accept:
                raise FakeError(400, "INVALID_REQUEST", "Accept 请设置为 application/json")
            if request.method == "POST" and not request.content_type.startswith("application/json"):
                raise FakeError(400, "INVALID_REQUEST", "Content-Type 请设置为 application/json")
            fake.check_signature(request, raw)
            status, reply = await handler(request, fake, raw)
        except FakeError as exc:
            status, reply = exc.status, exc.body()
        body = (
            b""
            if status == 204
            else json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode()
        )
        headers = {
            **fake.signed_headers(body, forge=fake.forge_responses),
            "Request-ID": str(uuid.uuid4()),
        }
        if status == 204:
            return web.Response(status=204, headers=headers)
        return web.Response(
            status=status, body=body, headers=headers, content_type="application/json"
        )

    return endpoint


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise FakeError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(body, dict):
        raise FakeError(400, "PARAM_ERROR", "请求体必须是 JSON 对象")
    return body


def _string(
    body: dict[str, Any], name: str, *, max_bytes: int, required: bool = True, prefix: str = ""
) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise param_error(prefix + name, "必填字段缺失或不是字符串")
    if len(value.encode()) > max_bytes:
        raise param_error(prefix + name, f"长度超过 {max_bytes} 字节")
    return value


def _positive_int(body: dict[str, Any], name: str, prefix: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise param_error(prefix + name, "必须是正整数（单位：分）")
    return value


def _notify_url(body: dict[str, Any], required: bool) -> str:
    url = _string(body, "notify_url", max_bytes=255, required=required)
    if not url:
        return ""
    parts = URL(url)
    loopback = parts.host in ("127.0.0.1", "::1", "localhost")
    if (
        not parts.is_absolute()
        or parts.query_string
        or not (parts.scheme == "https" or (parts.scheme == "http" and loopback))
    ):
        raise param_error("notify_url", "必须是 https 地址，且不能携带参数")
    return url


def _currency(amount: dict[str, Any], required: bool) -> None:
    currency = amount.get("currency")
    if currency is None and not required:
        return
    if currency != "CNY":
        raise param_error("amount.currency", "境内商户仅支持人民币 CNY")


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise param_error(name, "必填字段缺失或不是对象")
    return value


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


async def _jsapi(request: web.Request, fake: FakeWechatPay, raw: bytes) -> _Reply:
    body = _json_object(raw)
    appid = _string(body, "appid", max_bytes=32)
    mchid = _string(body, "mchid", max_bytes=32)
    description = _string(body, "description", max_bytes=127)
    out_trade_no = _string(body, "out_trade_no", max_bytes=32)
    if not OUT_TRADE_NO.fullmatch(out_trade_no):
        raise param_error("out_trade_no", "6-32 位数字、大小写字母或 _-|*")
    time_expire_text = _string(body, "time_expire", max_bytes=64, required=False)
    time_expire = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    if time_expire_text:
        if not RFC3339.fullmatch(time_expire_text):
            raise param_error("time_expire", "不是 rfc3339 格式 yyyy-MM-DDTHH:mm:ss+TIMEZONE")
        time_expire = dt.datetime.fromisoformat(time_expire_text)
        if time_expire <= dt.datetime.now(dt.UTC):
            raise param_error("time_expire", "订单失效时间已过")
    notify_url = _notify_url(body, required=True)
    amount = _object(body, "amount")
    total = _positive_int(amount, "total", "amount.")
    _currency(amount, required=False)
    openid = _string(_object(body, "payer"), "openid", max_bytes=128, prefix="payer.")
    _string(body, "attach", max_bytes=128, required=False)
    if mchid != fake.mchid:
        raise FakeError(400, "MCH_NOT_EXISTS", "商户号不存在")
    if appid != fake.appid:
        raise FakeError(400, "APPID_MCHID_NOT_MATCH", "appid 和 mchid 不匹配")
    params = _canonical(body)
    order = fake.orders.get(out_trade_no)
    if order is not None:
        if order.state in PAID_STATES:
            raise FakeError(403, "ORDERPAID", "该订单已支付")
        if order.state == "CLOSED":
            raise FakeError(400, "ORDER_CLOSED", "该订单已关闭")
        if order.params != params:
            raise FakeError(
                400,
                "INVALID_REQUEST",
                "201 商户订单号重复，请核实商户订单号是否重复提交，或同一订单号的下单参数是否一致",
            )
        if time.time() - order.prepaid_at > PREPAY_TTL:  # prepay ids live 2 hours
            del fake.by_prepay[order.prepay_id]
            order.prepay_id, order.prepaid_at = _prepay_id(), time.time()
            fake.by_prepay[order.prepay_id] = out_trade_no
        return 200, {"prepay_id": order.prepay_id}
    order = _Order(
        out_trade_no=out_trade_no,
        params=params,
        appid=appid,
        mchid=mchid,
        description=description,
        total=total,
        openid=openid,
        notify_url=notify_url,
        time_expire=time_expire,
        prepay_id=_prepay_id(),
        prepaid_at=time.time(),
        notify=fake.take_notify_mode(),
    )
    fake.orders[out_trade_no] = order
    fake.by_prepay[order.prepay_id] = out_trade_no
    return 200, {"prepay_id": order.prepay_id}


def _prepay_id() -> str:
    return f"wx{time.strftime('%d%H%M%S')}{secrets.token_hex(12)}"


def _order_of(request: web.Request, fake: FakeWechatPay) -> _Order:
    order = fake.orders.get(request.match_info["out_trade_no"])
    if order is None:
        raise FakeError(404, "ORDER_NOT_EXIST", "订单不存在")
    return order


async def _query(request: web.Request, fake: FakeWechatPay, raw: bytes) -> _Reply:
    mchid = request.query.get("mchid")
    if not mchid:
        raise param_error("mchid", "必填字段缺失", location="query")
    if mchid != fake.mchid:
        raise FakeError(400, "MCH_NOT_EXISTS", "商户号不存在")
    return 200, fake.transaction_resource(_order_of(request, fake))


async def _close(request: web.Request, fake: FakeWechatPay, raw: bytes) -> _Reply:
    if _string(_json_object(raw), "mchid", max_bytes=32) != fake.mchid:
        raise FakeError(400, "MCH_NOT_EXISTS", "商户号不存在")
    order = _order_of(request, fake)
    if order.state in PAID_STATES:
        raise FakeError(403, "ORDERPAID", "订单已支付，不能关单")
    order.state = "CLOSED"
    return 204, {}


async def _refund(request: web.Request, fake: FakeWechatPay, raw: bytes) -> _Reply:
    body = _json_object(raw)
    out_trade_no = _string(body, "out_trade_no", max_bytes=32)
    out_refund_no = _string(body, "out_refund_no", max_bytes=64)
    if not OUT_REFUND_NO.fullmatch(out_refund_no):
        raise param_error("out_refund_no", "1-64 位数字、大小写字母或 _-|*@")
    reason = _string(body, "reason", max_bytes=80, required=False)
    notify_url = _notify_url(body, required=False)
    amount = _object(body, "amount")
    refund_fen = _positive_int(amount, "refund", "amount.")
    total_fen = _positive_int(amount, "total", "amount.")
    _currency(amount, required=True)
    params = _canonical(body)
    existing = fake.refunds.get(out_refund_no)
    if existing is not None:
        if existing.params != params:
            raise FakeError(
                400, "INVALID_REQUEST", "退款单号 out_refund_no 重复，且参数与原退款申请不一致"
            )
        return 200, fake.refund_reply(existing)
    order = fake.orders.get(out_trade_no)
    if order is None:
        raise FakeError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
    if order.state not in PAID_STATES or order.transaction_id is None:
        raise FakeError(400, "INVALID_REQUEST", "订单未支付，不能退款")
    if total_fen != order.total:
        raise param_error("amount.total", "原订单金额与订单实际金额不一致")
    refunded = sum(
        fake.refunds[no].refund for no in order.refunds if fake.refunds[no].status != "CLOSED"
    )
    if refund_fen > order.total - refunded:
        raise FakeError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
    failure, fake.fail_next_refund = fake.fail_next_refund, None
    if failure == "system_error":
        raise FakeError(500, "SYSTEM_ERROR", "系统错误")
    refund = _Refund(
        out_refund_no=out_refund_no,
        params=params,
        refund_id="50" + "".join(secrets.choice(string.digits) for _ in range(27)),
        out_trade_no=out_trade_no,
        transaction_id=order.transaction_id,
        refund=refund_fen,
        total=total_fen,
        reason=reason,
        notify_url=notify_url or order.notify_url,
        create_time=paycrypto.rfc3339(dt.datetime.now(dt.UTC)),
        outcome={"abnormal": "ABNORMAL", "closed": "CLOSED"}.get(failure or "", "SUCCESS"),
    )
    fake.refunds[out_refund_no] = refund
    order.refunds.append(out_refund_no)
    fake.spawn(fake.settle_refund(refund))
    return 200, fake.refund_reply(refund)


async def _query_refund(request: web.Request, fake: FakeWechatPay, raw: bytes) -> _Reply:
    refund = fake.refunds.get(request.match_info["out_refund_no"])
    if refund is None:
        raise FakeError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return 200, fake.refund_reply(refund)


def _control_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "errMsg": f"requestPayment:fail {message}"},
        status=status,
    )


async def _control_pay(request: web.Request) -> web.Response:
    """The payer pays: by prepay_id or out_trade_no, or with the exact arguments of
    `wx.requestPayment` ({appId?, timeStamp, nonceStr, package, signType, paySign}), whose
    paySign is checked with the merchant's key as WeChat does. `force` pays an order whose
    time_expire has passed (a payment racing the deadline)."""
    fake, body = request.app[FAKE_PAY], await control_body(request)
    prepay_id = body.get("prepay_id")
    if "package" in body:
        package, pay_sign = body.get("package"), body.get("paySign")
        stamp, nonce_str = body.get("timeStamp"), body.get("nonceStr")
        appid = body.get("appId", fake.appid)
        if not all(isinstance(v, str) and v for v in (package, pay_sign, stamp, nonce_str)):
            return _control_error(
                400, "PARAM_ERROR", "timeStamp, nonceStr, package and paySign are required strings"
            )
        assert isinstance(package, str) and isinstance(pay_sign, str)
        if body.get("signType") != "RSA":
            return _control_error(400, "PARAM_ERROR", "signType must be RSA")
        if appid != fake.appid or not package.startswith("prepay_id="):
            return _control_error(400, "PARAM_ERROR", "appId or package is invalid")
        message = paycrypto.signing_message(str(appid), str(stamp), str(nonce_str), package)
        if not paycrypto.rsa_verify(fake.merchant_key, message, pay_sign):
            return _control_error(400, "SIGN_ERROR", "支付验证签名失败")
        prepay_id = package.removeprefix("prepay_id=")
    if isinstance(prepay_id, str):
        out_trade_no = fake.by_prepay.get(prepay_id)
    else:
        out_trade_no = body.get("out_trade_no")
    order = fake.orders.get(out_trade_no) if isinstance(out_trade_no, str) else None
    if order is None:
        return _control_error(404, "ORDER_NOT_EXIST", "订单不存在")
    if isinstance(prepay_id, str) and time.time() - order.prepaid_at > PREPAY_TTL:
        return _control_error(400, "PREPAY_EXPIRED", "prepay_id 已失效")
    if order.state in PAID_STATES:
        return _control_error(400, "ORDERPAID", "订单已支付")
    if order.state == "CLOSED":
        return _control_error(400, "ORDER_CLOSED", "订单已关闭")
    if order.time_expire <= dt.datetime.now(dt.UTC) and body.get("force") is not True:
        return _control_error(400, "ORDER_EXPIRED", "订单已过期")
    order.state = "SUCCESS"
    order.transaction_id = "4200" + "".join(secrets.choice(string.digits) for _ in range(24))
    order.success_time = paycrypto.rfc3339(dt.datetime.now(dt.UTC))
    fake.notify_transaction(order)
    return web.json_response(
        {
            "errMsg": "requestPayment:ok",
            "out_trade_no": order.out_trade_no,
            "transaction_id": order.transaction_id,
        }
    )


async def _control_behaviour(request: web.Request) -> web.Response:
    """Switches: notify (mode for the next order, or every order with scope "global"),
    notify_delay, fail_next_refund ("system_error" | "abnormal" | "closed"), slow (s), switch_serial
    (sign with the platform certificate), forge_responses (responses signed wrongly),
    refund_delay (s), notify_retries, notify_retry_delay (s)."""
    fake, body = request.app[FAKE_PAY], await control_body(request)
    if "notify" in body:
        mode = body["notify"]
        if mode not in NOTIFY_MODES:
            raise web.HTTPBadRequest(text=f"notify must be one of {sorted(NOTIFY_MODES)}")
        try:
            how = NotifyMode(str(mode), float(body.get("notify_delay", 1.0)))
        except (TypeError, ValueError):
            raise web.HTTPBadRequest(text="notify_delay is seconds") from None
        if body.get("scope", "next") == "global":
            fake.global_notify, fake.next_notify = how, None
        else:
            fake.next_notify = how
    if "fail_next_refund" in body:
        if body["fail_next_refund"] not in ("system_error", "abnormal", "closed", None):
            raise web.HTTPBadRequest(
                text="fail_next_refund: system_error | abnormal | closed | null"
            )
        fake.fail_next_refund = body["fail_next_refund"]
    try:
        for name in ("slow", "refund_delay", "notify_retry_delay"):
            if name in body:
                setattr(fake, name, float(body[name]))
        if "notify_retries" in body:
            fake.notify_retries = int(body["notify_retries"])
    except (TypeError, ValueError):
        raise web.HTTPBadRequest(text="delays are seconds, notify_retries a count") from None
    for name in ("switch_serial", "forge_responses"):
        if name in body:
            setattr(fake, name, bool(body[name]))
    return web.json_response(_behaviour(fake))


def _behaviour(fake: FakeWechatPay) -> dict[str, Any]:
    return {
        "global_notify": asdict(fake.global_notify),
        "next_notify": None if fake.next_notify is None else asdict(fake.next_notify),
        "fail_next_refund": fake.fail_next_refund,
        "slow": fake.slow,
        "switch_serial": fake.switch_serial,
        "forge_responses": fake.forge_responses,
        "refund_delay": fake.refund_delay,
        "notify_retries": fake.notify_retries,
        "notify_retry_delay": fake.notify_retry_delay,
    }


async def _control_renotify(request: web.Request) -> web.Response:
    """Send the notification of an order (paid) or a refund (settled) once more."""
    fake, body = request.app[FAKE_PAY], await control_body(request)
    refund = fake.refunds.get(str(body.get("out_refund_no")))
    order = fake.orders.get(str(body.get("out_trade_no")))
    if refund is not None and refund.status != "PROCESSING":
        fake.notify_refund(refund)
    elif order is not None and order.transaction_id is not None:
        fake.notify_transaction(order)
    else:
        raise web.HTTPNotFound(text="no paid order or settled refund by that number")
    return web.json_response({"ok": True})


def _order_view(fake: FakeWechatPay, order: _Order) -> dict[str, Any]:
    return {
        "out_trade_no": order.out_trade_no,
        "prepay_id": order.prepay_id,
        "state": order.state,
        "transaction_id": order.transaction_id,
        "total": order.total,
        "description": order.description,
        "openid": order.openid,
        "notify_url": order.notify_url,
        "time_expire": paycrypto.rfc3339(order.time_expire),
        "success_time": order.success_time,
        "notify": asdict(order.notify),
        "refunds": [fake.refund_reply(fake.refunds[no]) for no in order.refunds],
    }


async def _control_orders(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PAY]
    wanted = request.query.get("out_trade_no")
    orders = [
        _order_view(fake, order)
        for order in fake.orders.values()
        if wanted is None or order.out_trade_no == wanted
    ]
    deliveries = [d for d in fake.deliveries if wanted is None or d["out_trade_no"] == wanted]
    return web.json_response(
        {"orders": orders, "deliveries": deliveries, "behaviour": _behaviour(fake)}
    )


async def _control_reset(request: web.Request) -> web.Response:
    request.app[FAKE_PAY].reset()
    return web.json_response({"ok": True})


def create_payfake_app(
    creds: dict[str, str],
    *,
    notify_retries: int = 3,
    notify_retry_delay: float = 0.2,
    refund_delay: float = 0.2,
) -> web.Application:
    """The fake WeChat Pay for one merchant and mini-program, keyed by `creds` (the dict of
    `paycrypto.make_dev_credentials`)."""
    app = web.Application()
    fake = FakeWechatPay(
        creds,
        notify_retries=notify_retries,
        notify_retry_delay=notify_retry_delay,
        refund_delay=refund_delay,
    )
    app[FAKE_PAY] = fake

    async def notifier(app: web.Application) -> AsyncIterator[None]:
        fake.http = aiohttp.ClientSession()
        yield
        for task in list(fake.tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*fake.tasks, return_exceptions=True)
        await fake.http.close()

    app.cleanup_ctx.append(notifier)
    add_get, add_post = app.router.add_get, app.router.add_post
    add_post("/v3/pay/transactions/jsapi", _pay_endpoint(_jsapi))
    add_get("/v3/pay/transactions/out-trade-no/{out_trade_no}", _pay_endpoint(_query))
    add_post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", _pay_endpoint(_close))
    add_post("/v3/refund/domestic/refunds", _pay_endpoint(_refund))
    add_get("/v3/refund/domestic/refunds/{out_refund_no}", _pay_endpoint(_query_refund))
    add_post("/__control/pay", _control_pay)
    add_post("/__control/behaviour", _control_behaviour)
    add_post("/__control/renotify", _control_renotify)
    add_get("/__control/orders", _control_orders)
    add_post("/__control/reset", _control_reset)
    return app


async def _serve(args: argparse.Namespace) -> None:
    creds = paycrypto.read_credentials(Path(args.credentials))
    if args.appid:
        creds["appid"] = args.appid
    app = create_payfake_app(
        creds,
        notify_retries=args.notify_retries,
        notify_retry_delay=args.notify_retry_delay,
        refund_delay=args.refund_delay,
    )
    await serve_until_signalled(app, host=args.host, port=args.port, name="wechatpay-fake")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: serve the fake until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m shared.wechat.payfake", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--credentials",
        required=True,
        help="credentials JSON file, or a data dir holding the dev set",
    )
    parser.add_argument("--appid", help="the mini-program appid (default: the credentials')")
    parser.add_argument("--notify-retries", type=int, default=3)
    parser.add_argument("--notify-retry-delay", type=float, default=0.2)
    parser.add_argument("--refund-delay", type=float, default=0.2)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
