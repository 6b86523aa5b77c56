"""RPC entry points of `rpc.payment` (replicas compete on the one queue): each turns a
contract into a call on the payment service and back; no rule lives here."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from services.payment.service import PaymentService
from shared.access import require_hospital_admin, require_patient
from shared.context import CallContext
from shared.contracts.payment import (
    MAX_NOTIFICATION_BYTES,
    NotificationParams,
    PayArgs,
    PaymentList,
    PaymentsQuery,
    PayParams,
)
from shared.errors import BadRequest, Forbidden, PayloadTooLarge
from shared.messaging.rpc import RpcServer


class PaymentHandlers:
    """`rpc.payment`: one method per entry point, registered by name."""

    def __init__(self, service: PaymentService) -> None:
        self.service = service

    def register(self, server: RpcServer) -> None:
        for name in ("pay", "notify", "list_payments"):
            server.add_method(name, getattr(self, name))

    async def pay(self, params: PayParams, ctx: CallContext) -> PayArgs:
        user_id = require_patient(ctx)
        return await self.service.pay_args(ctx.caller, user_id, params.appointment_id)

    async def notify(self, params: NotificationParams, ctx: CallContext) -> dict[str, Any]:
        # only the gateway forwards WeChat Pay's notifications (unit tests sign nothing)
        if ctx.service not in (None, "gateway") or ctx.caller is not None:
            raise Forbidden()
        try:
            body = base64.b64decode(params.body_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("body_b64 is not base64") from exc
        if len(body) > MAX_NOTIFICATION_BYTES:
            raise PayloadTooLarge(limit_bytes=MAX_NOTIFICATION_BYTES)
        await self.service.notification(params.headers, body)
        return {}

    async def list_payments(self, params: PaymentsQuery, ctx: CallContext) -> PaymentList:
        require_hospital_admin(ctx, params.hospital_id)
        return await self.service.day(
            params.hospital_id, params.date.isoformat() if params.date else None, params.status
        )
