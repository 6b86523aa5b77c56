"""Notify contracts: subscribe-message quota, templates, hospital webhooks and deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.contracts.base import Contract, Reply
from shared.contracts.catalog import Id

NotificationKind = Literal[
    "booking_confirmed",
    "appointment_cancelled",
    "appointment_moved",
    "visit_reminder",
    "waitlist_promoted",
    "queue_near",
]
SubscribeResult = Literal["accept", "reject", "ban", "filter"]
TemplateId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
]
EventPattern = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_.*?]+$")
]
DeliveryStatus = Literal["pending", "in_flight", "delivered", "failed"]


# ---- subscribe messages -----------------------------------------------------------------


class SubscriptionResults(Contract):
    """`POST /subscriptions`: the result object of `wx.requestSubscribeMessage` (without
    its `errMsg`); every `accept` is one send."""

    results: Annotated[dict[TemplateId, SubscribeResult], Field(min_length=1, max_length=20)]


class TemplateItem(Reply):
    kind: NotificationKind
    template_id: str


class TemplateList(Reply):
    items: list[TemplateItem]


class QuotaItem(Reply):
    kind: NotificationKind
    template_id: str
    remaining: int


class QuotaView(Reply):
    items: list[QuotaItem]


class UserOpenidQuery(Contract):
    """Internal (notify → auth `user_openid`): the WeChat openid of a patient user."""

    user_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class UserOpenid(Reply):
    openid: str


# ---- hospital webhooks ------------------------------------------------------------------


class WebhookCreate(Contract):
    """`POST /admin/hospitals/{hospital_id}/webhooks`."""

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2000)]
    events: Annotated[list[EventPattern], Field(min_length=1, max_length=20)]


class WebhookCreateParams(WebhookCreate):
    hospital_id: Id


class WebhookRef(Contract):
    hospital_id: Id
    webhook_id: Id


class WebhookCreated(Reply):
    """The only reply (with rotation) that carries the signing secret."""

    id: str
    url: str
    events: list[str]
    secret: str
    created_at: dt.datetime


class WebhookView(Reply):
    id: str
    url: str
    events: list[str]
    created_at: dt.datetime
    active: bool


class WebhookList(Reply):
    items: list[WebhookView]


class WebhookSecret(Reply):
    id: str
    secret: str


class DeliveryQuery(Contract):
    """Query string of `GET .../webhooks/{webhook_id}/deliveries`."""

    status: DeliveryStatus | None = None


class DeliveryListParams(DeliveryQuery):
    hospital_id: Id
    webhook_id: Id


class DeliveryRef(Contract):
    hospital_id: Id
    webhook_id: Id
    delivery_id: Id


class DeliveryView(Reply):
    id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    created_at: dt.datetime


class DeliveryList(Reply):
    items: list[DeliveryView]
