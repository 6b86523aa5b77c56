"""The live queue of a clinic session (候诊叫号): check-in places, call next, recall, skip,
done, what the desk, the patient and the waiting-room screen see, and the ETA.

The queue is a sub-state of checked-in appointments, not new appointment statuses: booking
owns the life cycle (`checked_in → completed`), and a checked-in appointment carries
`queue.{state, rank, room, calls, called_at, near_at, done_at, consult_seconds}`. Waiting
patients are called in `rank` order: the 就诊序号 at check-in; a patient who checks in after
their number was passed (called or skipped) goes in after the next `late_requeue_after`
waiting patients (a hospital rule).

Every change is one guarded write on one appointment with its event in the appointment's
outbox, so a kill between any two writes loses nothing: the state is durable with its event
(the relay publishes what the fast path did not), and the queue is recomputed from the
session's appointments at every read. Call-next takes the first waiting patient with a write
guarded on `queue.state = waiting`: two desks calling at once never get the same patient
(the loser takes the next one). A change that moves the queue forward marks the appointment
`queue_due` until the `queue_near` announcements it causes are written; `repair_once` does
what a crash left undone.

ETA = median consult time (done − called) of this session's timed visits; before there is
one, the doctor's median over the last `DOCTOR_HISTORY_DAYS` days; before that
`DEFAULT_CONSULT_MINUTES` — × patients ahead ÷ rooms active in the last `ACTIVE_ROOM_WINDOW`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from services.booking.domain import check_transition, iso_local
from services.booking.projections import RulesBook
from services.booking.queue_repository import QueueStore
from services.booking.repository import Appointments, Sessions
from services.booking.views import appointment_event, appointment_view
from shared.contracts.booking import Appointment
from shared.contracts.fhir import mask_name
from shared.contracts.queue import (
    DEFAULT_ROOM,
    Display,
    DisplayServing,
    DisplayWaiting,
    PatientQueue,
    QueuedAppointment,
    QueueEntry,
    QueueInfo,
    QueuePatient,
    QueueView,
    RoomState,
)
from shared.errors import InvalidState, NotFound
from shared.faults import FaultPoints
from shared.messaging.outbox import OutboxRelay, with_outbox
from shared.storage.mongo import Document

log = logging.getLogger("guahao.booking.queue")

Clock = Callable[[], dt.datetime]

DEFAULT_CONSULT_MINUTES = 5.0  # before the session or the doctor has a timed visit
DOCTOR_HISTORY_DAYS = 28  # the doctor's recent median: completed visits of these days
DOCTOR_HISTORY_VISITS = 50  # … at most this many, the latest
DOCTOR_MEDIAN_TTL = 300.0  # seconds a replica keeps a doctor's median
ACTIVE_ROOM_WINDOW = dt.timedelta(minutes=30)  # a room that called within it is active
NEAR_AHEAD = 3  # `queue_near` when this many (or fewer) patients are ahead, once
DISPLAY_NEXT = 5  # the waiting-room screen shows the next few
REPAIR_GRACE = dt.timedelta(seconds=10)  # the writer finishes its own follow-up first
CALL_ATTEMPTS = 5


@dataclass(frozen=True)
class Place:
    """An appointment of the session as the queue sees it."""

    doc: Document
    state: str  # not_checked_in | waiting | called | skipped | done
    rank: float

    @property
    def id(self) -> str:
        return str(self.doc["_id"])

    @property
    def queue(self) -> Document:
        return dict(self.doc.get("queue") or {})

    @property
    def seq_no(self) -> int:
        return int(self.doc.get("seq_no") or 0)

    @classmethod
    def of(cls, doc: Document) -> Place:
        queue = doc.get("queue") or {}
        if doc["status"] == "completed":
            state = "done"
        elif doc["status"] == "checked_in":
            state = str(queue.get("state", "waiting"))  # checked in before the queue existed
        else:
            state = "not_checked_in"
        return cls(doc, state, float(queue.get("rank", doc.get("seq_no") or 0) or 0))


@dataclass(frozen=True)
class Line:
    """A session's queue, recomputed from its appointments."""

    places: list[Place]

    @classmethod
    def of(cls, docs: list[Document]) -> Line:
        return cls([Place.of(doc) for doc in docs])

    def in_state(self, state: str) -> list[Place]:
        return [p for p in self.places if p.state == state]

    @property
    def waiting(self) -> list[Place]:
        return sorted(self.in_state("waiting"), key=lambda p: (p.rank, p.id))

    @property
    def called(self) -> list[Place]:
        """Every called patient, the latest call first."""
        return sorted(
            self.in_state("called"), key=lambda p: (p.queue["called_at"], p.rank), reverse=True
        )

    @property
    def done(self) -> list[Place]:
        return sorted(
            self.in_state("done"),
            key=lambda p: (
                p.queue.get("done_at") or p.doc.get("completed_at") or p.doc["updated_at"]
            ),
            reverse=True,
        )

    @property
    def now_serving_seq(self) -> int | None:
        called = self.called
        return called[0].seq_no if called else None

    def passed(self, seq_no: int) -> bool:
        """The queue has called a later number than `seq_no` (its number was passed)."""
        return any(p.seq_no > seq_no and "called_at" in p.queue for p in self.places)

    def active_rooms(self, now: dt.datetime) -> int:
        since = now - ACTIVE_ROOM_WINDOW
        rooms = {
            p.queue["room"]
            for p in self.places
            if "room" in p.queue and p.queue.get("called_at", since) > since
        }
        return max(1, len(rooms))

    def consults(self) -> list[int]:
        return [
            int(p.queue["consult_seconds"])
            for p in self.in_state("done")
            if "consult_seconds" in p.queue
        ]

    def late_rank(self, after: int, excluding: str) -> float:
        """The rank that puts a late patient after the next `after` waiting patients (at
        the end when fewer wait)."""
        waiting = [p for p in self.waiting if p.id != excluding]
        if not waiting:
            return max([p.rank for p in self.places if p.id != excluding] + [0.0]) + 1.0
        if after == 0:
            return waiting[0].rank - 1.0
        if len(waiting) <= after:
            return waiting[-1].rank + 1.0
        return (waiting[after - 1].rank + waiting[after].rank) / 2.0


