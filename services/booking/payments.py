"""The registration fee as booking sees it (issue 13): an appointment of a hospital that
collects the fee is `pending_payment` until the payment service says it was paid
(`payment.succeeded` → booked) or its `pay_by` passes (→ cancelled by the system, reason
`unpaid`, the unit returned once through the life cycle's cancel path).

Booking never talks to WeChat Pay and never waits for the payment service: the order is made
by the payment service from the `appointment.pending_payment` event, and what happens to the
money is projected onto the appointment from the payment events (so `GET /appointments/{id}`
costs no call to another service). The two sides decide alike from the same facts: a fee
that arrives for an appointment that is no longer waiting is refunded by the payment service,
and booking shows it as `refunding`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from services.booking.lifecycle import AppointmentLifecycle, refund_view
from services.booking.repository import Appointments
from services.booking.views import appointment_event
from shared.contracts.events import PaymentRefunded, PaymentSucceeded
from shared.errors import DomainError
from shared.messaging.events import EventEnvelope
from shared.messaging.outbox import OutboxRelay, with_outbox

log = logging.getLogger("guahao.booking.payments")

UNPAID_REASON = "unpaid"


class FeeOutcomes:
    def __init__(
        self,
        *,
        appointments: Appointments,
        lifecycle: AppointmentLifecycle,
        outbox: OutboxRelay,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.appointments = appointments
        self.lifecycle = lifecycle
        self.outbox = outbox
        self.clock = clock

    async def on_event(self, event: EventEnvelope) -> None:
        if event.type == "payment.succeeded":
            await self.paid(PaymentSucceeded.model_validate(event.data))
        elif event.type == "payment.refunded":
            await self.refunded(PaymentRefunded.model_validate(event.data))

    async def paid(self, data: PaymentSucceeded) -> None:
        """pending_payment → booked (with the usual `appointment.booked`), in one write
        guarded by the status; an appointment no longer waiting only shows the refund."""
        aid = data.payment.appointment_id
        doc = await self.appointments.get(aid)
        if doc is None or not doc.get("payment"):
            log.warning("payment for an unknown appointment", extra={"appointment_id": aid})
            return
        if doc["status"] == "pending_payment":
            now = self.clock()
            payment = {**doc["payment"], "status": "paid"}
            fields = {
                "status": "booked",
                "booked_at": now,
                "updated_at": now,
                "awaiting_payment": False,
                "payment": payment,
            }
            event = appointment_event("appointment.booked", {**doc, **fields}, now)
            updated = await self.appointments.transition(
                aid, "pending_payment", with_outbox({"$set": fields}, event)
            )
            if updated is not None:
                log.info("appointment paid and booked", extra={"appointment_id": aid})
                await self.outbox.publish_committed(self.appointments.collection, aid, [event])
                return
            doc = await self.appointments.get(aid)  # expired or cancelled meanwhile
            if doc is None:
                return
        if doc["status"] == "cancelled":
            await self.appointments.record_payment(
                aid,
                ["unpaid", "closed"],
                {
                    "payment": {**doc["payment"], "status": "refunding"},
                    "refund": refund_view(doc["payment"], "processing"),
                },
            )
            log.info("paid after cancellation: refunding", extra={"appointment_id": aid})

    async def refunded(self, data: PaymentRefunded) -> None:
        aid = data.payment.appointment_id
        doc = await self.appointments.get(aid)
        if doc is None or not doc.get("payment"):
            return
        refund = {
            **refund_view(doc["payment"], "succeeded"),
            "out_refund_no": data.refund.out_refund_no,
        }
        await self.appointments.record_payment(
            aid,
            ["unpaid", "paid", "closed", "refunding"],
            {"payment": {**doc["payment"], "status": "refunded"}, "refund": refund},
        )

    async def expire_unpaid(self) -> int:
        """Cancel (by the system, reason `unpaid`) what was not paid by its `pay_by`; the
        cancel path's guarded write makes each unit come back once, whoever races."""
        expired = 0
        for doc in await self.appointments.unpaid_due(self.clock()):
            try:
                await self.lifecycle.cancel(doc, "system", UNPAID_REASON)
                expired += 1
            except DomainError:
                pass  # paid or cancelled meanwhile
        if expired:
            log.info("unpaid appointments cancelled", extra={"count": expired})
        return expired
