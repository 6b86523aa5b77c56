"""The README section for a hospital's HIS team, generated from the code that makes events.

    python -m services.notify.catalogue > /tmp/section.md

Appointment examples come from booking's own event builder, `schedule.published` and
`doctor.updated` from the catalog contracts; the few bodies services assemble inline are
written here and pinned to the real producers by tests/test_notify_catalogue.py, which also
checks that README.md carries exactly this output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import textwrap
from typing import Any

from services.booking.views import appointment_event
from shared.contracts.catalog import (
    BookingRules,
    Doctor,
    PersonRef,
    ScheduleDefinition,
    SlotDefinition,
)
from shared.contracts.payment import order_id_for, refund_no_for
from shared.messaging.events import EVENTS_EXCHANGE, HOSPITAL_TZ, EventEnvelope, new_event

HOSPITAL_ID = "h_7f3a9c2e41d8"
AT = dt.datetime(2026, 11, 30, 9, 30, 12, 345000, tzinfo=HOSPITAL_TZ)
DOCTOR = PersonRef(id="doc_5b21e07a", name="李明", title="主任医师")
DEPARTMENT = PersonRef(id="dep_c39f4d10", name="心血管内科")
TITLE = "## For a hospital's HIS: events over AMQP and webhooks"

SIGNATURE_SNIPPET = '''\
import hashlib
import hmac
import time


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """True when a webhook request really comes from guahao and is recent."""
    timestamp = headers["X-Guahao-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), headers["X-Guahao-Signature"])
'''

CONSUMER_SNIPPET = """\
import json

import aio_pika

HOSPITAL_ID = "h_7f3a9c2e41d8"  # yours