class QueueDesk:
    def __init__(
        self,
        *,
        store: QueueStore,
        appointments: Appointments,
        sessions: Sessions,
        rules: RulesBook,
        outbox: OutboxRelay,
        faults: FaultPoints,
        clock: Clock,
    ) -> None:
        self.store = store
        self.appointments = appointments
        self.sessions = sessions
        self.rules = rules
        self.outbox = outbox
        self.faults = faults
        self.clock = clock
        self._doctor_medians: dict[str, tuple[float, float | None]] = {}

    # ---- check-in (called by the life cycle) -------------------------------------------

    async def place(self, doc: Document) -> Document:
        """The queue fields a booked appointment's check-in writes: in 就诊序号 order, or
        after `late_requeue_after` waiting patients when its number was passed."""
        line = Line.of(await self.store.of_session(doc["schedule_id"]))
        seq_no = int(doc.get("seq_no") or 0)
        if not line.passed(seq_no):
            return {"state": "waiting", "rank": float(seq_no), "calls": 0}
        rules = await self.rules.rules(doc["hospital_id"])
        return {
            "state": "waiting",
            "rank": line.late_rank(rules.late_requeue_after, doc["_id"]),
            "calls": 0,
            "late": True,
        }

    async def requeue(self, doc: Document) -> Appointment:
        """A skipped patient checks in again: back in after `late_requeue_after` waiting."""
        if Place.of(doc).state != "skipped":
            raise InvalidState(
                "已在候诊队列中 / already in the queue",
                status=doc["status"],
                queue=Place.of(doc).state,
            )
        rules = await self.rules.rules(doc["hospital_id"])
        line = Line.of(await self.store.of_session(doc["schedule_id"]))
        now = self.clock()
        fields = {
            "queue.state": "waiting",
            "queue.late": True,
            "queue.requeued_at": now,
            "queue.rank": line.late_rank(rules.late_requeue_after, doc["_id"]),
            "updated_at": now,
        }
        updated = await self._must(
            self._write(doc, ("skipped",), fields, "queue.requeued", now, late=True), doc
        )
        return appointment_view(updated)

    # ---- the desk ----------------------------------------------------------------------

    async def call_next(
        self, hospital_id: str, schedule_id: str, room: str | None
    ) -> QueuedAppointment:
        """The first waiting patient, called to `room`; 409 when nobody waits."""
        await self._session(hospital_id, schedule_id)
        room = room or DEFAULT_ROOM
        for _ in range(CALL_ATTEMPTS):
            waiting = Line.of(await self.store.of_session(schedule_id)).waiting
            if not waiting:
                raise InvalidState("没有候诊的患者 / nobody is waiting", queue="empty")
            for place in waiting:
                now = self.clock()
                fields = {
                    "queue.state": "called",
                    "queue.room": room,
                    "queue.called_at": now,
                    "updated_at": now,
                }
                updated = await self._write(
                    place.doc,
                    ("waiting",),
                    fields,
                    "queue.called",
                    now,
                    due=True,
                    inc_calls=True,
                    recall=False,
                )
                if updated is not None:
                    await self._follow_up(updated, now)
                    log.info("queue called", extra={"appointment_id": place.id, "room": room})
                    return _queued(updated)
        raise InvalidState("叫号冲突，请重试 / the queue changed meanwhile, try again")

    async def recall(
        self, hospital_id: str, schedule_id: str, appointment_id: str, room: str | None
    ) -> QueuedAppointment:
        """Call a called or skipped patient again (to `room`, else where they were called)."""
        doc = await self._entry(hospital_id, schedule_id, appointment_id)
        now = self.clock()
        room = room or (doc.get("queue") or {}).get("room") or DEFAULT_ROOM
        fields = {
            "queue.state": "called",
            "queue.room": room,
            "queue.called_at": now,
            "updated_at": now,
        }
        updated = await self._must(
            self._write(
                doc, ("called", "skipped"), fields, "queue.called", now, inc_calls=True, recall=True
            ),
            doc,
        )
        return _queued(updated)

    async def skip(
        self, hospital_id: str, schedule_id: str, appointment_id: str
    ) -> QueuedAppointment:
        """过号: a called (or waiting) patient who is not there; they check in again to
        come back (after `late_requeue_after` waiting patients)."""
        doc = await self._entry(hospital_id, schedule_id, appointment_id)
        now = self.clock()
        was_waiting = Place.of(doc).state == "waiting"
        fields = {"queue.state": "skipped", "queue.skipped_at": now, "updated_at": now}
        updated = await self._must(
            self._write(doc, ("called", "waiting"), fields, "queue.skipped", now, due=was_waiting),
            doc,
        )
        if was_waiting:  # the patients behind move up
            await self._follow_up(updated, now)
        return _queued(updated)

    async def done(
        self, hospital_id: str, schedule_id: str, appointment_id: str
    ) -> QueuedAppointment:
        """就诊完成: the called patient's visit is over → `completed`, its consult time
        (done − called) recorded for the ETA."""
        doc = await self._entry(hospital_id, schedule_id, appointment_id)
        check_transition(doc["status"], "completed")
        queue = doc.get("queue") or {}
        if queue.get("state") != "called":
            raise InvalidState("尚未叫号 / not called", queue=Place.of(doc).state)
        now = self.clock()
        consult = max(0, int((now - queue["called_at"]).total_seconds()))
        fields: Document = {
            "status": "completed",
            "completed_at": now,
            "updated_at": now,
            "queue.state": "done",
            "queue.done_at": now,
            "queue.consult_seconds": consult,
        }
        after = _after(doc, fields)
        event = appointment_event(
            "appointment.completed", after, now, queue=self._place(after, consult_seconds=consult)
        )
        updated = await self.store.take(
            doc["_id"], ("called",), with_outbox({"$set": fields}, event)
        )
        if updated is None:
            raise InvalidState(status="changed")
        self.faults.point("queue.done.after_write")
        await self.outbox.publish_committed(self.appointments.collection, doc["_id"], [event])
        return _queued(updated)

    # ---- views -------------------------------------------------------------------------

    async def view(self, hospital_id: str, schedule_id: str) -> QueueView:
        session = await self._session(hospital_id, schedule_id)
        line = Line.of(await self.store.of_session(schedule_id))
        minutes, basis = await self._consult_minutes(
            line, session.hospital_id, session.doctor.id, session.date
        )
        rooms: dict[str, RoomState] = {}
        for place in sorted(
            (p for p in line.places if "called_at" in p.queue), key=lambda p: p.queue["called_at"]
        ):
            rooms[p_room(place)] = RoomState(
                room=p_room(place),
                now_serving_seq=place.seq_no if place.state == "called" else None,
                called_at=iso_local(place.queue["called_at"]),
            )
        return QueueView(
            schedule_id=schedule_id,
            date=session.date,
            session=session.session,
            doctor_name=session.doctor.name,
            department_name=session.department.name,
            now_serving=[_entry(p) for p in line.called],
            waiting=[_entry(p, position=i + 1) for i, p in enumerate(line.waiting)],
            skipped=[
                _entry(p) for p in sorted(line.in_state("skipped"), key=lambda p: (p.rank, p.id))
            ],
            done=[_entry(p) for p in line.done],
            rooms=[rooms[r] for r in sorted(rooms)],
            consult_minutes=round(minutes, 1),
            eta_basis=basis,
        )

    async def for_patient(self, doc: Document) -> PatientQueue:
        """`GET /appointments/{aid}/queue` for the appointment's owner (checked by the
        caller)."""
        line = Line.of(await self.store.of_session(doc["schedule_id"]))
        place = next((p for p in line.places if p.id == doc["_id"]), None)
        seq_no = int(doc.get("seq_no") or 0)
        serving = line.now_serving_seq
        if place is None or place.state == "not_checked_in":  # booked, cancelled, no-show…
            return PatientQueue.model_validate(
                {
                    "status": doc["status"]
                    if doc["status"] in ("cancelled", "no_show")
                    else "not_checked_in",
                    "now_serving_seq": serving,
                    "seq_no": seq_no,
                }
            )
        queue = place.queue
        if place.state == "waiting":
            ahead = next(i for i, p in enumerate(line.waiting) if p.id == place.id)
            eta = await self._eta(line, doc, ahead)
            return PatientQueue(
                status="waiting",
                position=ahead + 1,
                ahead=ahead,
                now_serving_seq=serving,
                eta_minutes=eta,
                seq_no=seq_no,
            )
        called = place.state == "called"
        return PatientQueue.model_validate(
            {
                "status": place.state,
                "now_serving_seq": serving,
                "seq_no": seq_no,
                "eta_minutes": 0 if called else None,
                "room": queue.get("room") if called else None,
            }
        )

    async def display(self, hospital_id: str, schedule_id: str) -> Display:
        """The waiting-room screen: masked names and 就诊序号 only (no id of a patient)."""
        session = await self._session(hospital_id, schedule_id)
        line = Line.of(await self.store.of_session(schedule_id))
        serving: dict[str, Place] = {}
        for place in line.called:  # the latest call of each room
            serving.setdefault(p_room(place), place)
        waiting = line.waiting
        return Display(
            doctor_name=session.doctor.name,
            doctor_title=session.doctor.title,
            department_name=session.department.name,
            date=session.date,
            session=session.session,
            now_serving=[
                DisplayServing(room=room, seq_no=p.seq_no, name=mask_name(p.doc["patient"]["name"]))
                for room, p in sorted(serving.items())
            ],
            next=[
                DisplayWaiting(seq_no=p.seq_no, name=mask_name(p.doc["patient"]["name"]))
                for p in waiting[:DISPLAY_NEXT]
            ],
            waiting_count=len(waiting),
            updated_at=iso_local(self.clock()),
        )

    # ---- queue_near and the repair after a crash ---------------------------------------

    async def announce_near(self, schedule_id: str) -> int:
        """`queue.near` for each waiting patient with at most `NEAR_AHEAD` ahead who was
        not told yet (once per appointment: the write is guarded on `near_at`)."""
        line = Line.of(await self.store.of_session(schedule_id))
        told = 0
        for ahead, place in enumerate(line.waiting[: NEAR_AHEAD + 1]):
            if "near_at" in place.queue:
                continue
            now = self.clock()
            eta = await self._eta(line, place.doc, ahead)
            event = appointment_event(
                "queue.near",
                place.doc,
                now,
                queue=self._place(place.doc, ahead=ahead, eta_minutes=eta),
            )
            if await self.store.announce_near(
                place.id, with_outbox({"$set": {"queue.near_at": now}}, event)
            ):
                told += 1
                self.faults.point("queue.near.after_write")
                await self.outbox.publish_committed(self.appointments.collection, place.id, [event])
        return told

    async def repair_once(self) -> int:
        """Finish the follow-ups a crash left (a leased job, and tests)."""
        due = await self.store.due(self.clock() - REPAIR_GRACE)
        for schedule_id in dict.fromkeys(doc["schedule_id"] for doc in due):
            await self.announce_near(schedule_id)
        for doc in due:
            await self.store.followed_up(doc["_id"], doc["queue_due_at"])
        return len(due)

    # ---- helpers -----------------------------------------------------------------------

    async def _write(
        self,
        doc: Document,
        states: tuple[str, ...],
        fields: Document,
        event_type: str,
        now: dt.datetime,
        *,
        due: bool = False,
        inc_calls: bool = False,
        **place: Any,
    ) -> Document | None:
        """One guarded write of the queue change with its event (and `queue_due` when the
        change has a follow-up); published at once, else by the relay."""
        if due:
            fields = {**fields, "queue_due": True, "queue_due_at": now}
        after = _after(doc, fields)
        if inc_calls:
            after["queue"]["calls"] = int(after["queue"].get("calls", 0)) + 1
        event = appointment_event(event_type, after, now, queue=self._place(after, **place))
        update: Document = {"$set": fields}
        if inc_calls:
            update["$inc"] = {"queue.calls": 1}
        updated = await self.store.take(doc["_id"], states, with_outbox(update, event))
        if updated is None:
            return None
        self.faults.point(f"{event_type}.after_write")
        await self.outbox.publish_committed(self.appointments.collection, doc["_id"], [event])
        return updated

    async def _follow_up(self, updated: Document, at: dt.datetime) -> None:
        await self.announce_near(updated["schedule_id"])
        self.faults.point("queue.after_near")
        await self.store.followed_up(updated["_id"], at)

    async def _must(self, write: Any, doc: Document) -> Document:
        updated: Document | None = await write
        if updated is None:
            current = await self.appointments.get(doc["_id"])
            state = Place.of(current).state if current else "gone"
            raise InvalidState(status=(current or doc)["status"], queue=state)
        return updated

    def _place(self, doc: Document, **extra: Any) -> Document:
        queue = doc.get("queue") or {}
        place = {
            "schedule_id": doc["schedule_id"],
            "session": doc["session"],
            "seq_no": int(doc.get("seq_no") or 0),
            "state": Place.of(doc).state,
            "room": queue.get("room"),
            "late": True if queue.get("late") else None,
        }
        return {**place, **{k: v for k, v in extra.items() if v is not None}}

    async def _session(self, hospital_id: str, schedule_id: str) -> Any:
        session = await self.sessions.get(schedule_id)
        if session is None or session.hospital_id != hospital_id:
            raise NotFound("出诊不存在 / session not found", schedule_id=schedule_id)
        return session

    async def _entry(self, hospital_id: str, schedule_id: str, appointment_id: str) -> Document:
        doc = await self.appointments.get(appointment_id)
        if (
            doc is None
            or doc["hospital_id"] != hospital_id
            or doc["schedule_id"] != schedule_id
            or doc["status"] == "pending"
        ):
            raise NotFound("预约不存在 / appointment not found")
        if doc["status"] != "checked_in":
            raise InvalidState(status=doc["status"])
        return doc

    async def _eta(self, line: Line, doc: Document, ahead: int) -> int:
        minutes, _ = await self._consult_minutes(
            line, doc["hospital_id"], doc["doctor_id"], doc["date"]
        )
        return math.ceil(minutes * ahead / line.active_rooms(self.clock()))

    async def _consult_minutes(
        self, line: Line, hospital_id: str, doctor_id: str, date: str
    ) -> tuple[float, Literal["session", "doctor", "default"]]:
        consults = line.consults()
        if consults:
            return statistics.median(consults) / 60.0, "session"
        doctor = await self._doctor_median(hospital_id, doctor_id, date)
        if doctor is not None:
            return doctor, "doctor"
        return DEFAULT_CONSULT_MINUTES, "default"

    async def _doctor_median(self, hospital_id: str, doctor_id: str, date: str) -> float | None:
        """The doctor's median consult minutes over their recent sessions before `date`
        (kept `DOCTOR_MEDIAN_TTL` seconds per replica)."""
        key = f"{doctor_id}|{date}"
        cached = self._doctor_medians.get(key)
        if cached is not None and time.monotonic() - cached[0] < DOCTOR_MEDIAN_TTL:
            return cached[1]
        day = dt.date.fromisoformat(date)
        dates = [
            (day - dt.timedelta(days=n)).isoformat() for n in range(1, DOCTOR_HISTORY_DAYS + 1)
        ]
        sessions = await self.store.sessions_of_doctor(hospital_id, doctor_id, dates)
        consults = sorted(await self.store.consults_of(sessions) if sessions else [], reverse=True)[
            :DOCTOR_HISTORY_VISITS
        ]
        median = statistics.median(c for _, c in consults) / 60.0 if consults else None
        if len(self._doctor_medians) > 10_000:
            self._doctor_medians.clear()
        self._doctor_medians[key] = (time.monotonic(), median)
        return median


