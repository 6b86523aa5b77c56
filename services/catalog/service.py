"""Catalog rules: who may change what, what a patient sees, and the events that announce it.

Storage, the booking service and the clock come in as collaborators. Every change is one
single-document write carrying its event in the document's outbox; everything a request
could be refused for is checked before that write, so a refused request changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pydantic import BaseModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.catalog.repository import CatalogRepository, department_key
from shared.access import act_as
from shared.context import Caller
from shared.contracts.booking import Availability, ScheduleAvailability
from shared.contracts.catalog import (
    AdminDoctorQuery,
    AdminScheduleQuery,
    BookingRules,
    Department,
    DepartmentCreate,
    DepartmentCreateParams,
    DepartmentTree,
    Doctor,
    DoctorCreate,
    DoctorCreateParams,
    DoctorList,
    DoctorPatch,
    DoctorPatchParams,
    DoctorQuery,
    Hospital,
    HospitalCreate,
    HospitalDetail,
    HospitalExists,
    HospitalList,
    HospitalOf,
    HospitalOfQuery,
    PersonRef,
    RulesPatch,
    RulesPatchParams,
    SameDayStop,
    Schedule,
    ScheduleCreate,
    ScheduleCreateParams,
    ScheduleDefinition,
    ScheduleList,
    ScheduleQuery,
    Slot,
    SlotDefinition,
)
from shared.contracts.events import DoctorUpdated, RulesUpdated, SchedulePublished, typed_event
from shared.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from shared.idcard import is_ascii_digits
from shared.ids import new_id
from shared.messaging.events import EventEnvelope
from shared.messaging.outbox import outbox_fields, with_outbox
from shared.rules import BookingWindow, local_now, schedule_status
from shared.storage.mongo import Document

log = logging.getLogger("guahao.catalog")

Clock = Callable[[], dt.datetime]

AVAILABILITY_BATCH = 500  # AvailabilityQuery accepts at most this many ids
MAX_RANGE_DAYS = 62
MAX_DAYS_AHEAD = 366
UPDATE_ATTEMPTS = 5
SESSION_ORDER = {"am": 0, "pm": 1, "evening": 2}
CLEARABLE_DOCTOR_FIELDS = frozenset({"specialty", "intro"})

NO_SUCH_HOSPITAL = "医院不存在 / no such hospital"
NO_SUCH_DOCTOR = "医生不存在 / no such doctor"
NO_SUCH_SCHEDULE = "排班不存在 / no such schedule"


class BookingInventory(Protocol):
    """The booking service's view of what is left of each schedule."""

    async def availability(self, schedule_ids: list[str]) -> Availability: ...


class Outbox(Protocol):
    """Publishes a document's pending events right after the write that recorded them."""

    async def flush_quietly(self, collection: AsyncCollection[Document], doc_id: Any) -> None: ...


def require_platform_admin(caller: Caller | None) -> Caller:
    if caller is None:
        raise Unauthenticated()
    act_as(caller)
    if not caller.is_platform_admin:
        raise Forbidden()
    return caller


def require_hospital_staff(caller: Caller | None, hospital_id: str) -> Caller:
    """Platform admin, or the admin of this very hospital; another hospital looks absent.

    (`desk` staff are refused: rules, doctors and schedules are the admins'.) The caller
    becomes the actor of the events this call creates (the audit log).
    """
    if caller is None:
        raise Unauthenticated()
    act_as(caller)
    if caller.is_platform_admin:
        return caller
    if caller.role == "hospital_admin":
        if caller.hospital_id == hospital_id:
            return caller
        raise NotFound(NO_SUCH_HOSPITAL)
    raise Forbidden()


