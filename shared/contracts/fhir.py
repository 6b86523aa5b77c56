"""FHIR R4 as guahao publishes it (read-only): the resources, the RPC contracts that carry
them between the gateway and the services that map them, and the conventions every mapper
follows.

Conventions:
- A FHIR id is the guahao id with `_` written as `.` (FHIR ids allow letters, digits, `-`
  and `.` only; guahao ids never contain `.`, so the mapping is reversible).
- Instants are hospital-local wall-clock times with their offset (`2026-12-01T08:00:00+08:00`).
- Empty elements are never serialised: FHIR forbids `null` and empty arrays, so every model
  here drops them when dumped (also when the RPC server dumps a reply).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)

from shared.contracts.base import Contract, Cursor, Reply
from shared.rules import at_local

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"

# SMART Scheduling Links (https://github.com/smart-on-fhir/smart-scheduling-links)
SLOT_CAPACITY = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity"
BOOKING_DEEP_LINK = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link"

FHIR_ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
FhirId = Annotated[str, StringConstraints(pattern=FHIR_ID_PATTERN)]

CatalogResourceType = Literal["Practitioner", "Location", "Schedule", "Slot"]
BulkResourceType = Literal["Location", "Schedule", "Slot"]
BULK_RESOURCE_TYPES: tuple[BulkResourceType, ...] = ("Location", "Schedule", "Slot")


def fhir_id(guahao_id: str) -> str:
    """The FHIR id of a guahao id (`doc_3f2a` → `doc.3f2a`)."""
    return guahao_id.replace("_", ".")


def guahao_id(resource_id: str) -> str:
    """The guahao id behind a FHIR id (`doc.3f2a` → `doc_3f2a`)."""
    return resource_id.replace(".", "_")


def reference_to(resource_type: str, guahao_ref: str) -> str:
    """A relative literal reference, `Practitioner/doc.3f2a`."""
    return f"{resource_type}/{fhir_id(guahao_ref)}"


def local_instant(date: dt.date, clock: str) -> str:
    """`date` at `HH:MM` hospital-local time as a FHIR instant with its offset."""
    return at_local(date, clock).isoformat()


SESSION_LABELS = {"am": "上午 / morning", "pm": "下午 / afternoon", "evening": "夜间 / evening"}


def mask_name(name: str) -> str:
    """A person's name as shown to a third party: `张*`, `欧阳**`... first character kept,
    and the last one for names of three characters or more (`张*明`)."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# --- data types ---------------------------------------------------------------------------