def p_room(place: Place) -> str:
    return str(place.queue.get("room") or DEFAULT_ROOM)


def _after(doc: Document, fields: Document) -> Document:
    """The document as it is after `$set: fields` (dotted `queue.*` paths applied)."""
    after = {**doc, "queue": dict(doc.get("queue") or {})}
    for key, value in fields.items():
        if key.startswith("queue."):
            after["queue"][key.removeprefix("queue.")] = value
        else:
            after[key] = value
    return after


def _queued(doc: Document) -> QueuedAppointment:
    """The appointment a desk action changed, with its place (never waiting after one: no
    position to look up)."""
    info = _entry(Place.of(doc))
    queue = QueueInfo.model_validate(info.model_dump(include=set(QueueInfo.model_fields)))
    return QueuedAppointment.model_validate({**appointment_view(doc).model_dump(), "queue": queue})


def _entry(place: Place, position: int | None = None) -> QueueEntry:
    queue = place.queue
    doc = place.doc

    def at(value: dt.datetime | None) -> str | None:
        return iso_local(value) if value is not None else None

    return QueueEntry(
        appointment_id=place.id,
        seq_no=place.seq_no,
        patient=QueuePatient(
            name=doc["patient"]["name"], id_number_masked=doc["patient"]["id_number_masked"]
        ),
        state=place.state if place.state != "not_checked_in" else "waiting",  # type: ignore[arg-type]
        position=position,
        late=bool(queue.get("late")),
        room=queue.get("room"),
        calls=int(queue.get("calls", 0)),
        checked_in_at=at(doc.get("checked_in_at")),
        called_at=at(queue.get("called_at")),
        done_at=at(queue.get("done_at") or doc.get("completed_at")),
        consult_seconds=queue.get("consult_seconds"),
    )
