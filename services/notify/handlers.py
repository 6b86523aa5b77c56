"""RPC entry points of `rpc.notify` (replicas compete on the one queue)."""

from __future__ import annotations

from typing import Any

from services.notify.messages import AppointmentMessages
from services.notify.reminders import VisitReminders
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
from shared.messaging.events import PLATFORM, EventEnvelope
from shared.messaging.rpc import RpcServer


def register(
    server: RpcServer, subscriptions: SubscriptionService, webhooks: WebhookService
) -> None:
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
        return await webhooks.list_deliveries(params.hospital_id, params.webhook_id, params.status)

    @server.method("redeliver")
    async def redeliver(params: DeliveryRef, ctx: CallContext) -> DeliveryView:
        require_hospital_admin(ctx, params.hospital_id)
        return await webhooks.redeliver(params.hospital_id, params.webhook_id, params.delivery_id)


class NotifyEvents:
    """`evt.notify.events`: every event once per notify service. A hospital's webhooks get
    their deliveries, an appointment its reminder, a patient their message: at most three
    store operations for an appointment event of a hospital without webhooks (the reminder,
    the quota spent, the message recorded), one more per matching webhook."""

    def __init__(
        self, webhooks: WebhookService, reminders: VisitReminders, messages: AppointmentMessages
    ) -> None:
        self.webhooks = webhooks
        self.reminders = reminders
        self.messages = messages

    async def on_event(self, event: EventEnvelope) -> None:
        if event.hospital_id == PLATFORM:
            return  # internal events (patient profiles, webhook changes) are nobody's
        await self.webhooks.fan_out(event)
        if event.type.startswith("appointment."):
            await self.reminders.on_event(event)
        await self.messages.on_event(event)

    async def webhooks_changed(self, event: EventEnvelope) -> None:
        self.webhooks.forget(str(event.data.get("hospital_id", "")))
