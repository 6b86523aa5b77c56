"""`POST /api/v1/payments/wechat/notify`: WeChat Pay's notifications, passed to the payment
service byte for byte.

WeChat Pay signs the exact bytes it sends; re-serialising the JSON (key order, spaces,
escapes) breaks the signature, which is how shops end up switching verification off. So this
endpoint never parses the body: it reads at most `MAX_NOTIFICATION_BYTES`, forwards the raw
bytes (base64) and WeChat Pay's headers to `payment.notify`, and answers 204 only once the
payment service stored the outcome (401 when it could not be verified; WeChat Pay retries
anything else). No JWT; the patient rate limits do not apply (the per-IP limit does).
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from gateway.routes import API_PREFIX
from gateway.state import GATEWAY
from shared.contracts.payment import MAX_NOTIFICATION_BYTES, NotificationParams
from shared.errors import PayloadTooLarge

NOTIFY_PATH = f"{API_PREFIX}/payments/wechat/notify"
# what WeChat Pay's signature check needs (and nothing of the client's other headers)
FORWARDED_HEADERS = (
    "Wechatpay-Serial",
    "Wechatpay-Signature",
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Signature-Type",
    "Content-Type",
)


async def wechat_pay_notify(request: web.Request) -> web.StreamResponse:
    if request.content_length is not None and request.content_length > MAX_NOTIFICATION_BYTES:
        raise PayloadTooLarge(limit_bytes=MAX_NOTIFICATION_BYTES)
    body = bytearray()
    while chunk := await request.content.read(MAX_NOTIFICATION_BYTES + 1 - len(body)):
        body += chunk
        if len(body) > MAX_NOTIFICATION_BYTES:  # chunked, or a lying Content-Length
            raise PayloadTooLarge(limit_bytes=MAX_NOTIFICATION_BYTES)
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    params = NotificationParams(headers=headers, body_b64=base64.b64encode(bytes(body)).decode())
    await request.app[GATEWAY].upstream.call("payment", "notify", params)
    return web.Response(status=204)


def add_payment_routes(app: web.Application) -> None:
    app.router.add_post(NOTIFY_PATH, wechat_pay_notify)


def notify_openapi() -> dict[str, Any]:
    """The notification endpoint in the OpenAPI document (it is not a `Route`)."""
    return {
        "post": {
            "operationId": "payment_notify",
            "tags": ["payments"],
            "summary": "WeChat Pay notification (raw body, verified by the payment service)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "204": {"description": "stored"},
                "401": {"$ref": "#/components/responses/Unauthenticated"},
                "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                "503": {"$ref": "#/components/responses/ServiceUnavailable"},
            },
        }
    }