async def consume(amqp_url: str) -> None:
    # amqp://his_<HOSPITAL_ID>:<password>@<broker>/ : the account the operator gave you
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=32)
    # passive: the exchange is guahao's, your account may not declare (or delete) it
    exchange = await channel.declare_exchange("guahao.events", passive=True)
    queue = await channel.declare_queue(  # yours: his.<HOSPITAL_ID>.<anything>
        f"his.{HOSPITAL_ID}.events", durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(exchange, routing_key=f"*.*.{HOSPITAL_ID}")
    async with queue.iterator() as messages:
        async for message in messages:
            async with message.process(requeue=True):  # ack only after handling
                if already_handled(message.message_id):  # your store of handled ids
                    continue
                handle(json.loads(message.body))  # the envelope below
                remember(message.message_id)
"""

WHEN = {
    "appointment.booked": "a patient booked a slot (at a hospital that collects the fee: once it "
    "was paid)",
    "appointment.pending_payment": "a patient booked a slot at a hospital that collects the "
    "fee; the unit is held until `pay_by`",
    "appointment.cancelled": "cancelled by the patient or the hospital, or by a 停诊 "
    "(`cancelled_by`, `reason`)",
    "appointment.rescheduled": "the hospital moved it (改约); `data.previous` is the old slot",
    "appointment.checked_in": "the patient checked in",
    "appointment.no_show": "the visit day passed without a check-in",
    "appointment.completed": "就诊完成: a checked-in visit is done (from the queue desk: "
    "`queue` with the room and `consult_seconds` = done − called)",
    "queue.called": "候诊叫号: a checked-in patient is called to a room (`recall`: called again)",
    "queue.skipped": "过号: a called (or waiting) patient was not there",
    "queue.requeued": "a skipped patient checked in again: back in the queue after "
    "`late_requeue_after` waiting patients (`late`)",
    "queue.near": "the patient's turn is near: `ahead` waiting patients before them (3 or "
    "fewer, once per appointment), `eta_minutes`",
    "schedule.published": "a clinic session was published with its slots",
    "schedule.stopped": "停诊: the session was stopped; its appointments are cancelled",
    "schedule.capacity_changed": "加号 / capacity reduced on one slot",
    "doctor.updated": "a doctor was created or edited",
    "hospital.rules_updated": "the hospital's booking rules changed",
    "payment.succeeded": "WeChat Pay took the registration fee (挂号费)",
    "payment.refunded": "the registration fee went back to the patient in full",
}


def _envelope(type_: str, data: dict[str, Any], minutes: int) -> EventEnvelope:
    event = new_event(type_, HOSPITAL_ID, data, at=AT + dt.timedelta(minutes=minutes))
    return event.model_copy(update={"id": _event_id(type_)})


def _event_id(type_: str) -> str:
    return "evt_" + hashlib.sha256(type_.encode()).hexdigest()[:32]


PAYMENT: dict[str, Any] = {
    "order_id": order_id_for("apt_1f6e3b9d27c0"),
    "appointment_id": "apt_1f6e3b9d27c0",
    "user_id": "u_94c1a7e2",
    "amount_cents": 5000,
    "transaction_id": "4200001234202612011234567890",
    "paid_at": "2026-12-01T08:01:12+08:00",
}


def _appointment(**changes: Any) -> dict[str, Any]:
    """An appointment as booking stores it (the input of its event builder)."""
    return {
        "_id": "apt_1f6e3b9d27c0",
        "hospital_id": HOSPITAL_ID,
        "status": "booked",
        "slot_id": "slot_8a41c2",
        "schedule_id": "sch_3d92f0",
        "doctor_id": DOCTOR.id,
        "department_id": DEPARTMENT.id,
        "date": "2026-12-02",
        "session": "am",
        "start": "08:30",
        "end": "09:00",
        "seq_no": 7,
        "user_id": "u_94c1a7e2",
        "patient": {"id": "pat_62b0d9", "name": "张三", "id_number_masked": "11****************"},
        "doctor": DOCTOR.model_dump(),
        "department": DEPARTMENT.model_dump(exclude_none=True),
        "fee_cents": 5000,
        **changes,
    }


def _queue(**fields: Any) -> dict[str, Any]:
    """An appointment's place in its session's queue (booking's queue desk)."""
    return {"schedule_id": "sch_3d92f0", "session": "am", "seq_no": 7, **fields}


def appointment_examples() -> list[EventEnvelope]:
    # booking's own builder, so these bodies are exactly what booking publishes
    moved = _appointment(slot_id="slot_8a41c5", start="10:00", end="10:30", seq_no=12)
    examples = [
        appointment_event("appointment.booked", _appointment(), AT),
        appointment_event(
            "appointment.pending_payment",
            _appointment(
                status="pending_payment",
                pay_by=AT + dt.timedelta(minutes=15),
                payment={"order_id": PAYMENT["order_id"], "amount_cents": 5000, "status": "unpaid"},
            ),
            AT,
        ),
        appointment_event(
            "appointment.cancelled",
            _appointment(status="cancelled", cancelled_by="hospital", reason="停诊：医生外出会诊"),
            AT,
        ),
        appointment_event(
            "appointment.rescheduled",
            moved,
            AT,
            previous={
                "slot_id": "slot_8a41c2",
                "date": "2026-12-02",
                "start": "08:30",
                "end": "09:00",
                "seq_no": 7,
            },
        ),
        appointment_event("appointment.checked_in", _appointment(status="checked_in"), AT),
        appointment_event("appointment.no_show", _appointment(status="no_show"), AT),
        appointment_event("appointment.completed", _appointment(status="completed"), AT),
        appointment_event(
            "queue.called",
            _appointment(status="checked_in"),
            AT,
            queue=_queue(state="called", room="3诊室", recall=False),
        ),
        appointment_event(
            "queue.skipped",
            _appointment(status="checked_in"),
            AT,
            queue=_queue(state="skipped", room="3诊室"),
        ),
        appointment_event(
            "queue.requeued",
            _appointment(status="checked_in"),
            AT,
            queue=_queue(state="waiting", room="3诊室", late=True),
        ),
        appointment_event(
            "queue.near",
            _appointment(status="checked_in"),
            AT,
            queue=_queue(state="waiting", ahead=3, eta_minutes=18),
        ),
    ]
    return [_envelope(e.type, e.data, minutes) for minutes, e in enumerate(examples)]


def other_examples() -> list[EventEnvelope]:
    schedule = ScheduleDefinition(
        id="sch_3d92f0",
        hospital_id=HOSPITAL_ID,
        doctor=DOCTOR,
        department=DEPARTMENT,
        date=dt.date(2026, 12, 2),
        session="am",
        fee_cents=5000,
        slots=[SlotDefinition(id="slot_8a41c2", start="08:30", end="09:00", capacity=5)],
    )
    doctor = Doctor(
        id=DOCTOR.id,
        name=DOCTOR.name,
        title=DOCTOR.title or "",
        department_id=DEPARTMENT.id,
        hospital_id=HOSPITAL_ID,
        specialty="冠心病、高血压",
        fee_cents=5000,
        published=True,
    )
    return [
        _envelope(
            "schedule.published",
            {"schedule": schedule.model_dump(mode="json", exclude_none=True)},
            10,
        ),
        _envelope(
            "schedule.stopped",
            {
                "schedule": {
                    "id": schedule.id,
                    "doctor_id": DOCTOR.id,
                    "date": "2026-12-02",
                    "session": "am",
                    "reason": "医生外出会诊",
                }
            },
            11,
        ),
        _envelope(
            "schedule.capacity_changed",
            {
                "slot": {
                    "id": "slot_8a41c2",
                    "schedule_id": schedule.id,
                    "doctor_id": DOCTOR.id,
                    "date": "2026-12-02",
                    "start": "08:30",
                    "end": "09:00",
                    "capacity": 6,
                    "delta": 1,
                }
            },
            12,
        ),
        _envelope(
            "doctor.updated", {"doctor": doctor.model_dump(mode="json", exclude_none=True)}, 13
        ),
        _envelope(
            "hospital.rules_updated",
            {"hospital_id": HOSPITAL_ID, "rules": BookingRules().model_dump()},
            14,
        ),
        _envelope("payment.succeeded", {"payment": {**PAYMENT, "status": "paid"}}, 15),
        _envelope(
            "payment.refunded",
            {
                "payment": {**PAYMENT, "status": "refunded"},
                "refund": {
                    "out_refund_no": refund_no_for(PAYMENT["order_id"]),
                    "amount_cents": 5000,
                    "reason": "患者取消",
                },
            },
            16,
        ),
    ]


def examples() -> list[EventEnvelope]:
    return appointment_examples() + other_examples()


def _p(text: str) -> str:
    return textwrap.fill(text, width=90, break_long_words=False, break_on_hyphens=False)


def render() -> str:
    """The whole README section, markdown."""
    lines = [
        TITLE,
        "",
        "<!-- generated by `python -m services.notify.catalogue`; "
        "tests/test_notify_catalogue.py keeps README.md equal to it -->",
        "",
        _p(
            f"Every change a hospital cares about is an event on the RabbitMQ topic exchange "
            f"`{EVENTS_EXCHANGE}` (durable), routing key `<type>.<hospital_id>`. A hospital "
            "information system (HIS) receives its own hospital's events in either of two ways."
        ),
        "",
        "### Over AMQP: your own queue, your own hospital's events",
        "",
        _p(
            "The operator gives your HIS its own broker account, `his_<hospital_id>` "
            "(`python -m shared.broker_admin add-hospital <hospital_id>`). It may declare, bind "
            "and read only queues named `his.<hospital_id>.*`, and bind them to the exchange only "
            "with keys of your hospital: `*.*.<hospital_id>` (all event types) or "
            "`appointment.booked.<hospital_id>` (one type); binding `#` or another hospital's "
            "id is refused by the broker, and so is declaring, deleting or publishing to the "
            "exchange (declare it passively, as below). Messages are persistent JSON with "
            "`message_id` = event `id`, `type` = event type and `content_type` = "
            "`application/json`."
        ),
        "",
        "```python",
        CONSUMER_SNIPPET.rstrip(),
        "```",
        "",
        _p(
            "Delivery is at least once: after a crash or a network fault an event can arrive "
            "again. **Dedupe by `message_id`** (the event `id`; keep handled ids for 14 days) "
            "and acknowledge only after your own write. Events of one appointment are published "
            "in the order they happened; use `occurred_at` when a repeat arrives late."
        ),
        "",
        "### Over HTTPS: webhooks",
        "",
        _p(
            "A hospital admin registers an endpoint with `POST /api/v1/admin/hospitals/"
            '{hospital_id}/webhooks` `{"url": "https://his.example/guahao", "events": '
            '["appointment.*"]}` (filters: an exact type, `appointment.*`, or `*`). The reply '
            "shows the signing secret once (`POST .../webhooks/{id}/rotate-secret` makes a new "
            "one). Each event is POSTed as the raw envelope with these headers:"
        ),
        "",
        "| header | value |",
        "|---|---|",
        "| `X-Guahao-Event` | the event type |",
        "| `X-Guahao-Delivery` | the delivery id (the same on every retry of it) |",
        "| `X-Guahao-Timestamp` | unix seconds when this attempt was signed |",
        "| `X-Guahao-Signature` | `sha256=` + hex HMAC-SHA256(secret, "
        '`"<timestamp>.<raw body>"`) |',
        "",
        _p(
            "Answer 2xx within 10 s. Anything else (or no answer) is retried with exponential "
            "backoff — 6 attempts over about 20 minutes — then the delivery is marked `failed`; "
            "`GET .../webhooks/{id}/deliveries` lists them and `POST .../deliveries/"
            "{delivery_id}/redeliver` replays one. Deliveries of one appointment are sent in "
            "order (the next waits until the previous one is delivered or has failed). Targets "
            "must be `https` on public addresses; the address is checked again at every attempt. "
            "Dedupe by the envelope `id`, as over AMQP. Verify every request before trusting "
            "it:"
        ),
        "",
        "```python",
        SIGNATURE_SNIPPET.rstrip(),
        "```",
        "",
        "### Event catalogue",
        "",
        _p(
            "Every body is this envelope; `data` depends on the type. Appointment events carry "
            "only the masked ID number of the patient."
        ),
        "",
        "| type | when |",
        "|---|---|",
        *[f"| `{t}` | {when} |" for t, when in WHEN.items()],
        "",
    ]
    for event in examples():
        body = json.dumps(event.model_dump(mode="json"), ensure_ascii=False, indent=2)
        lines += [f"#### `{event.type}`", "", "```json", body, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