def without_nulls(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def rules_of(hospital: Document | None) -> BookingRules:
    return BookingRules.model_validate((hospital or {}).get("rules") or {})


def hospital_view(doc: Document) -> Hospital:
    return Hospital(
        id=doc["_id"],
        name=doc["name"],
        address=doc.get("address"),
        phone=doc.get("phone"),
        level=doc.get("level"),
        latitude=doc.get("latitude"),
        longitude=doc.get("longitude"),
    )


def hospital_detail(doc: Document) -> HospitalDetail:
    return HospitalDetail(**hospital_view(doc).model_dump(), rules=rules_of(doc))


def doctor_view(doc: Document, next_available: dt.date | None = None) -> Doctor:
    return Doctor(
        id=doc["_id"],
        name=doc["name"],
        title=doc["title"],
        department_id=doc["department_id"],
        hospital_id=doc["hospital_id"],
        specialty=doc.get("specialty"),
        intro=doc.get("intro"),
        fee_cents=doc["fee_cents"],
        published=bool(doc.get("published")),
        next_available_date=next_available,
    )


def definition_of(
    doc: Document, doctor: Document | None, department: Document | None
) -> ScheduleDefinition:
    doctor_ref = (
        PersonRef(id=doctor["_id"], name=doctor["name"], title=doctor["title"])
        if doctor
        else PersonRef(id=doc["doctor_id"], name=doc["doctor_id"])
    )
    department_ref = (
        PersonRef(id=department["_id"], name=department["name"])
        if department
        else PersonRef(id=doc["department_id"], name=doc["department_id"])
    )
    return ScheduleDefinition(
        id=doc["_id"],
        hospital_id=doc["hospital_id"],
        doctor=doctor_ref,
        department=department_ref,
        date=dt.date.fromisoformat(doc["date"]),
        session=doc["session"],
        fee_cents=doc["fee_cents"],
        slots=[SlotDefinition(**slot) for slot in doc["slots"]],
    )


def schedule_view(
    doc: Document, rules: BookingRules, seen: ScheduleAvailability | None, now: dt.datetime
) -> Schedule:
    """A schedule as patients see it; what booking does not know yet is still all free."""
    known = {slot.id: slot for slot in seen.slots} if seen else {}
    date = dt.date.fromisoformat(doc["date"])
    stopped = bool(seen and seen.stopped)
    slots: list[Slot] = []
    for raw in doc["slots"]:
        counted = known.get(raw["id"])
        capacity = counted.capacity if counted else raw["capacity"]
        remaining = max(0, counted.remaining) if counted else capacity
        slot_status = schedule_status(
            rules, date, doc["session"], [(raw["start"], remaining)], stopped=stopped, now=now
        )
        slots.append(
            Slot(
                id=raw["id"],
                start=raw["start"],
                end=raw["end"],
                capacity=capacity,
                remaining=remaining,
                status=slot_status,  # type: ignore[arg-type]
            )
        )
    status = schedule_status(
        rules,
        date,
        doc["session"],
        [(slot.start, slot.remaining) for slot in slots],
        stopped=stopped,
        now=now,
    )
    release_at = (
        BookingWindow(rules, date, doc["session"], slots[0].start).release_at if slots else None
    )
    return Schedule(
        id=doc["_id"],
        doctor_id=doc["doctor_id"],
        date=date,
        session=doc["session"],
        status=status,  # type: ignore[arg-type]  # one of ScheduleStatus, validated here
        release_at=release_at.isoformat() if release_at else None,
        fee_cents=doc["fee_cents"],
        slots=slots,
    )


def schedule_order(doc: Document) -> tuple[str, int, str, str]:
    return doc["date"], SESSION_ORDER.get(doc["session"], 9), doc["doctor_id"], doc["_id"]


def patched_rules(current: BookingRules, patch: RulesPatch) -> BookingRules:
    """The rules after a PATCH: only given fields change, also inside `same_day_stop_time`."""
    data = current.model_dump()
    for name in RulesPatch.model_fields:
        value = getattr(patch, name)
        if name not in patch.model_fields_set or value is None:
            continue
        if isinstance(value, SameDayStop):
            data[name] = {**data[name], **value.model_dump(include=value.model_fields_set)}
        else:
            data[name] = value
    return BookingRules.model_validate(data)


MAX_PAGE_OFFSET = 100_000


def page_offset(cursor: str | None) -> int:
    """The offset an opaque page cursor stands for (ASCII digits; 422 otherwise)."""
    if cursor is None:
        return 0
    if not is_ascii_digits(cursor) or len(cursor) > 6 or int(cursor) > MAX_PAGE_OFFSET:
        raise ValidationFailed.field("cursor", "无效的分页游标 / invalid cursor")
    return int(cursor)


class CatalogService:
    """Hospitals, departments, doctors and clinic sessions."""

    def __init__(
        self,
        repo: CatalogRepository,
        outbox: Outbox,
        booking: BookingInventory,
        clock: Clock,
    ) -> None:
        self.repo = repo
        self.outbox = outbox
        self.booking = booking
        self.clock = clock

    def today(self) -> dt.date:
        """The hospital-local date."""
        return local_now(self.clock()).date()

    # public

    async def list_hospitals(self) -> HospitalList:
        return HospitalList(items=[hospital_view(doc) for doc in await self.repo.list_hospitals()])

    async def get_hospital(self, hospital_id: str) -> HospitalDetail:
        return hospital_detail(await self._hospital(hospital_id))

    async def list_departments(self, hospital_id: str) -> DepartmentTree:
        await self._hospital(hospital_id)
        docs = await self.repo.departments_of(hospital_id)
        children: dict[str, list[Department]] = {}
        for doc in docs:
            if "parent_id" in doc:
                children.setdefault(doc["parent_id"], []).append(
                    Department(id=doc["_id"], name=doc["name"], parent_id=doc["parent_id"])
                )
        return DepartmentTree(
            items=[
                Department(id=doc["_id"], name=doc["name"], children=children.get(doc["_id"], []))
                for doc in docs
                if "parent_id" not in doc
            ]
        )

    async def list_doctors(self, query: DoctorQuery) -> DoctorList:
        """Published doctors; a top-level department includes its sub-departments."""
        department_ids: list[str] | None = None
        if query.department_id is not None:
            department = await self.repo.department(query.department_id)
            if department is None or (
                query.hospital_id is not None and department["hospital_id"] != query.hospital_id
            ):
                return DoctorList(items=[])
            department_ids = [department["_id"]] + [
                doc["_id"]
                for doc in await self.repo.departments_of(department["hospital_id"])
                if doc.get("parent_id") == department["_id"]
            ]
        offset = page_offset(query.cursor)
        needle = (query.q or "").strip().casefold()
        if needle:
            docs = [
                doc
                for doc in await self.repo.find_doctors(
                    hospital_id=query.hospital_id, department_ids=department_ids, published=True
                )
                if needle in doc["name"].casefold() or needle in doc.get("specialty", "").casefold()
            ]
            docs = docs[offset : offset + query.limit + 1]
        else:
            docs = await self.repo.find_doctors(
                hospital_id=query.hospital_id,
                department_ids=department_ids,
                published=True,
                skip=offset,
                limit=query.limit + 1,
            )
        # one more than the page tells whether there is a next one; availability (an RPC to
        # booking per page) is asked for the page only, never for the whole catalog
        more = len(docs) > query.limit
        listed = await self._doctor_list(docs[: query.limit])
        return DoctorList(items=listed.items, next=str(offset + query.limit) if more else None)

    async def hospital_of(self, query: HospitalOfQuery) -> HospitalOf:
        """The hospital of a published doctor, or of a department (NotFound otherwise)."""
        if query.doctor_id is not None:
            doc = await self.repo.doctor(query.doctor_id)
            if doc is None or not doc.get("published"):
                raise NotFound(NO_SUCH_DOCTOR)
        elif query.department_id is not None:
            doc = await self.repo.department(query.department_id)
            if doc is None:
                raise NotFound("科室不存在 / department not found")
        else:
            raise ValidationFailed.field("doctor_id", "须给出医生或科室 / doctor or department")
        return HospitalOf(hospital_id=str(doc["hospital_id"]))

    async def get_doctor(self, doctor_id: str) -> Doctor:
        doc = await self.repo.doctor(doctor_id)
        if doc is None or not doc.get("published"):
            raise NotFound(NO_SUCH_DOCTOR)
        return (await self._doctor_list([doc])).items[0]

    async def doctor_schedules(self, query: ScheduleQuery) -> ScheduleList:
        """A published doctor's sessions, by default the hospital's booking window."""
        doctor = await self.repo.doctor(query.doctor_id)
        if doctor is None or not doctor.get("published"):
            raise NotFound(NO_SUCH_DOCTOR)
        rules = rules_of(await self.repo.hospital(doctor["hospital_id"]))
        today = self.today()
        start = query.from_ or today
        end = query.to or max(start, today) + dt.timedelta(days=rules.window_days)
        if end < start:
            raise ValidationFailed.field("to", "不能早于开始日期 / must not be before from")
        end = min(end, start + dt.timedelta(days=MAX_RANGE_DAYS))
        docs = await self.repo.find_schedules(
            date_from=start, date_to=end, doctor_ids=[doctor["_id"]]
        )
        return await self._schedule_list(docs, {doctor["hospital_id"]: rules})

    # hospital administration

    async def create_hospital(self, caller: Caller | None, spec: HospitalCreate) -> HospitalDetail:
        require_platform_admin(caller)
        doc = self._hospital_doc(new_id("h"), spec)
        await self.repo.insert_hospital(doc)
        log.info("hospital created", extra={"hospital_id": doc["_id"]})
        return hospital_detail(doc)

    async def create_department(
        self, caller: Caller | None, params: DepartmentCreateParams
    ) -> Department:
        require_hospital_staff(caller, params.hospital_id)
        await self._hospital(params.hospital_id)
        doc = await self._department_doc(new_id("dep"), params.hospital_id, params)
        try:
            await self.repo.insert_department(doc)
        except DuplicateKeyError:
            raise Conflict(
                "同级已有同名科室 / a sibling department has this name",
                fields={"name": "已存在 / taken"},
            ) from None
        log.info(
            "department created",
            extra={"hospital_id": params.hospital_id, "department_id": doc["_id"]},
        )
        return Department(id=doc["_id"], name=doc["name"], parent_id=doc.get("parent_id"))

    async def create_doctor(self, caller: Caller | None, params: DoctorCreateParams) -> Doctor:
        require_hospital_staff(caller, params.hospital_id)
        await self._hospital(params.hospital_id)
        await self._department_in(params.hospital_id, params.department_id)
        doc = self._doctor_doc(new_id("doc"), params.hospital_id, params)
        doctor = doctor_view(doc)
        await self.repo.insert_doctor(
            doc
            | outbox_fields(
                self._event("doctor.updated", params.hospital_id, DoctorUpdated(doctor=doctor))
            )
        )
        await self.outbox.flush_quietly(self.repo.doctors, doc["_id"])
        log.info(
            "doctor created", extra={"hospital_id": params.hospital_id, "doctor_id": doc["_id"]}
        )
        return doctor

    async def update_doctor(self, caller: Caller | None, params: DoctorPatchParams) -> Doctor:
        """Edit or (un)publish a doctor; the event carries the state this write produced."""
        require_hospital_staff(caller, params.hospital_id)
        for _ in range(UPDATE_ATTEMPTS):
            doc = await self.repo.doctor(params.doctor_id)
            if doc is None or doc["hospital_id"] != params.hospital_id:
                raise NotFound(NO_SUCH_DOCTOR)
            changes, cleared = self._doctor_changes(doc, params)
            if "department_id" in changes:
                await self._department_in(params.hospital_id, changes["department_id"])
            if not changes and not cleared:
                return doctor_view(doc)
            after = {k: v for k, v in doc.items() if k not in cleared} | changes
            event = self._event(
                "doctor.updated", params.hospital_id, DoctorUpdated(doctor=doctor_view(after))
            )
            update: dict[str, Any] = {
                "$set": {**changes, "updated_at": self.clock()},
                "$inc": {"version": 1},
            }
            if cleared:
                update["$unset"] = {name: "" for name in cleared}
            updated = await self.repo.update_doctor(
                params.hospital_id, params.doctor_id, doc["version"], with_outbox(update, event)
            )
            if updated is not None:
                await self.outbox.flush_quietly(self.repo.doctors, params.doctor_id)
                log.info(
                    "doctor updated",
                    extra={
                        "hospital_id": params.hospital_id,
                        "doctor_id": params.doctor_id,
                        "fields": sorted([*changes, *cleared]),
                    },
                )
                return doctor_view(updated)
        raise Conflict("医生信息正被同时修改，请重试 / concurrent edit, try again")

    async def update_rules(self, caller: Caller | None, params: RulesPatchParams) -> HospitalDetail:
        require_hospital_staff(caller, params.hospital_id)
        for _ in range(UPDATE_ATTEMPTS):
            doc = await self._hospital(params.hospital_id)
            current = rules_of(doc)
            rules = patched_rules(current, params)
            if rules == current:
                return hospital_detail(doc)
            stored = rules.model_dump()
            event = self._event(
                "hospital.rules_updated",
                params.hospital_id,
                RulesUpdated(hospital_id=params.hospital_id, rules=rules),
                keep_none=True,
            )
            update = {"$set": {"rules": stored, "updated_at": self.clock()}, "$inc": {"version": 1}}
            updated = await self.repo.update_hospital(
                params.hospital_id, doc["version"], with_outbox(update, event)
            )
            if updated is not None:
                await self.outbox.flush_quietly(self.repo.hospitals, params.hospital_id)
                log.info("booking rules updated", extra={"hospital_id": params.hospital_id})
                return hospital_detail(updated)
        raise Conflict("规则正被同时修改，请重试 / concurrent edit, try again")

    async def create_schedule(
        self, caller: Caller | None, params: ScheduleCreateParams
    ) -> Schedule:
        """Publish one clinic session; every slot is free until booking says otherwise."""
        require_hospital_staff(caller, params.hospital_id)
        hospital = await self._hospital(params.hospital_id)
        doctor = await self.repo.doctor(params.doctor_id)
        if doctor is None or doctor["hospital_id"] != params.hospital_id:
            raise NotFound(NO_SUCH_DOCTOR)
        today = self.today()
        if params.date < today:
            raise ValidationFailed.field("date", "不能早于今天 / must not be in the past")
        if params.date > today + dt.timedelta(days=MAX_DAYS_AHEAD):
            raise ValidationFailed.field("date", "日期过远 / too far ahead")
        department = await self.repo.department(doctor["department_id"])
        doc = self._schedule_doc(new_id("sch"), doctor, department, params)
        try:
            await self.repo.insert_schedule(doc)
        except DuplicateKeyError:
            raise Conflict(
                "该医生该日该时段已有排班 / this doctor already has this session",
                doctor_id=params.doctor_id,
                date=params.date.isoformat(),
                session=params.session,
            ) from None
        await self.outbox.flush_quietly(self.repo.schedules, doc["_id"])
        log.info(
            "schedule published",
            extra={
                "hospital_id": params.hospital_id,
                "schedule_id": doc["_id"],
                "doctor_id": params.doctor_id,
                "date": doc["date"],
                "session": params.session,
            },
        )
        return schedule_view(doc, rules_of(hospital), None, self.clock())

    async def admin_doctors(self, caller: Caller | None, query: AdminDoctorQuery) -> DoctorList:
        """Every doctor of the hospital, published or not."""
        require_hospital_staff(caller, query.hospital_id)
        await self._hospital(query.hospital_id)
        return await self._doctor_list(await self.repo.find_doctors(hospital_id=query.hospital_id))

    async def admin_schedules(
        self, caller: Caller | None, query: AdminScheduleQuery
    ) -> ScheduleList:
        """The hospital's sessions on one date, or else over its booking window."""
        require_hospital_staff(caller, query.hospital_id)
        rules = rules_of(await self._hospital(query.hospital_id))
        if query.date is not None:
            start = end = query.date
        else:
            start = self.today()
            end = start + dt.timedelta(days=rules.window_days)
        docs = await self.repo.find_schedules(
            date_from=start,
            date_to=end,
            hospital_id=query.hospital_id,
            doctor_ids=[query.doctor_id] if query.doctor_id else None,
        )
        return await self._schedule_list(docs, {query.hospital_id: rules})

    # internal (other services)

    async def hospital_exists(self, hospital_id: str) -> HospitalExists:
        return HospitalExists(exists=await self.repo.hospital(hospital_id) is not None)

    async def booking_rules(self, hospital_id: str) -> BookingRules:
        return rules_of(await self._hospital(hospital_id))

    async def schedule_for_slot(self, slot_id: str) -> ScheduleDefinition:
        doc = await self.repo.schedule_with_slot(slot_id)
        if doc is None:
            raise NotFound("号源不存在 / no such slot")
        return await self._definition(doc)

    async def schedule_definition(self, schedule_id: str) -> ScheduleDefinition:
        doc = await self.repo.schedule(schedule_id)
        if doc is None:
            raise NotFound(NO_SUCH_SCHEDULE)
        return await self._definition(doc)

    # seeding with fixed ids (demo data): no caller, create what is missing, skip the rest.
    # Their events stay in the outbox for the relay, which runs once the service is up.

    async def seed_hospital(self, hospital_id: str, spec: HospitalCreate) -> bool:
        try:
            await self.repo.insert_hospital(self._hospital_doc(hospital_id, spec))
        except DuplicateKeyError:
            return False
        return True

    async def seed_department(
        self, department_id: str, hospital_id: str, spec: DepartmentCreate
    ) -> bool:
        try:
            await self.repo.insert_department(
                await self._department_doc(department_id, hospital_id, spec)
            )
        except DuplicateKeyError:
            return False
        return True

    async def seed_doctor(self, doctor_id: str, hospital_id: str, spec: DoctorCreate) -> bool:
        doc = self._doctor_doc(doctor_id, hospital_id, spec)
        event = self._event("doctor.updated", hospital_id, DoctorUpdated(doctor=doctor_view(doc)))
        try:
            await self.repo.insert_doctor(doc | outbox_fields(event))
        except DuplicateKeyError:
            return False
        return True

    async def seed_schedules(
        self, doctor_id: str, sessions: list[tuple[str, ScheduleCreate]]
    ) -> int:
        """Insert the sessions not there yet (from today on); return how many were new."""
        existing = await self.repo.existing_schedule_ids(sid for sid, _ in sessions)
        today = self.today()
        missing = [
            (sid, spec) for sid, spec in sessions if sid not in existing and spec.date >= today
        ]
        if not missing:
            return 0
        doctor = await self.repo.doctor(doctor_id)
        if doctor is None:
            raise NotFound(NO_SUCH_DOCTOR)
        department = await self.repo.department(doctor["department_id"])
        created = 0
        for sid, spec in missing:
            try:
                await self.repo.insert_schedule(self._schedule_doc(sid, doctor, department, spec))
            except DuplicateKeyError:
                continue
            created += 1
        return created

    # helpers

    def _event(
        self, event_type: str, hospital_id: str, data: BaseModel, *, keep_none: bool = False
    ) -> EventEnvelope:
        return typed_event(event_type, hospital_id, data, at=self.clock(), keep_none=keep_none)

    async def _hospital(self, hospital_id: str) -> Document:
        doc = await self.repo.hospital(hospital_id)
        if doc is None:
            raise NotFound(NO_SUCH_HOSPITAL)
        return doc

    async def _department_in(self, hospital_id: str, department_id: str) -> Document:
        doc = await self.repo.department(department_id)
        if doc is None or doc["hospital_id"] != hospital_id:
            raise ValidationFailed.field("department_id", "科室不存在 / no such department")
        return doc

    def _hospital_doc(self, hospital_id: str, spec: HospitalCreate) -> Document:
        return without_nulls(
            {
                "_id": hospital_id,
                "name": spec.name,
                "address": spec.address,
                "phone": spec.phone,
                "level": spec.level,
                "rules": (spec.rules or BookingRules()).model_dump(),
                "latitude": spec.latitude,
                "longitude": spec.longitude,
                "version": 1,
                "created_at": self.clock(),
            }
        )

    async def _department_doc(
        self, department_id: str, hospital_id: str, spec: DepartmentCreate
    ) -> Document:
        """Departments have two levels: a parent must be a top-level one of this hospital."""
        if spec.parent_id is not None:
            parent = await self.repo.department(spec.parent_id)
            if parent is None or parent["hospital_id"] != hospital_id:
                raise ValidationFailed.field("parent_id", "上级科室不存在 / no such department")
            if "parent_id" in parent:
                raise ValidationFailed.field(
                    "parent_id", "科室最多两级 / departments have at most two levels"
                )
        return without_nulls(
            {
                "_id": department_id,
                "hospital_id": hospital_id,
                "name": spec.name,
                "parent_id": spec.parent_id,
                "parent_key": department_key(spec.parent_id),
                "created_at": self.clock(),
            }
        )

    def _doctor_doc(self, doctor_id: str, hospital_id: str, spec: DoctorCreate) -> Document:
        now = self.clock()
        return without_nulls(
            {
                "_id": doctor_id,
                "hospital_id": hospital_id,
                "department_id": spec.department_id,
                "name": spec.name,
                "title": spec.title,
                "specialty": spec.specialty,
                "intro": spec.intro,
                "fee_cents": spec.fee_cents,
                "published": spec.published,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )

    def _schedule_doc(
        self,
        schedule_id: str,
        doctor: Document,
        department: Document | None,
        spec: ScheduleCreate,
    ) -> Document:
        return self.schedule_document(schedule_id, doctor, department, spec)

    def schedule_document(
        self,
        schedule_id: str,
        doctor: Document,
        department: Document | None,
        spec: ScheduleCreate,
        *,
        slot_ids: list[str] | None = None,
        extra: Document | None = None,
    ) -> Document:
        """A new schedule with its `schedule.published` event in the outbox: the one way a
        session is made, by hand or from a template (which passes stable slot ids and its
        own fields in `extra`)."""
        ids = slot_ids or [new_id("slot") for _ in spec.slots]
        doc: Document = {
            "_id": schedule_id,
            "hospital_id": doctor["hospital_id"],
            "doctor_id": doctor["_id"],
            "department_id": doctor["department_id"],
            "date": spec.date.isoformat(),
            "session": spec.session,
            "fee_cents": spec.fee_cents if spec.fee_cents is not None else doctor["fee_cents"],
            "slots": [
                {"id": slot_id, "start": slot.start, "end": slot.end, "capacity": slot.capacity}
                for slot_id, slot in zip(ids, spec.slots, strict=True)
            ],
            "created_at": self.clock(),
            **(extra or {}),
        }
        definition = definition_of(doc, doctor, department)
        event = self._event(
            "schedule.published", doctor["hospital_id"], SchedulePublished(schedule=definition)
        )
        return doc | outbox_fields(event)

    @staticmethod
    def _doctor_changes(doc: Document, patch: DoctorPatch) -> tuple[dict[str, Any], list[str]]:
        """(fields to set, fields to remove); null clears an optional field, else is refused."""
        changes: dict[str, Any] = {}
        cleared: list[str] = []
        refused: dict[str, str] = {}
        for name in DoctorPatch.model_fields:
            if name not in patch.model_fields_set:
                continue
            value = getattr(patch, name)
            if value is None:
                if name not in CLEARABLE_DOCTOR_FIELDS:
                    refused[name] = "不能为空 / must not be null"
                elif name in doc:
                    cleared.append(name)
            elif doc.get(name) != value:
                changes[name] = value
        if refused:
            raise ValidationFailed(fields=refused)
        return changes, cleared

    async def _definition(self, doc: Document) -> ScheduleDefinition:
        return definition_of(
            doc,
            await self.repo.doctor(doc["doctor_id"]),
            await self.repo.department(doc["department_id"]),
        )

    async def _availability(self, schedule_ids: list[str]) -> dict[str, ScheduleAvailability]:
        """What booking says is left; ServiceUnavailable rather than made-up numbers."""
        found: dict[str, ScheduleAvailability] = {}
        for i in range(0, len(schedule_ids), AVAILABILITY_BATCH):
            try:
                reply = await self.booking.availability(schedule_ids[i : i + AVAILABILITY_BATCH])
            except (DomainError, ValueError) as exc:
                log.warning("booking availability unavailable", extra={"error": repr(exc)})
                raise ServiceUnavailable(upstream="booking") from None
            found.update((item.schedule_id, item) for item in reply.items)
        return found

    async def _schedule_list(
        self, docs: list[Document], rules: dict[str, BookingRules]
    ) -> ScheduleList:
        docs = sorted(docs, key=schedule_order)
        seen = await self._availability([doc["_id"] for doc in docs]) if docs else {}
        now = self.clock()
        return ScheduleList(
            items=[
                schedule_view(
                    doc, rules.get(doc["hospital_id"], BookingRules()), seen.get(doc["_id"]), now
                )
                for doc in docs
            ]
        )

    async def _doctor_list(self, docs: list[Document]) -> DoctorList:
        next_dates = await self._next_available_dates(docs)
        return DoctorList(items=[doctor_view(doc, next_dates.get(doc["_id"])) for doc in docs])

    async def _next_available_dates(self, doctors: Iterable[Document]) -> dict[str, dt.date]:
        """Per doctor, the earliest date within its hospital's window with an open session.

        Best effort: without booking's numbers the dates are simply left out.
        """
        doctors = list(doctors)
        if not doctors:
            return {}
        hospitals = await self.repo.hospitals_by_id(doc["hospital_id"] for doc in doctors)
        rules = {hid: rules_of(doc) for hid, doc in hospitals.items()}
        today = self.today()
        last_day = {hid: today + dt.timedelta(days=r.window_days) for hid, r in rules.items()}
        if not last_day:
            return {}
        docs = [
            doc
            for doc in await self.repo.find_schedules(
                date_from=today,
                date_to=max(last_day.values()),
                doctor_ids=[doc["_id"] for doc in doctors],
            )
            if doc["hospital_id"] in last_day
            and dt.date.fromisoformat(doc["date"]) <= last_day[doc["hospital_id"]]
        ]
        if not docs:
            return {}
        try:
            seen = await self._availability([doc["_id"] for doc in docs])
        except ServiceUnavailable:
            return {}
        now = self.clock()
        found: dict[str, dt.date] = {}
        for doc in sorted(docs, key=schedule_order):
            if doc["doctor_id"] in found:
                continue
            view = schedule_view(doc, rules[doc["hospital_id"]], seen.get(doc["_id"]), now)
            if view.status == "open":
                found[doc["doctor_id"]] = view.date
        return found
