"""RPC entry points of the queue (候诊叫号) on `rpc.booking`: the desk (its hospital's
`desk` and `hospital_admin` staff), the patient (their own appointment) and the public
waiting-room display. No rule lives here."""

from __future__ import annotations

from services.booking.lifecycle import AppointmentLifecycle
from services.booking.queue import QueueDesk
from shared.access import require_hospital_desk, require_patient
from shared.context import CallContext
from shared.contracts.booking import AppointmentRef
from shared.contracts.queue import (
    Display,
    DisplayRef,
    PatientQueue,
    QueueCallParams,
    QueuedAppointment,
    QueueEntryRef,
    QueueRecallParams,
    QueueRef,
    QueueView,
)
from shared.messaging.rpc import RpcServer


class QueueHandlers:
    def __init__(self, *, desk: QueueDesk, lifecycle: AppointmentLifecycle) -> None:
        self.desk = desk
        self.lifecycle = lifecycle

    def register(self, server: RpcServer) -> None:
        for name in (
            "queue_call_next",
            "queue_recall",
            "queue_skip",
            "queue_done",
            "queue_view",
            "patient_queue",
            "queue_display",
        ):
            server.add_method(name, getattr(self, name))

    async def queue_call_next(self, params: QueueCallParams, ctx: CallContext) -> QueuedAppointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.desk.call_next(params.hospital_id, params.schedule_id, params.room)

    async def queue_recall(self, params: QueueRecallParams, ctx: CallContext) -> QueuedAppointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.desk.recall(
            params.hospital_id, params.schedule_id, params.appointment_id, params.room
        )

    async def queue_skip(self, params: QueueEntryRef, ctx: CallContext) -> QueuedAppointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.desk.skip(params.hospital_id, params.schedule_id, params.appointment_id)

    async def queue_done(self, params: QueueEntryRef, ctx: CallContext) -> QueuedAppointment:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.desk.done(params.hospital_id, params.schedule_id, params.appointment_id)

    async def queue_view(self, params: QueueRef, ctx: CallContext) -> QueueView:
        require_hospital_desk(ctx, params.hospital_id)
        return await self.desk.view(params.hospital_id, params.schedule_id)

    async def patient_queue(self, params: AppointmentRef, ctx: CallContext) -> PatientQueue:
        doc = await self.lifecycle.own(require_patient(ctx), params.appointment_id)
        return await self.desk.for_patient(doc)

    async def queue_display(self, params: DisplayRef, ctx: CallContext) -> Display:
        """Public (no login): masked names and numbers only."""
        return await self.desk.display(params.hospital_id, params.schedule_id)
