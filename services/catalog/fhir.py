"""FHIR R4 views of the catalog, next to the data they come from: a published doctor is a
Practitioner, a hospital a Location, a clinic session (排班) a Schedule and each of its time
slices one Slot. Reads, searches (`schedule.actor`, `start` ranges with FHIR prefixes,
`status`, ...) and the pages of the SMART Scheduling Links bulk files.

What is left of a slice comes from booking's `availability` (as in the patient listing):
without it the answer is 503, never invented numbers. A slice is `free` while it can be
booked now, `busy` when full, `busy-unavailable` when stopped (停诊), closed or not released.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote, urlencode

from services.catalog.service import CatalogService, rules_of, schedule_order, schedule_view
from shared.context import CallContext
from shared.contracts.catalog import Schedule
from shared.contracts.fhir import (
    BOOKING_DEEP_LINK,
    DEFAULT_COUNT,
    MAX_COUNT,
    RESULT_PARAMETERS,
    SEARCH_PARAMETERS,
    SESSION_LABELS,
    SLOT_CAPACITY,
    Address,
    BundleEntry,
    BundleEntrySearch,
    BundleLink,
    CatalogResourceType,
    CodeableConcept,
    Coding,
    ContactPoint,
    Extension,
    FhirBulkChunk,
    FhirBulkPage,
    FhirBundle,
    FhirLocation,
    FhirPractitioner,
    FhirRead,
    FhirSchedule,
    FhirSearch,
    FhirSlot,
    HumanName,
    Period,
    PractitionerQualification,
    Reference,
    SlotStatus,
    fhir_id,
    guahao_id,
    local_instant,
    reference_to,
)
from shared.errors import BadRequest, NotFound
from shared.idcard import is_ascii_digits
from shared.messaging.rpc import RpcServer
from shared.rules import HOSPITAL_TZ, local_now
from shared.settings import Settings
from shared.storage.mongo import Document

FhirCatalogResource = FhirPractitioner | FhirLocation | FhirSchedule | FhirSlot

# The mini-program page a booking deep link opens (it reads `id` and `hospital_id`; `date`
# and `slot_id` name the slice the link was published for).
DOCTOR_PAGE = "pages/doctor/index"
HOSPITAL_TYPE = CodeableConcept(
    coding=[
        Coding(
            system="http://terminology.hl7.org/CodeSystem/v3-RoleCode",
            code="HOSP",
            display="Hospital",
        )
    ]
)

SLOT_STATUS: dict[str, SlotStatus] = {
    "open": "free",
    "full": "busy",
    "stopped": "busy-unavailable",
    "closed": "busy-unavailable",
    "not_released": "busy-unavailable",
}
SLOT_COMMENT = {
    "full": "已约满 / fully booked",
    "stopped": "停诊 / clinic stopped",
    "closed": "预约已截止 / booking closed",
}

MAX_SEARCH_SCHEDULES = 1000  # a search touching more sessions must be narrowed
MAX_OFFSET = 100_000
BULK_PAGE_TARGET = 500  # resources per bulk page (a page is whole hospital-days)

NO_SUCH_RESOURCE = "资源不存在 / no such resource"
ALL_DATES = (dt.date.min, dt.date.max)


def invalid(message: str, parameter: str | None = None, *, issue: str = "invalid") -> BadRequest:
    """A refused search: 400 with the OperationOutcome issue code the gateway will use."""
    details: dict[str, str] = {"issue": issue}
    if parameter is not None:
        details["parameter"] = parameter
    return BadRequest(message, **details)


# --- mapping ------------------------------------------------------------------------------


def human_name(name: str) -> HumanName:
    """Text always; family/given only where the name says them (`Anna Smith`): a Chinese
    name (`王建国`) carries no separator, and guessing its surname would be wrong for 欧阳."""
    parts = name.split()
    if len(parts) >= 2:
        return HumanName(use="official", text=name, family=parts[-1], given=parts[:-1])
    return HumanName(use="official", text=name)


def practitioner_resource(doctor: Document) -> FhirPractitioner:
    return FhirPractitioner(
        id=fhir_id(doctor["_id"]),
        active=bool(doctor.get("published")),
        name=[human_name(doctor["name"])],
        qualification=[PractitionerQualification(code=CodeableConcept(text=doctor["title"]))],
    )


_MUNICIPALITIES = ("北京市", "上海市", "天津市", "重庆市")
_PLACE = "(?:(?![路街道巷弄号])[\u4e00-\u9fff])"  # a CJK character that is no street word
_ADDRESS = re.compile(
    "^(?P<state>" + _PLACE + "{2,7}?(?:省|自治区|特别行政区))?"
    "(?P<city>" + _PLACE + "{2,10}?(?:市|自治州|地区|盟))?"
    "(?P<district>" + _PLACE + "{1,10}?(?:区|县|旗))?"
    r"(?P<line>\S.*)?$"
)


def postal_address(text: str) -> Address:
    """The hospital's address: the text as given, plus province/city/district/street when a
    Chinese address spells them out in the usual order (`北京市东城区帅府园1号`)."""
    address = Address(use="work", type="physical", text=text, country="CN")
    match = _ADDRESS.match(text.strip())
    if match is None or not (match["city"] or match["state"]):
        return address
    city, state = match["city"], match["state"]
    if state is None and city in _MUNICIPALITIES:
        state = city
    return address.model_copy(
        update={
            "state": state,
            "city": city,
            "district": match["district"],
            "line": [match["line"]] if match["line"] else None,
        }
    )


def location_resource(hospital: Document) -> FhirLocation:
    phone = hospital.get("phone")
    address = hospital.get("address")
    return FhirLocation(
        id=fhir_id(hospital["_id"]),
        status="active",
        name=hospital["name"],
        description=hospital.get("level"),
        mode="instance",
        type=[HOSPITAL_TYPE],
        telecom=[ContactPoint(system="phone", value=phone, use="work")] if phone else None,
        address=postal_address(address) if address else None,
    )


@dataclass(frozen=True)
class ClinicSession:
    """One schedule with what its FHIR views need: the patients' view of it (status and
    remaining per slice), its doctor, department and hospital."""

    doc: Document
    view: Schedule
    doctor: Document
    hospital: Document
    department: Document | None

    @property
    def department_concept(self) -> list[CodeableConcept] | None:
        name = self.department["name"] if self.department else None
        return [CodeableConcept(text=name)] if name else None

    @property
    def horizon(self) -> tuple[str, str]:
        """The first slice's start and the last slice's end, as instants."""
        return (
            local_instant(self.view.date, min(s.start for s in self.view.slots)),
            local_instant(self.view.date, max(s.end for s in self.view.slots)),
        )


def doctor_display(doctor: Document) -> str:
    return f"{doctor['name']} {doctor['title']}"


def schedule_resource(session: ClinicSession) -> FhirSchedule:
    view = session.view
    start, end = session.horizon
    fee = f"{view.fee_cents // 100}.{view.fee_cents % 100:02d}"
    return FhirSchedule(
        id=fhir_id(view.id),
        active=view.status != "stopped",
        serviceType=session.department_concept,
        specialty=session.department_concept,
        actor=[
            Reference(
                reference=reference_to("Practitioner", view.doctor_id),
                display=doctor_display(session.doctor),
            ),
            Reference(
                reference=reference_to("Location", session.hospital["_id"]),
                display=session.hospital["name"],
            ),
        ],
        planningHorizon=Period(start=start, end=end),
        comment=f"{view.date.isoformat()} {SESSION_LABELS.get(view.session, view.session)}"
        f" · 挂号费 / fee ¥{fee}",
    )


def booking_deep_link(appid: str, session: ClinicSession, slot_id: str) -> str:
    """WeChat's plain URL Scheme opening the doctor page of the mini-program:
    `weixin://dl/business/?appid=<appid>&path=pages/doctor/index&query=<url-encoded
    id=<doctor>&hospital_id=<hospital>&date=<YYYY-MM-DD>&slot_id=<slot>>`."""
    query = urlencode(
        {
            "id": session.view.doctor_id,
            "hospital_id": session.hospital["_id"],
            "date": session.view.date.isoformat(),
            "slot_id": slot_id,
        }
    )
    return (
        f"weixin://dl/business/?appid={quote(appid, safe='')}&path={DOCTOR_PAGE}"
        f"&query={quote(query, safe='')}"
    )


def slot_comment(status: str, release_at: str | None) -> str | None:
    if status == "not_released":
        return f"未放号，{release_at} 开放 / opens at {release_at}" if release_at else "未放号"
    return SLOT_COMMENT.get(status)


def slot_resources(session: ClinicSession, appid: str) -> list[FhirSlot]:
    """One Slot per time slice, with the SMART Scheduling Links capacity (what is left) and
    booking deep link extensions."""
    view = session.view
    schedule = Reference(reference=reference_to("Schedule", view.id))
    return [
        FhirSlot(
            id=fhir_id(slice_.id),
            extension=[
                Extension(url=SLOT_CAPACITY, valueInteger=max(0, slice_.remaining)),
                Extension(
                    url=BOOKING_DEEP_LINK, valueUrl=booking_deep_link(appid, session, slice_.id)
                ),
            ],
            serviceType=session.department_concept,
            specialty=session.department_concept,
            schedule=schedule,
            status=SLOT_STATUS[slice_.status],
            start=local_instant(view.date, slice_.start),
            end=local_instant(view.date, slice_.end),
            comment=slot_comment(slice_.status, view.release_at),
        )
        for slice_ in view.slots
    ]


# --- search parameters --------------------------------------------------------------------

DATE_PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"})
_DATE_VALUE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$",
    re.ASCII,
)
# Searchable years and zone offsets: anything wider only overflows datetime arithmetic
# (year 9999 at -14:00 is past datetime.max in UTC); real zones lie within ±14:00.
DATE_YEARS = range(1900, 3000)
MAX_ZONE_OFFSET = dt.timedelta(hours=14)


@dataclass(frozen=True)
class DateCriterion:
    """One `date`-type search value: a prefix and the range its precision covers,
    [low, high). Without a zone the value is hospital-local (Asia/Shanghai)."""

    prefix: str
    low: dt.datetime
    high: dt.datetime

    def matches_instant(self, at: dt.datetime) -> bool:
        """For a point in time (a slot's start)."""
        inside = self.low <= at < self.high
        return {
            "eq": inside,
            "ne": not inside,
            "ge": at >= self.low,
            "le": at < self.high,
            "gt": at >= self.high,
            "sa": at >= self.high,
            "lt": at < self.low,
            "eb": at < self.low,
        }[self.prefix]

    def matches_period(self, start: dt.datetime, end: dt.datetime) -> bool:
        """For a period [start, end) (a schedule's planning horizon), as FHIR defines the
        prefixes on ranges: eq = contained, gt = extends above, ge = gt or eq, ..."""
        contained = self.low <= start and end <= self.high
        return {
            "eq": contained,
            "ne": not contained,
            "gt": end > self.high,
            "lt": start < self.low,
            "ge": end > self.high or contained,
            "le": start < self.low or contained,
            "sa": start >= self.high,
            "eb": end <= self.low,
        }[self.prefix]

    @property
    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """Where matching targets can lie at all: (at or after, before), None = open."""
        lower = (
            self.low
            if self.prefix in ("eq", "ge")
            else (self.high if self.prefix in ("gt", "sa") else None)
        )
        upper = (
            self.high
            if self.prefix in ("eq", "le")
            else (self.low if self.prefix in ("lt", "eb") else None)
        )
        return lower, upper


def parse_date_criterion(parameter: str, raw: str) -> DateCriterion:
    # an unencoded `+08:00` arrives as ` 08:00` (form encoding): take the space back
    value = raw.strip().replace(" ", "+")
    prefix = "eq"
    if value[:2].isalpha():
        prefix, value = value[:2], value[2:]
    if prefix == "ap":
        raise invalid(
            "不支持 ap 前缀 / the ap prefix is not supported", parameter, issue="not-supported"
        )
    match = _DATE_VALUE.match(value)
    if prefix not in DATE_PREFIXES or match is None:
        raise invalid(f"无效的日期 / invalid date: {raw}", parameter)
    zone: dt.tzinfo = HOSPITAL_TZ
    if match["tz"] == "Z":
        zone = dt.UTC
    elif match["tz"]:
        sign = 1 if match["tz"][0] == "+" else -1
        hours, minutes = int(match["tz"][1:3]), int(match["tz"][4:6])
        offset = dt.timedelta(hours=hours, minutes=minutes)
        if minutes > 59 or offset > MAX_ZONE_OFFSET:
            raise invalid(f"时区偏移应在 ±14:00 以内 / zone offset beyond ±14:00: {raw}", parameter)
        zone = dt.timezone(sign * offset)
    year = int(match["year"])
    if year not in DATE_YEARS:
        raise invalid(f"年份应在 1900–2999 / year must be 1900–2999: {raw}", parameter)
    try:
        if match["hour"] is not None:
            low = dt.datetime(
                year,
                int(match["month"]),
                int(match["day"]),
                int(match["hour"]),
                int(match["minute"]),
                int(match["second"] or 0),
                tzinfo=zone,
            )
            high = low + (dt.timedelta(seconds=1) if match["second"] else dt.timedelta(minutes=1))
        elif match["day"] is not None:
            low = dt.datetime(year, int(match["month"]), int(match["day"]), tzinfo=zone)
            high = low + dt.timedelta(days=1)
        elif match["month"] is not None:
            month = int(match["month"])
            low = dt.datetime(year, month, 1, tzinfo=zone)
            high = (
                dt.datetime(year + 1, 1, 1, tzinfo=zone)
                if month == 12
                else dt.datetime(year, month + 1, 1, tzinfo=zone)
            )
        else:
            low = dt.datetime(year, 1, 1, tzinfo=zone)
            high = dt.datetime(year + 1, 1, 1, tzinfo=zone)
    except (ValueError, OverflowError):
        raise invalid(f"无效的日期 / invalid date: {raw}", parameter) from None
    return DateCriterion(prefix, low, high)


@dataclass(frozen=True)
class Term:
    """One occurrence of a parameter: its values are alternatives (comma = OR); several
    occurrences of one parameter must all hold (repeat = AND)."""

    modifier: str | None
    values: tuple[str, ...]


@dataclass
class SearchQuery:
    resource_type: CatalogResourceType
    terms: dict[str, list[Term]] = field(default_factory=dict)
    count: int = DEFAULT_COUNT
    offset: int = 0
    summary_count: bool = False

    def of(self, name: str) -> list[Term]:
        return self.terms.get(name, [])

    def id_sets(self) -> list[set[str]]:
        """`_id` terms as sets of guahao ids."""
        return [{guahao_id(v) for v in term.values} for term in self.of("_id")]

    def dates(self, name: str) -> list[list[DateCriterion]]:
        return [[parse_date_criterion(name, v) for v in term.values] for term in self.of(name)]

    def references(self, name: str, allowed: tuple[str, ...]) -> list[list[Ref]]:
        return [[parse_reference(name, v, allowed) for v in term.values] for term in self.of(name)]


def _integer(name: str, raw: str, maximum: int) -> int:
    # ASCII only: isdigit() also accepts "²" (which int() refuses) and "٣" (which it reads)
    if not is_ascii_digits(raw) or len(raw) > 9 or int(raw) > maximum:
        raise invalid(f"{name} 应为 0–{maximum} 的整数 / must be an integer 0–{maximum}", name)
    return int(raw)


def parse_search(
    resource_type: CatalogResourceType, pairs: Iterable[tuple[str, str]]
) -> SearchQuery:
    """The query string as FHIR reads it; an unknown parameter or modifier is refused (a
    silently ignored filter would return more than was asked for)."""
    known = {p.name: p for p in SEARCH_PARAMETERS[resource_type]}
    query = SearchQuery(resource_type)
    for key, raw in pairs:
        name, _, modifier = key.partition(":")
        value = raw.strip()
        if name in {p.name for p in RESULT_PARAMETERS}:
            if name == "_count" and value:
                query.count = _integer(name, value, MAX_COUNT)
            elif name == "_offset" and value:
                query.offset = _integer(name, value, MAX_OFFSET)
            elif name == "_summary" and value:
                if value not in ("count", "false"):
                    raise invalid(
                        "_summary 仅支持 count、false / only count and false",
                        name,
                        issue="not-supported",
                    )
                query.summary_count = value == "count"
            continue
        parameter = known.get(name)
        if parameter is None:
            raise invalid(
                f"不支持的查询参数 / unsupported search parameter: {key}",
                key,
                issue="not-supported",
            )
        if modifier and modifier not in parameter.modifiers:
            raise invalid(
                f"不支持的修饰符 / unsupported modifier: {key}", key, issue="not-supported"
            )
        values = tuple(v.strip() for v in value.split(",") if v.strip())
        if values:  # FHIR: a parameter without a value is ignored
            query.terms.setdefault(name, []).append(Term(modifier or None, values))
    if query.count == 0:
        query.summary_count = True
    return query


@dataclass(frozen=True)
class Ref:
    """A reference search value: `Practitioner/doc.1` (typed) or `doc.1` (any type)."""

    type: str | None
    id: str  # guahao id

    def points_at(self, kind: str, value: str) -> bool:
        return (self.type is None or self.type == kind) and self.id == value


def parse_reference(parameter: str, raw: str, allowed: tuple[str, ...]) -> Ref:
    parts = raw.rstrip("/").split("/")
    kind = parts[-2] if len(parts) >= 2 else None
    rid = parts[-1]
    if (kind is not None and kind not in allowed) or not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", rid):
        raise invalid(
            f"无效的引用 / invalid reference: {raw} (expected "
            f"{' or '.join(t + '/{id}' for t in allowed)})",
            parameter,
        )
    return Ref(kind, guahao_id(rid))


def string_matches(term: Term, candidates: Iterable[str]) -> bool:
    """FHIR string search: starts with (case-insensitive) by default, `:contains`,
    `:exact` (case-sensitive equality); any value of the term, any candidate."""
    texts = [c for c in candidates if c]
    for value in term.values:
        for text in texts:
            if term.modifier == "exact":
                if text == value:
                    return True
            elif term.modifier == "contains":
                if value.casefold() in text.casefold():
                    return True
            elif text.casefold().startswith(value.casefold()):
                return True
    return False


T = TypeVar("T")


def all_terms(terms: Sequence[Iterable[T]], test: Callable[[T], bool]) -> bool:
    """Every term (AND) has a value (OR) that passes `test`."""
    return all(any(test(value) for value in term) for term in terms)


def date_range(criteria: list[list[DateCriterion]]) -> tuple[dt.date, dt.date]:
    """Hospital-local dates the matching sessions can fall on (to narrow the query); the
    upper bound is exclusive, so `lt2026-12-08` ends on the 7th."""
    lower: dt.datetime | None = None
    upper: dt.datetime | None = None
    for alternatives in criteria:
        lows = [c.bounds[0] for c in alternatives]
        highs = [c.bounds[1] for c in alternatives]
        if all(v is not None for v in lows):
            low = min(v for v in lows if v is not None)
            lower = low if lower is None else max(lower, low)
        if all(v is not None for v in highs):
            high = max(v for v in highs if v is not None)
            upper = high if upper is None else min(upper, high)
    return (
        local_now(lower).date() if lower else ALL_DATES[0],
        local_now(upper - dt.timedelta(microseconds=1)).date() if upper else ALL_DATES[1],
    )


# --- the service --------------------------------------------------------------------------


class FhirCatalog:
    """Reads, searches and bulk pages over the catalog's data."""

    def __init__(self, catalog: CatalogService, appid: str) -> None:
        self.catalog = catalog
        self.repo = catalog.repo
        self.appid = appid

    # reads

    async def read(
        self, resource_type: CatalogResourceType, resource_id: str
    ) -> FhirCatalogResource:
        gid = guahao_id(resource_id)
        if resource_type == "Practitioner":
            doctor = await self.repo.doctor(gid)
            if doctor is None or not doctor.get("published"):
                raise NotFound(NO_SUCH_RESOURCE)
            return practitioner_resource(doctor)
        if resource_type == "Location":
            hospital = await self.repo.hospital(gid)
            if hospital is None:
                raise NotFound(NO_SUCH_RESOURCE)
            return location_resource(hospital)
        if resource_type == "Schedule":
            doc = await self.repo.schedule(gid)
            sessions = await self.sessions([doc] if doc else [])
            if not sessions:
                raise NotFound(NO_SUCH_RESOURCE)
            return schedule_resource(sessions[0])
        doc = await self.repo.schedule_with_slot(gid)
        sessions = await self.sessions([doc] if doc else [])
        found = [
            slot
            for session in sessions
            for slot in slot_resources(session, self.appid)
            if slot.id == fhir_id(gid)
        ]
        if not found:
            raise NotFound(NO_SUCH_RESOURCE)
        return found[0]

    # searches

    async def search(self, params: FhirSearch) -> FhirBundle:
        query = parse_search(params.resource_type, params.params)
        if query.resource_type == "Practitioner":
            matches: list[FhirCatalogResource] = list(await self.search_practitioners(query))
        elif query.resource_type == "Location":
            matches = list(await self.search_locations(query))
        elif query.resource_type == "Schedule":
            matches = list(await self.search_schedules(query))
        else:
            matches = list(await self.search_slots(query))
        return searchset(params, query, matches, self.catalog.clock())

    async def search_practitioners(self, query: SearchQuery) -> list[FhirPractitioner]:
        ids = query.id_sets()
        if ids:
            docs = list((await self.repo.doctors_by_id(set.intersection(*ids))).values())
        else:
            docs = await self.repo.find_doctors(published=True)
        docs = [
            d
            for d in docs
            if d.get("published")
            and all(
                string_matches(term, [d["name"], *d["name"].split()]) for term in query.of("name")
            )
        ]
        docs.sort(key=lambda d: (d["name"], d["_id"]))
        return [practitioner_resource(d) for d in docs]

    async def search_locations(self, query: SearchQuery) -> list[FhirLocation]:
        ids = query.id_sets()
        if ids:
            docs = list((await self.repo.hospitals_by_id(set.intersection(*ids))).values())
        else:
            docs = await self.repo.list_hospitals()
        docs = [
            d for d in docs if all(string_matches(term, [d["name"]]) for term in query.of("name"))
        ]
        docs.sort(key=lambda d: (d["name"], d["_id"]))
        return [location_resource(d) for d in docs]

    async def search_schedules(self, query: SearchQuery) -> list[FhirSchedule]:
        actors = query.references("actor", ("Practitioner", "Location"))
        dates = query.dates("date")
        ids = query.id_sets()
        active = [
            {v == "true" for v in term.values if v in ("true", "false")}
            for term in query.of("active")
        ]
        docs = await self.candidate_schedules(
            set.intersection(*ids) if ids else None,
            actors[0] if actors else None,
            date_range(dates),
        )
        return [
            schedule_resource(session)
            for session in await self.sessions(docs)
            if schedule_matches(session, actors, dates, active)
        ]

    async def search_slots(self, query: SearchQuery) -> list[FhirSlot]:
        schedules = query.references("schedule", ("Schedule",))
        actors = query.references("schedule.actor", ("Practitioner", "Location"))
        starts = query.dates("start")
        statuses = [set(term.values) for term in query.of("status")]
        slot_ids = query.id_sets()
        schedule_ids: set[str] | None = None
        if schedules:
            schedule_ids = set.intersection(*({r.id for r in term} for term in schedules))
        if slot_ids:
            wanted = set.intersection(*slot_ids)
            owners = {
                doc["_id"]
                for sid in sorted(wanted)[:MAX_SEARCH_SCHEDULES]
                if (doc := await self.repo.schedule_with_slot(sid)) is not None
            }
            schedule_ids = owners if schedule_ids is None else schedule_ids & owners
        docs = await self.candidate_schedules(
            schedule_ids, actors[0] if actors else None, date_range(starts)
        )
        found = [
            slot
            for session in await self.sessions(docs)
            if schedule_matches(session, actors, [], [])
            for slot in slot_resources(session, self.appid)
            if slot_matches(slot, slot_ids, starts, statuses)
        ]
        found.sort(key=lambda s: (s.start, s.schedule.reference or "", s.id))
        return found

    async def candidate_schedules(
        self,
        schedule_ids: set[str] | None,
        actors: list[Ref] | None,
        dates: tuple[dt.date, dt.date],
    ) -> list[Document]:
        """The schedules a search has to look at, narrowed by what the query names."""
        date_from, date_to = dates
        if schedule_ids is not None:
            docs = [
                doc
                for sid in sorted(schedule_ids)[:MAX_SEARCH_SCHEDULES]
                if (doc := await self.repo.schedule(sid)) is not None
            ]
            docs = [d for d in docs if date_from.isoformat() <= d["date"] <= date_to.isoformat()]
        elif actors is not None:
            doctor_ids = sorted({r.id for r in actors if r.type in (None, "Practitioner")})
            hospital_ids = sorted({r.id for r in actors if r.type in (None, "Location")})
            found: dict[str, Document] = {}
            if doctor_ids:
                for doc in await self.repo.find_schedules(
                    date_from=date_from, date_to=date_to, doctor_ids=doctor_ids
                ):
                    found[doc["_id"]] = doc
            for hospital_id in hospital_ids:
                for doc in await self.repo.find_schedules(
                    date_from=date_from, date_to=date_to, hospital_id=hospital_id
                ):
                    found[doc["_id"]] = doc
            docs = list(found.values())
        elif (date_from, date_to) != ALL_DATES:
            docs = await self.repo.find_schedules(date_from=date_from, date_to=date_to)
        else:
            raise invalid(
                "请限定排班、医生/医院或时间范围 / narrow the search: give a "
                "schedule, an actor or a date range",
                issue="too-costly",
            )
        if len(docs) > MAX_SEARCH_SCHEDULES:
            raise invalid(
                f"匹配的出诊超过 {MAX_SEARCH_SCHEDULES} 个，请缩小范围 / more than "
                f"{MAX_SEARCH_SCHEDULES} sessions match: narrow the search",
                issue="too-costly",
            )
        return docs

    async def sessions(self, docs: list[Document]) -> list[ClinicSession]:
        """The schedules of published doctors with everything their FHIR views need, in
        date/session order; booking's availability fetched once for all of them."""
        doctors = await self.repo.doctors_by_id(d["doctor_id"] for d in docs)
        docs = [d for d in docs if doctors.get(d["doctor_id"], {}).get("published")]
        if not docs:
            return []
        hospitals = await self.repo.hospitals_by_id(d["hospital_id"] for d in docs)
        departments = await self.repo.departments_by_id(d["department_id"] for d in docs)
        seen = await self.catalog._availability([d["_id"] for d in docs])
        now = self.catalog.clock()
        return [
            ClinicSession(
                doc=doc,
                view=schedule_view(
                    doc, rules_of(hospitals[doc["hospital_id"]]), seen.get(doc["_id"]), now
                ),
                doctor=doctors[doc["doctor_id"]],
                hospital=hospitals[doc["hospital_id"]],
                department=departments.get(doc["department_id"]),
            )
            for doc in sorted(docs, key=schedule_order)
            if doc["hospital_id"] in hospitals
        ]

    # SMART Scheduling Links bulk files

    async def bulk_page(self, page: FhirBulkPage) -> FhirBulkChunk:
        """A page of `Location.ndjson` (every hospital), or of `Schedule.ndjson` /
        `Slot.ndjson`: the sessions of each hospital's published window, today (hospital
        local) to today + window_days, one hospital-day after another."""
        hospitals = sorted(await self.repo.list_hospitals(), key=lambda h: h["_id"])
        if page.resource_type == "Location":
            after = page.cursor or ""
            chosen = [h for h in hospitals if h["_id"] > after][:BULK_PAGE_TARGET]
            more = len([h for h in hospitals if h["_id"] > after]) > len(chosen)
            return FhirBulkChunk(
                resources=[location_resource(h).model_dump(mode="json") for h in chosen],
                next=chosen[-1]["_id"] if more and chosen else None,
            )
        after_key = parse_bulk_cursor(page.cursor)
        today = self.catalog.today()
        resources: list[FhirSchedule | FhirSlot] = []
        for hospital in hospitals:
            for offset in range(rules_of(hospital).window_days + 1):
                day = (today + dt.timedelta(days=offset)).isoformat()
                key = (hospital["_id"], day)
                if after_key is not None and key <= after_key:
                    continue
                docs = await self.repo.find_schedules(
                    date_from=dt.date.fromisoformat(day),
                    date_to=dt.date.fromisoformat(day),
                    hospital_id=hospital["_id"],
                )
                for session in await self.sessions(docs):
                    if page.resource_type == "Schedule":
                        resources.append(schedule_resource(session))
                    else:
                        resources.extend(slot_resources(session, self.appid))
                if len(resources) >= BULK_PAGE_TARGET:
                    return FhirBulkChunk(
                        resources=[r.model_dump(mode="json") for r in resources],
                        next=f"{key[0]}|{key[1]}",
                    )
        return FhirBulkChunk(resources=[r.model_dump(mode="json") for r in resources])


def parse_bulk_cursor(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    hospital_id, _, day = cursor.partition("|")
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise invalid("无效的游标 / invalid cursor", "cursor") from None
    return hospital_id, day


def session_has_actor(session: ClinicSession, ref: Ref) -> bool:
    return ref.points_at("Practitioner", session.doc["doctor_id"]) or ref.points_at(
        "Location", session.doc["hospital_id"]
    )


def schedule_matches(
    session: ClinicSession,
    actors: list[list[Ref]],
    dates: list[list[DateCriterion]],
    active: list[set[bool]],
) -> bool:
    start, end = (dt.datetime.fromisoformat(t) for t in session.horizon)
    return (
        all_terms(actors, lambda ref: session_has_actor(session, ref))
        and all_terms(dates, lambda c: c.matches_period(start, end))
        and all_terms(active, lambda a: a == (session.view.status != "stopped"))
    )


def slot_matches(
    slot: FhirSlot,
    slot_ids: list[set[str]],
    starts: list[list[DateCriterion]],
    statuses: list[set[str]],
) -> bool:
    start = dt.datetime.fromisoformat(slot.start)
    return (
        all_terms(slot_ids, lambda sid: fhir_id(sid) == slot.id)
        and all_terms(starts, lambda c: c.matches_instant(start))
        and all_terms(statuses, lambda status: status == slot.status)
    )


def searchset(
    params: FhirSearch, query: SearchQuery, matches: list[FhirCatalogResource], now: dt.datetime
) -> FhirBundle:
    """A searchset Bundle: total, one page of entries with absolute fullUrls, self and next
    links (the next one carries `_offset`)."""
    base = params.base_url.rstrip("/")
    shown = [] if query.summary_count else matches[query.offset : query.offset + query.count]
    kept = [(k, v) for k, v in params.params if k != "_offset"]
    links = [BundleLink(relation="self", url=search_url(base, query.resource_type, params.params))]
    if not query.summary_count and query.offset + query.count < len(matches):
        links.append(
            BundleLink(
                relation="next",
                url=search_url(
                    base, query.resource_type, [*kept, ("_offset", str(query.offset + query.count))]
                ),
            )
        )
    return FhirBundle(
        timestamp=local_now(now).isoformat(timespec="seconds"),
        total=len(matches),
        link=links,
        entry=[
            BundleEntry(
                fullUrl=f"{base}/{r.resourceType}/{r.id}",
                resource=r,
                search=BundleEntrySearch(mode="match"),
            )
            for r in shown
        ],
    )


def search_url(base: str, resource_type: str, pairs: list[tuple[str, str]]) -> str:
    return f"{base}/{resource_type}" + (f"?{urlencode(pairs)}" if pairs else "")


def register_fhir(server: RpcServer, catalog: CatalogService, *, appid: str | None = None) -> None:
    """Serve `fhir_read`, `fhir_search` and `fhir_bulk` (public, like the catalog listing).
    `appid`: the mini-program the booking deep links open (default `WECHAT_APPID`)."""
    fhir = FhirCatalog(catalog, appid or Settings().wechat_appid)

    async def fhir_read(params: FhirRead, ctx: CallContext) -> FhirCatalogResource:
        return await fhir.read(params.resource_type, params.id)

    async def fhir_search(params: FhirSearch, ctx: CallContext) -> FhirBundle:
        return await fhir.search(params)

    async def fhir_bulk(params: FhirBulkPage, ctx: CallContext) -> FhirBulkChunk:
        return await fhir.bulk_page(params)

    for handler in (fhir_read, fhir_search, fhir_bulk):
        server.add_method(handler.__name__, handler)
