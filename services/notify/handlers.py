"""RPC entry points of `rpc.notify` (replicas compete on the one queue)."""

from __future__ import annotations

from typing import Any

from services.notify.subscriptions import SubscriptionService
from services.notify.webhooks import WebhookService
from shared.access import require_hospital_admin, require_patient
from shared.context import CallContext
from shared.contracts.catalog import HospitalRef
from shared.contracts.notify import (
    DeliveryList,
    DeliveryListParams,
    DeliveryRef,
    DeliveryView,
    QuotaView,
    SubscriptionResults,
    TemplateList,
    WebhookCreated,
    WebhookCreateParams,
    WebhookList,
    WebhookRef,
    WebhookSecret,
)
from shared.messaging.rpc import RpcServer


def register(server: RpcServer, subscriptions: SubscriptionService,
             webhooks: WebhookService) -> None:
    @server.method("templates")
    async def templates(params: None, ctx: CallContext) -> TemplateList:
        return subscriptions.template_list()

    @server.method("record_subscription")
    async def record_subscription(params: SubscriptionResults, ctx: CallContext) -> QuotaView:
        return await subscriptions.record(require_patient(ctx), dict(params.results))

    @server.method("quota")
    async def quota(params: None, ctx: CallContext) -> QuotaView:
        return await subscriptions.quota(require_patient(ctx))

    @server.method("create_webhook")
    async def create_webhook(params: WebhookCreateParams, ctx: CallContext) -> WebhookCreated:
        require_hospital_admin(ctx, params.hospital_id)
        return await webhooks.create(params.hospital_id, params)

    @server.method("list_webhooks")
    async def list_webhooks(params: HospitalRef, ctx: CallContext) -> WebhookList:
        require_hospital_admin(ctx, params.hospital_id)
        return await webhooks.list_webhooks(params.hospital_id)

    @server.method("delete_webhook")
    async def delete_webhook(params: WebhookRef, ctx: CallContext) -> dict[str, Any]:
        require_hospital_admin(ctx, params.hospital_id)
        await webhooks.delete(params.hospital_id, params.webhook_id)
        return {}

    @server.method("rotate_webhook_secret")
    async def rotate_webhook_secret(params: WebhookRef, ctx: CallContext) -> WebhookSecret:
        require_hospital_admin(ctx, params.hospital_id)
        return await webhooks.rotate_secret(params.hospital_id, params.webhook_id)

    @server.method("list_deliveries")
    async def list_deliveries(params: DeliveryListParams, ctx: CallContext) -> DeliveryList:
        require_hospital_admin(ctx, params.hospital_id)
        return await webhooks.list_deliveries(params.hospital_id, params.webhook_id,
                                              params.status)

    @server.method("redeliver")
    async def redeliver(params: DeliveryRef, ctx: CallContext) -> DeliveryView:
        require_hospital_admin(ctx, params.hospital_id)
        return await webhooks.redeliver(params.hospital_id, params.webhook_id,
                                        params.delivery_id)
