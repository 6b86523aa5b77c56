"""An asyncio (aiohttp) client for WeChat Pay API v3, JSAPI payments in public-key mode.

Every request is signed with the merchant key (`WECHATPAY2-SHA256-RSA2048`) over the exact
bytes sent; every response and notification is verified on its raw bytes, with the WeChat
Pay public key (`Wechatpay-Serial` = the public key id) or a platform certificate given
for a switch-over, before anything in it is parsed. Money is integer fen.

Why not the `wechatpayv3` SDK: its async mode brings a second HTTP stack (httpx, aiofiles);
it signs `json.dumps(data)` while httpx serialises the body it sends on its own; failures
are bare `Exception`s or a `None` from `callback()` that cannot tell a forged notification
from a malformed one; it does not reject stale timestamps; and in certificate mode it
downloads certificates at start-up. The protocol is small, so it is written here on
`cryptography`, with the failure modes the payment service needs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from shared.wechat import paycrypto
from shared.wechat.errors import InvalidNotification, PayRejected, PayUnavailable

log = logging.getLogger("guahao.wechatpay")
_T = TypeVar("_T")

DEFAULT_API_BASE = "https://api.mch.weixin.qq.com"
MAX_CLOCK_SKEW = 300.0
TRADE_STATES = frozenset(
    {"SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR"}
)
REFUND_STATUSES = frozenset({"SUCCESS", "CLOSED", "PROCESSING", "ABNORMAL"})
EVENT_TYPES = frozenset(
    {"TRANSACTION.SUCCESS", "REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"}
)

__all__ = [
    "DEFAULT_API_BASE",
    "InvalidNotification",
    "PayNotification",
    "PayOrder",
    "PayRefund",
    "PayRejected",
    "PayUnavailable",
    "WeChatPay",
    "dev_pay_credentials",
    "pem_or_path",
    "validate_notify_url",
]

dev_pay_credentials = paycrypto.dev_pay_credentials


@dataclass(frozen=True)
class PayOrder:
    """A JSAPI order as WeChat Pay reports it (query or TRANSACTION.* notification)."""

    out_trade_no: str
    trade_state: str
    amount_fen: int | None  # the order total; WeChat Pay may omit it until the order is paid
    transaction_id: str | None = None
    success_time: dt.datetime | None = None
    trade_state_desc: str = ""
    payer_openid: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PayRefund:
    """A refund (create, query or REFUND.* notification)."""

    out_refund_no: str
    refund_id: str
    status: str
    refund_fen: int
    total_fen: int
    out_trade_no: str = ""
    transaction_id: str | None = None
    success_time: dt.datetime | None = None


@dataclass(frozen=True)
class PayNotification:
    """A verified, decrypted notification: `order` for TRANSACTION.*, `refund` for REFUND.*."""

    id: str
    event_type: str
    create_time: str
    summary: str
    resource: dict[str, Any] = field(repr=False)
    order: PayOrder | None = None
    refund: PayRefund | None = None


def pem_or_path(value: str) -> str:
    """A PEM given inline, or read from the file `value` names."""
    if "-----BEGIN" in value:
        return value
    return Path(value).expanduser().read_text()


def platform_certificates_of(value: str | None) -> dict[str, str]:
    """WECHATPAY_PLATFORM_CERTIFICATES: PEM certificates inline, or comma-separated paths."""
    if not value:
        return {}
    text = (
        value
        if "-----BEGIN" in value
        else "\n".join(pem_or_path(path.strip()) for path in value.split(",") if path.strip())
    )
    certificates = paycrypto.certificates_by_serial(text)
    if not certificates:
        raise ValueError("WECHATPAY_PLATFORM_CERTIFICATES holds no PEM certificate")
    return certificates


def validate_notify_url(url: str) -> str:
    """`url` if WeChat Pay may call it: https, or http on a loopback address (dev)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError("WECHATPAY_NOTIFY_URL must be an absolute URL")
    if parts.query:
        raise ValueError("WECHATPAY_NOTIFY_URL must not carry a query string")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return url
    raise ValueError("WECHATPAY_NOTIFY_URL must be https (plain http only on loopback)")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} is not an integer")
    return value


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _order_of(data: Mapping[str, Any]) -> PayOrder:
    state = data.get("trade_state")
    if state not in TRADE_STATES:
        raise ValueError(f"unknown trade_state {state!r}")
    payer = data.get("payer") or {}
    amount = data.get("amount") or {}
    total = amount.get("total")
    if state in ("SUCCESS", "REFUND") and data.get("transaction_id") in (None, ""):
        raise ValueError("a paid order without transaction_id")
    return PayOrder(
        out_trade_no=str(data["out_trade_no"]),
        trade_state=str(state),
        amount_fen=(
            None
            if total is None and state not in ("SUCCESS", "REFUND")
            else _int(total, "amount.total")
        ),
        transaction_id=data.get("transaction_id") or None,
        success_time=_time(data.get("success_time")),
        trade_state_desc=str(data.get("trade_state_desc", "")),
        payer_openid=payer.get("openid") if isinstance(payer, dict) else None,
    )


