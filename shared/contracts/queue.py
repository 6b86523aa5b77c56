"""Queue (候诊叫号) contracts: the desk's calls, the staff and patient views of a session's
queue, and the waiting-room display (no login: masked names, no ids of patients)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints

from shared.contracts.base import Contract, Reply, VisibleText
from shared.contracts.booking import Appointment
from shared.contracts.catalog import Id

# a consulting room as the desk names it (`3诊室`, `A-12`); the default room is "1"
Room = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), VisibleText
]
DEFAULT_ROOM = "1"
# where a checked-in appointment is in its session's queue
QueueState = Literal["waiting", "called", "skipped", "done"]
# what the patient endpoint answers (an appointment not in the queue says why)
PatientQueueStatus = Literal[
    "not_checked_in", "waiting", "called", "skipped", "done", "cancelled", "no_show"
]


class QueueRef(Contract):
    """`GET /admin/hospitals/{hid}/schedules/{sid}/queue`."""

    hospital_id: Id
    schedule_id: Id


class QueueCall(Contract):
    """Body of `.../queue/call-next` and `.../queue/{aid}/recall` (optional)."""

    room: Room | None = None


class QueueCallParams(QueueCall):
    hospital_id: Id
    schedule_id: Id


class QueueRecallParams(QueueCall):
    hospital_id: Id
    schedule_id: Id
    appointment_id: Id


class QueueEntryRef(Contract):
    """`.../queue/{aid}/skip`, `.../queue/{aid}/done`."""

    hospital_id: Id
    schedule_id: Id
    appointment_id: Id


class QueuePatient(Reply):
    name: str
    id_number_masked: str


class QueueInfo(Reply):
    """Where a checked-in appointment is in its session's queue."""

    state: QueueState
    position: int | None = None  # 1-based, waiting patients only
    late: bool = False  # re-inserted after `late_requeue_after` waiting patients
    room: str | None = None
    calls: int = 0
    checked_in_at: str | None = None
    called_at: str | None = None
    done_at: str | None = None
    consult_seconds: int | None = None  # done − called


class QueueEntry(QueueInfo):
    """One checked-in appointment of the queue, as the desk sees it."""

    appointment_id: str
    seq_no: int
    patient: QueuePatient


class QueuedAppointment(Appointment):
    """The appointment a desk action (call-next, recall, skip, done) changed, with its
    place in the queue."""

    queue: QueueInfo


class RoomState(Reply):
    room: str
    now_serving_seq: int | None = None
    called_at: str | None = None


class QueueView(Reply):
    """`GET .../queue`: `now_serving` (every called patient, latest call first), `waiting`
    in call order, `skipped`, `done` (latest first), the rooms that called."""

    schedule_id: str
    date: str
    session: str
    doctor_name: str
    department_name: str
    now_serving: list[QueueEntry]
    waiting: list[QueueEntry]
    skipped: list[QueueEntry]
    done: list[QueueEntry]
    rooms: list[RoomState]
    consult_minutes: float  # the median consult time the ETA uses now
    eta_basis: Literal["session", "doctor", "default"]


class PatientQueue(Reply):
    """`GET /appointments/{aid}/queue`."""

    status: PatientQueueStatus
    position: int | None = None
    ahead: int | None = None
    now_serving_seq: int | None = None
    eta_minutes: int | None = None
    room: str | None = None  # where the patient was called
    seq_no: int


class DisplayRef(Contract):
    """`GET /api/v1/display/{hid}/{sid}` (public)."""

    hospital_id: Id
    schedule_id: Id


class DisplayServing(Reply):
    room: str
    seq_no: int
    name: str  # masked: `张*`


class DisplayWaiting(Reply):
    seq_no: int
    name: str  # masked


class Display(Reply):
    """The waiting-room screen: no id of any patient, names masked."""

    doctor_name: str
    doctor_title: str | None = None
    department_name: str
    date: str
    session: str
    now_serving: list[DisplayServing]
    next: list[DisplayWaiting]
    waiting_count: int
    updated_at: str
