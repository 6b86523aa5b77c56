"""The subscribe-message quota ledger as patients see it (`/subscriptions`).

WeChat keeps no readable count of one-time grants, so the ledger is ours: each `accept` in
`wx.requestSubscribeMessage` adds one send for that template; a send spends one.
"""

from __future__ import annotations

import logging

from services.notify.messages import Clock
from services.notify.repository import Quotas
from services.notify.templates import TemplateSet
from shared.contracts.notify import QuotaItem, QuotaView, TemplateItem, TemplateList
from shared.errors import ValidationFailed

log = logging.getLogger("guahao.notify.subscriptions")


class SubscriptionService:
    def __init__(self, templates: TemplateSet, quotas: Quotas, clock: Clock) -> None:
        self.templates = templates
        self.quotas = quotas
        self.clock = clock

    def template_list(self) -> TemplateList:
        return TemplateList(
            items=[TemplateItem(kind=t.kind, template_id=t.template_id) for t in self.templates]
        )

    async def record(self, user_id: str, results: dict[str, str]) -> QuotaView:
        unknown = [tid for tid in results if tid not in self.templates.by_id]
        if unknown:
            raise ValidationFailed(
                fields={f"results.{tid}": "未知的模板 / unknown template id" for tid in unknown}
            )
        accepted = [tid for tid, result in results.items() if result == "accept"]
        for template_id in accepted:
            await self.quotas.add(user_id, template_id, 1, self.clock())
        log.info("subscriptions recorded", extra={"user_id": user_id, "accepted": len(accepted)})
        return await self.quota(user_id)

    async def quota(self, user_id: str) -> QuotaView:
        counts = await self.quotas.of_user(user_id)
        return QuotaView(
            items=[
                QuotaItem(
                    kind=t.kind,
                    template_id=t.template_id,
                    remaining=max(0, counts.get(t.template_id, 0)),
                )
                for t in self.templates
            ]
        )