def _refund_of(data: Mapping[str, Any]) -> PayRefund:
    status = data.get("status", data.get("refund_status"))
    if status not in REFUND_STATUSES:
        raise ValueError(f"unknown refund status {status!r}")
    amount = data.get("amount") or {}
    return PayRefund(
        out_refund_no=str(data["out_refund_no"]),
        refund_id=str(data["refund_id"]),
        status=str(status),
        refund_fen=_int(amount.get("refund"), "amount.refund"),
        total_fen=_int(amount.get("total"), "amount.total"),
        out_trade_no=str(data.get("out_trade_no", "")),
        transaction_id=data.get("transaction_id") or None,
        success_time=_time(data.get("success_time")),
    )


class WeChatPay:
    """WeChat Pay API v3 on behalf of one merchant (`mchid`) and one mini-program (`appid`).

    One instance per process; it owns an aiohttp session, opened on first use.
    """

    def __init__(
        self,
        *,
        api_base: str,
        mchid: str,
        appid: str,
        merchant_serial: str,
        merchant_key_pem: str,
        apiv3_key: str,
        public_key_pem: str,
        public_key_id: str,
        notify_url: str,
        timeout: float = 5.0,
        platform_certificates: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(apiv3_key.encode()) != 32:
            raise ValueError("the APIv3 key must be 32 ASCII characters")
        self._api_base = api_base.rstrip("/")
        self.mchid = mchid
        self.appid = appid
        self._serial = merchant_serial
        self._key: rsa.RSAPrivateKey = paycrypto.load_private_key(merchant_key_pem)
        self._apiv3_key = apiv3_key
        self._verifiers: dict[str, rsa.RSAPublicKey] = {
            public_key_id: paycrypto.load_public_key(public_key_pem)
        }
        for serial, pem in (platform_certificates or {}).items():
            self._verifiers[serial] = paycrypto.load_public_key(pem)
        self.notify_url = validate_notify_url(notify_url)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> WeChatPay:
        """The client configured by the WECHATPAY_* settings (PEMs inline or as paths);
        WECHATPAY_PLATFORM_CERTIFICATES are also accepted, for a switch-over."""
        needed = (
            "wechatpay_mchid",
            "wechatpay_merchant_serial",
            "wechatpay_merchant_key",
            "wechatpay_apiv3_key",
            "wechatpay_public_key",
            "wechatpay_public_key_id",
            "wechatpay_notify_url",
        )
        missing = [name.upper() for name in needed if not getattr(settings, name)]
        if missing:
            raise ValueError(f"WeChat Pay is not configured: set {', '.join(missing)}")
        return cls(
            api_base=settings.wechatpay_api_base,
            mchid=settings.wechatpay_mchid,
            appid=settings.wechat_appid,
            merchant_serial=settings.wechatpay_merchant_serial,
            merchant_key_pem=pem_or_path(settings.wechatpay_merchant_key),
            apiv3_key=settings.wechatpay_apiv3_key,
            public_key_pem=pem_or_path(settings.wechatpay_public_key),
            public_key_id=settings.wechatpay_public_key_id,
            notify_url=settings.wechatpay_notify_url,
            platform_certificates=platform_certificates_of(
                settings.wechatpay_platform_certificates
            ),
        )

    async def close(self) -> None:
        """Close the HTTP session (the client may be used again afterwards)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def jsapi_prepay(
        self,
        *,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        payer_openid: str,
        time_expire: dt.datetime,
    ) -> str:
        """Create (or, with identical parameters, find again) a JSAPI order: its prepay_id."""
        body = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": description,
            "out_trade_no": out_trade_no,
            "time_expire": paycrypto.rfc3339(time_expire),
            "notify_url": self.notify_url,
            "amount": {"total": _int(amount_fen, "amount_fen"), "currency": "CNY"},
            "payer": {"openid": payer_openid},
        }
        reply = await self._call("POST", "/v3/pay/transactions/jsapi", body=body)
        prepay_id = reply.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise PayUnavailable("jsapi prepay reply lacks prepay_id")
        log.debug("wechatpay prepay created", extra={"out_trade_no": out_trade_no})
        return prepay_id

    def jsapi_pay_args(self, prepay_id: str) -> dict[str, str]:
        """The arguments of `wx.requestPayment` for `prepay_id`, signed by the merchant."""
        timestamp, nonce_str = str(int(self._clock())), paycrypto.nonce()
        package = f"prepay_id={prepay_id}"
        pay_sign = paycrypto.rsa_sign(
            self._key, paycrypto.signing_message(self.appid, timestamp, nonce_str, package)
        )
        return {
            "timeStamp": timestamp,
            "nonceStr": nonce_str,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign,
        }

    async def query_order(self, out_trade_no: str) -> PayOrder:
        """The order's current state (404 ORDER_NOT_EXIST → PayRejected)."""
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
        reply = await self._call("GET", path, query={"mchid": self.mchid})
        return self._typed(_order_of, reply, "order query")

    async def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order; closing a closed order is fine. A paid order raises
        PayRejected (403 ORDERPAID)."""
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close"
        try:
            await self._call("POST", path, body={"mchid": self.mchid})
        except PayRejected as exc:
            if exc.code != "ORDER_CLOSED":
                raise
        log.debug("wechatpay order closed", extra={"out_trade_no": out_trade_no})

    async def refund(
        self,
        *,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
    ) -> PayRefund:
        """Request a refund; the same `out_refund_no` again returns the same refund."""
        body: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "notify_url": self.notify_url,
            "amount": {
                "refund": _int(refund_fen, "refund_fen"),
                "total": _int(total_fen, "total_fen"),
                "currency": "CNY",
            },
        }
        if reason:
            body["reason"] = reason
        reply = await self._call("POST", "/v3/refund/domestic/refunds", body=body)
        refund = self._typed(_refund_of, reply, "refund")
        log.debug(
            "wechatpay refund requested",
            extra={"out_refund_no": out_refund_no, "status": refund.status},
        )
        return refund

    async def query_refund(self, out_refund_no: str) -> PayRefund:
        """The refund's current state (404 RESOURCE_NOT_EXISTS → PayRejected)."""
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}"
        return self._typed(_refund_of, await self._call("GET", path), "refund query")

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PayNotification:
        """Verify (raw `body` bytes, signature, serial, 5-minute timestamp), decrypt and type
        a notification. Raises InvalidNotification on anything unverifiable."""
        if not self._verified(headers, body):
            raise InvalidNotification("signature, serial or timestamp does not verify")
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            if envelope.get("resource_type") != "encrypt-resource":
                raise ValueError("resource_type is not encrypt-resource")
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValueError("resource algorithm is not AEAD_AES_256_GCM")
            plain = paycrypto.aes_gcm_decrypt(
                self._apiv3_key,
                str(resource["ciphertext"]),
                str(resource.get("associated_data") or ""),
                str(resource["nonce"]),
            )
            data = json.loads(plain)
            event_type = str(envelope["event_type"])
            if event_type not in EVENT_TYPES:
                raise ValueError(f"unknown event_type {event_type}")
            if data.get("mchid") != self.mchid:
                raise ValueError("resource is for another merchant")
            order = refund = None
            if event_type.startswith("TRANSACTION."):
                if data.get("appid") != self.appid:
                    raise ValueError("resource is for another appid")
                order = _order_of(data)
            else:
                refund = _refund_of(data)
            return PayNotification(
                id=str(envelope["id"]),
                event_type=event_type,
                create_time=str(envelope.get("create_time", "")),
                summary=str(envelope.get("summary", "")),
                resource=data,
                order=order,
                refund=refund,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidNotification(f"malformed notification: {exc}") from None

    def _verified(self, headers: Mapping[str, str], body: bytes) -> bool:
        get = paycrypto.header
        key = self._verifiers.get(get(headers, "Wechatpay-Serial"))
        timestamp, nonce_str = get(headers, "Wechatpay-Timestamp"), get(headers, "Wechatpay-Nonce")
        signature = get(headers, "Wechatpay-Signature")
        kind = get(headers, "Wechatpay-Signature-Type")
        if key is None or not nonce_str or not signature or not timestamp.isdigit():
            return False
        if kind and kind != paycrypto.SIGNATURE_TYPE:
            return False
        if abs(self._clock() - int(timestamp)) > MAX_CLOCK_SKEW:
            return False
        return paycrypto.rsa_verify(
            key, paycrypto.signing_message(timestamp, nonce_str, body), signature
        )

    @staticmethod
    def _typed(make: Callable[[Mapping[str, Any]], _T], reply: dict[str, Any], what: str) -> _T:
        try:
            return make(reply)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PayUnavailable(f"{what} reply is malformed: {exc}") from None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One signed request; the verified JSON reply ({} for 204)."""
        url = path + (f"?{urlencode(query)}" if query else "")
        data = (
            b""
            if body is None
            else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        )
        headers = {
            "Authorization": paycrypto.authorization(
                self._key,
                mchid=self.mchid,
                serial=self._serial,
                method=method,
                url=url,
                body=data,
                timestamp=int(self._clock()),
                nonce_str=paycrypto.nonce(),
            ),
            "Accept": "application/json",
            "User-Agent": "guahao-wechatpay/1",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._http().request(
                method,
                URL(self._api_base + url, encoded=True),
                data=data or None,
                headers=headers,
                timeout=self._timeout,
            ) as resp:
                status, raw, reply_headers = resp.status, await resp.read(), resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PayUnavailable(f"{path}: {type(exc).__name__}") from None
        if status >= 500 or status == 429:
            raise PayUnavailable(f"{path}: HTTP {status}")
        if not self._verified(reply_headers, raw):
            log.warning(
                "wechatpay response signature does not verify",
                extra={"path": path, "status": status},
            )
            raise PayUnavailable(f"{path}: response signature does not verify")
        try:
            reply = json.loads(raw) if raw else {}
        except ValueError:
            raise PayUnavailable(f"{path}: reply is not JSON") from None
        if not isinstance(reply, dict):
            raise PayUnavailable(f"{path}: reply is not a JSON object")
        if 200 <= status < 300:
            return reply
        if 400 <= status < 500:
            raise PayRejected(status, str(reply.get("code", "")), str(reply.get("message", "")))
        raise PayUnavailable(f"{path}: HTTP {status}")