class FhirModel(BaseModel):
    """Base of every FHIR element: camelCase field names as in the specification, unknown
    fields refused, absent and empty values left out of the JSON."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _without_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None and value != []}


class Coding(FhirModel):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(FhirModel):
    coding: list[Coding] | None = None
    text: str | None = None


class Reference(FhirModel):
    reference: str | None = None
    type: str | None = None
    display: str | None = None


class Period(FhirModel):
    start: str | None = None
    end: str | None = None


class Extension(FhirModel):
    url: str
    valueInteger: int | None = None
    valueUrl: str | None = None
    valueString: str | None = None


class Identifier(FhirModel):
    use: Literal["usual", "official", "temp", "secondary", "old"] | None = None
    type: CodeableConcept | None = None
    system: str | None = None
    value: str | None = None


class HumanName(FhirModel):
    use: Literal["usual", "official", "temp", "nickname", "anonymous", "old", "maiden"] | None = (
        None
    )
    text: str | None = None
    family: str | None = None
    given: list[str] | None = None


class ContactPoint(FhirModel):
    system: Literal["phone", "fax", "email", "pager", "url", "sms", "other"] | None = None
    value: str | None = None
    use: Literal["home", "work", "temp", "old", "mobile"] | None = None


class Address(FhirModel):
    use: Literal["home", "work", "temp", "old", "billing"] | None = None
    type: Literal["postal", "physical", "both"] | None = None
    text: str | None = None
    line: list[str] | None = None
    city: str | None = None
    district: str | None = None
    state: str | None = None
    postalCode: str | None = None
    country: str | None = None


class Meta(FhirModel):
    lastUpdated: str | None = None
    profile: list[str] | None = None


# --- resources ----------------------------------------------------------------------------


class PractitionerQualification(FhirModel):
    code: CodeableConcept


class FhirPractitioner(FhirModel):
    resourceType: Literal["Practitioner"] = "Practitioner"
    id: str
    active: bool | None = None
    name: list[HumanName] | None = None
    qualification: list[PractitionerQualification] | None = None


class FhirLocation(FhirModel):
    resourceType: Literal["Location"] = "Location"
    id: str
    status: Literal["active", "suspended", "inactive"] | None = None
    name: str | None = None
    description: str | None = None
    mode: Literal["instance", "kind"] | None = None
    type: list[CodeableConcept] | None = None
    telecom: list[ContactPoint] | None = None
    address: Address | None = None


class FhirSchedule(FhirModel):
    resourceType: Literal["Schedule"] = "Schedule"
    id: str
    active: bool | None = None
    serviceType: list[CodeableConcept] | None = None
    specialty: list[CodeableConcept] | None = None
    actor: list[Reference]
    planningHorizon: Period | None = None
    comment: str | None = None


SlotStatus = Literal["busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error"]


class FhirSlot(FhirModel):
    resourceType: Literal["Slot"] = "Slot"
    id: str
    extension: list[Extension] | None = None
    serviceType: list[CodeableConcept] | None = None
    specialty: list[CodeableConcept] | None = None
    schedule: Reference
    status: SlotStatus
    start: str
    end: str
    comment: str | None = None


AppointmentStatusCode = Literal[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
]


class AppointmentParticipant(FhirModel):
    type: list[CodeableConcept] | None = None
    actor: Reference | None = None
    required: Literal["required", "optional", "information-only"] | None = None
    status: Literal["accepted", "declined", "tentative", "needs-action"]


class FhirAppointment(FhirModel):
    resourceType: Literal["Appointment"] = "Appointment"
    id: str
    identifier: list[Identifier] | None = None
    status: AppointmentStatusCode
    cancelationReason: CodeableConcept | None = None
    serviceType: list[CodeableConcept] | None = None
    specialty: list[CodeableConcept] | None = None
    description: str | None = None
    start: str | None = None
    end: str | None = None
    minutesDuration: int | None = None
    slot: list[Reference] | None = None
    created: str | None = None
    participant: list[AppointmentParticipant]


FhirResource = Annotated[
    FhirPractitioner | FhirLocation | FhirSchedule | FhirSlot | FhirAppointment,
    Field(discriminator="resourceType"),
]


class BundleLink(FhirModel):
    relation: str
    url: str


class BundleEntrySearch(FhirModel):
    mode: Literal["match", "include", "outcome"] | None = None


class BundleEntry(FhirModel):
    fullUrl: str | None = None
    resource: FhirResource | None = None
    search: BundleEntrySearch | None = None


class FhirBundle(FhirModel):
    resourceType: Literal["Bundle"] = "Bundle"
    type: Literal["searchset"] = "searchset"
    timestamp: str | None = None
    total: int | None = None
    link: list[BundleLink] | None = None
    entry: list[BundleEntry] | None = None


IssueSeverity = Literal["fatal", "error", "warning", "information"]


class OperationOutcomeIssue(FhirModel):
    severity: IssueSeverity
    code: str
    details: CodeableConcept | None = None
    diagnostics: str | None = None
    expression: list[str] | None = None


class OperationOutcome(FhirModel):
    resourceType: Literal["OperationOutcome"] = "OperationOutcome"
    issue: list[OperationOutcomeIssue]


class CapabilitySearchParam(FhirModel):
    name: str
    type: Literal[
        "number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special"
    ]
    documentation: str | None = None


class CapabilityInteraction(FhirModel):
    code: Literal[
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    documentation: str | None = None


class CapabilityResource(FhirModel):
    type: str
    documentation: str | None = None
    interaction: list[CapabilityInteraction] | None = None
    searchParam: list[CapabilitySearchParam] | None = None


class CapabilityRest(FhirModel):
    mode: Literal["server", "client"]
    documentation: str | None = None
    resource: list[CapabilityResource] | None = None


class CapabilitySoftware(FhirModel):
    name: str
    version: str | None = None


class CapabilityImplementation(FhirModel):
    description: str
    url: str | None = None


class CapabilityStatement(FhirModel):
    resourceType: Literal["CapabilityStatement"] = "CapabilityStatement"
    status: Literal["draft", "active", "retired", "unknown"]
    date: str
    publisher: str | None = None
    kind: Literal["instance", "capability", "requirements"]
    software: CapabilitySoftware | None = None
    implementation: CapabilityImplementation | None = None
    fhirVersion: str
    format: list[str]
    rest: list[CapabilityRest] | None = None


# --- what is searchable (the catalog enforces it, /fhir/metadata announces it) -------------


@dataclass(frozen=True)
class SearchParameter:
    name: str
    type: Literal["date", "string", "token", "reference"]
    documentation: str
    modifiers: tuple[str, ...] = ()


SEARCH_PARAMETERS: dict[CatalogResourceType, tuple[SearchParameter, ...]] = {
    "Practitioner": (
        SearchParameter("_id", "token", "logical id; comma-separated ids match any"),
        SearchParameter(
            "name",
            "string",
            "the name starts with this (case-insensitive); :contains and :exact supported",
            ("contains", "exact"),
        ),
    ),
    "Location": (
        SearchParameter("_id", "token", "logical id; comma-separated ids match any"),
        SearchParameter(
            "name",
            "string",
            "the name starts with this (case-insensitive); :contains and :exact supported",
            ("contains", "exact"),
        ),
    ),
    "Schedule": (
        SearchParameter("_id", "token", "logical id; comma-separated ids match any"),
        SearchParameter("actor", "reference", "Practitioner/{id} or Location/{id}"),
        SearchParameter(
            "date",
            "date",
            "planningHorizon, with the prefixes eq ne gt lt ge "
            "le sa eb; repeat the parameter for a range",
        ),
        SearchParameter("active", "token", "true: not stopped (停诊); false: stopped"),
    ),
    "Slot": (
        SearchParameter("_id", "token", "logical id; comma-separated ids match any"),
        SearchParameter("schedule", "reference", "Schedule/{id}"),
        SearchParameter(
            "schedule.actor",
            "reference",
            "chained: the schedule's Practitioner/{id} or Location/{id}",
        ),
        SearchParameter(
            "start",
            "date",
            "slot start, with the prefixes eq ne gt lt ge le sa "
            "eb; repeat the parameter for a range (start=ge…&start=lt…)",
        ),
        SearchParameter("status", "token", "free | busy | busy-unavailable (comma: any of)"),
    ),
}
RESULT_PARAMETERS: tuple[SearchParameter, ...] = (
    SearchParameter("_count", "token", "page size, 0–500 (default 100)"),
    SearchParameter("_offset", "token", "entries to skip (the next link carries it)"),
    SearchParameter("_summary", "token", "count: total only; false: full resources"),
)
MAX_COUNT = 500
DEFAULT_COUNT = 100


# --- RPC contracts ------------------------------------------------------------------------

QueryPair = tuple[
    Annotated[str, StringConstraints(max_length=64)],
    Annotated[str, StringConstraints(max_length=512)],
]


class FhirRead(Contract):
    """`catalog.fhir_read`: one resource by its FHIR id."""

    resource_type: CatalogResourceType
    id: FhirId


class FhirSearch(Contract):
    """`catalog.fhir_search`: the query string as given (repeats kept, in order) and the
    base URL the Bundle's links and fullUrls are built on."""

    resource_type: CatalogResourceType
    params: Annotated[list[QueryPair], Field(max_length=64)] = Field(default_factory=list)
    base_url: Annotated[str, StringConstraints(max_length=300, pattern=r"^https?://\S+$")]


class FhirBulkPage(Contract):
    """`catalog.fhir_bulk`: the next page of a bulk NDJSON file (`cursor` from the last)."""

    resource_type: BulkResourceType
    cursor: Cursor | None = None


class FhirBulkChunk(Reply):
    """One page of bulk resources, each already FHIR JSON; `next` is None on the last."""

    resources: list[dict[str, Any]]
    next: str | None = None


class FhirAppointmentRef(Contract):
    """`booking.fhir_appointment`: one appointment by its FHIR id (hospital staff only)."""

    id: FhirId
