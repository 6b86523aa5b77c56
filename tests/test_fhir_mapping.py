"""FHIR mappers without a store or a broker: doctor → Practitioner, hospital → Location,
clinic session → Schedule, time slice → Slot (statuses, +08:00 instants, the SMART
Scheduling Links extensions), appointment → Appointment, and the search-parameter rules
(date prefixes and precision, repeats and commas, what is refused). Every resource built here
is also checked against the official FHIR R4 JSON schema."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from services.booking.fhir import appointment_resource
from services.catalog.fhir import (
    ALL_DATES,
    ClinicSession,
    booking_deep_link,
    date_range,
    location_resource,
    parse_date_criterion,
    parse_search,
    practitioner_resource,
    schedule_resource,
    slot_resources,
)
from shared.contracts.booking import Appointment, AppointmentPatient
from shared.contracts.catalog import PersonRef, Schedule, Slot
from shared.contracts.fhir import (
    BOOKING_DEEP_LINK,
    SLOT_CAPACITY,
    fhir_id,
    guahao_id,
    mask_name,
)
from shared.errors import BadRequest
from shared.rules import HOSPITAL_TZ
from tests.test_fhir_schema import assert_fhir_valid

DATE = dt.date(2026, 12, 2)
APPID = "wx_test_appid"
HOSPITAL = {
    "_id": "h_1",
    "name": "协和示范医院",
    "address": "北京市东城区帅府园1号",
    "phone": "010-69156114",
    "level": "三级甲等",
}
DOCTOR = {
    "_id": "doc_1",
    "hospital_id": "h_1",
    "department_id": "dep_1",
    "name": "王建国",
    "title": "主任医师",
    "published": True,
    "fee_cents": 5000,
}
DEPARTMENT = {"_id": "dep_1", "hospital_id": "h_1", "name": "心血管内科"}


def dumped(resource: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(resource.model_dump(mode="json")))
    return data


def session(
    *slices: tuple[str, int, str],
    status: str = "open",
    release_at: str | None = "2026-11-25T08:00:00+08:00",
) -> ClinicSession:
    """A morning session on DATE whose slices are (start, remaining, slice status)."""
    slots = []
    for n, (start, remaining, slot_status) in enumerate(slices):
        hour, minute = (int(p) for p in start.split(":"))
        end = f"{hour + (minute + 30) // 60:02d}:{(minute + 30) % 60:02d}"
        slots.append(
            Slot(
                id=f"slot_{n}",
                start=start,
                end=end,
                capacity=3,
                remaining=remaining,
                status=slot_status,  # type: ignore[arg-type]
            )
        )
    view = Schedule(
        id="sch_1",
        doctor_id="doc_1",
        date=DATE,
        session="am",
        status=status,  # type: ignore[arg-type]
        release_at=release_at,
        fee_cents=5000,
        slots=slots,
    )
    return ClinicSession(
        doc={"_id": "sch_1", "doctor_id": "doc_1", "hospital_id": "h_1"},
        view=view,
        doctor=DOCTOR,
        hospital=HOSPITAL,
        department=DEPARTMENT,
    )


def extension(resource: dict[str, Any], url: str) -> Any:
    values = [e for e in resource.get("extension", []) if e["url"] == url]
    assert len(values) == 1, resource
    return values[0]


# --- ids and names ------------------------------------------------------------------------


def test_fhir_ids_write_underscores_as_dots_and_map_back() -> None:
    assert fhir_id("doc_demo_1") == "doc.demo.1"
    assert guahao_id("doc.demo.1") == "doc_demo_1"
    assert guahao_id(fhir_id("slot_3f2a9c")) == "slot_3f2a9c"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("王建国", "王*国"),
        ("欧阳娜娜", "欧**娜"),
        ("李", "*"),
    ],
)
def test_patient_names_are_masked_for_third_parties(name: str, masked: str) -> None:
    assert mask_name(name) == masked


# --- Practitioner, Location ---------------------------------------------------------------


def test_a_chinese_doctor_name_is_text_only_with_the_title_as_qualification() -> None:
    resource = dumped(practitioner_resource(DOCTOR))
    assert resource == {
        "resourceType": "Practitioner",
        "id": "doc.1",
        "active": True,
        "name": [{"use": "official", "text": "王建国"}],
        "qualification": [{"code": {"text": "主任医师"}}],
    }
    assert_fhir_valid(resource)


def test_a_name_with_spaces_gives_family_and_given() -> None:
    resource = dumped(practitioner_resource({**DOCTOR, "name": "Anna Maria Smith"}))
    assert resource["name"] == [
        {
            "use": "official",
            "text": "Anna Maria Smith",
            "family": "Smith",
            "given": ["Anna", "Maria"],
        }
    ]
    assert_fhir_valid(resource)


def test_a_hospital_is_a_location_with_address_text_and_phone() -> None:
    resource = dumped(location_resource(HOSPITAL))
    assert resource["name"] == "协和示范医院"
    assert resource["telecom"] == [{"system": "phone", "value": "010-69156114", "use": "work"}]
    assert resource["address"] == {
        "use": "work",
        "type": "physical",
        "text": "北京市东城区帅府园1号",
        "line": ["帅府园1号"],
        "city": "北京市",
        "district": "东城区",
        "state": "北京市",
        "country": "CN",
    }
    assert resource["description"] == "三级甲等"
    assert_fhir_valid(resource)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (
            "广东省广州市越秀区中山二路58号",
            {"state": "广东省", "city": "广州市", "district": "越秀区", "line": ["中山二路58号"]},
        ),
        ("Demo Street 1", {}),
    ],
)
def test_address_parts_are_filled_only_when_the_address_spells_them_out(
    text: str, parts: dict[str, Any]
) -> None:
    address = dumped(location_resource({**HOSPITAL, "address": text}))["address"]
    assert address == {"use": "work", "type": "physical", "text": text, "country": "CN", **parts}


def test_a_hospital_without_address_or_phone_leaves_them_out() -> None:
    resource = dumped(location_resource({"_id": "h_2", "name": "社区医院"}))
    assert "address" not in resource and "telecom" not in resource
    assert_fhir_valid(resource)


# --- Schedule, Slot -----------------------------------------------------------------------


def test_a_session_is_a_schedule_of_its_doctor_at_its_hospital_over_its_slices() -> None:
    resource = dumped(schedule_resource(session(("08:00", 2, "open"), ("08:30", 0, "full"))))
    assert resource["id"] == "sch.1"
    assert resource["active"] is True
    assert resource["actor"] == [
        {"reference": "Practitioner/doc.1", "display": "王建国 主任医师"},
        {"reference": "Location/h.1", "display": "协和示范医院"},
    ]
    assert resource["planningHorizon"] == {
        "start": "2026-12-02T08:00:00+08:00",
        "end": "2026-12-02T09:00:00+08:00",
    }
    assert resource["serviceType"] == [{"text": "心血管内科"}]
    assert resource["specialty"] == [{"text": "心血管内科"}]
    assert_fhir_valid(resource)


def test_a_stopped_session_is_an_inactive_schedule() -> None:
    resource = dumped(schedule_resource(session(("08:00", 3, "stopped"), status="stopped")))
    assert resource["active"] is False
    assert_fhir_valid(resource)


@pytest.mark.parametrize(
    ("slice_status", "remaining", "fhir_status"),
    [
        ("open", 2, "free"),
        ("full", 0, "busy"),
        ("stopped", 3, "busy-unavailable"),
        ("closed", 1, "busy-unavailable"),
        ("not_released", 3, "busy-unavailable"),
    ],
)
def test_each_slice_is_one_slot_whose_status_says_whether_it_can_be_booked_now(
    slice_status: str, remaining: int, fhir_status: str
) -> None:
    (slot,) = [
        dumped(s) for s in slot_resources(session(("08:00", remaining, slice_status)), APPID)
    ]
    assert slot["status"] == fhir_status
    assert extension(slot, SLOT_CAPACITY) == {"url": SLOT_CAPACITY, "valueInteger": remaining}
    assert_fhir_valid(slot)


def test_a_slot_not_yet_released_says_when_it_opens() -> None:
    (slot,) = slot_resources(session(("08:00", 3, "not_released")), APPID)
    assert slot.comment is not None and "2026-11-25T08:00:00+08:00" in slot.comment


def test_slot_instants_are_hospital_local_with_their_offset_and_point_at_the_schedule() -> None:
    slots = [
        dumped(s)
        for s in slot_resources(session(("08:00", 2, "open"), ("08:30", 1, "open")), APPID)
    ]
    assert [(s["id"], s["start"], s["end"]) for s in slots] == [
        ("slot.0", "2026-12-02T08:00:00+08:00", "2026-12-02T08:30:00+08:00"),
        ("slot.1", "2026-12-02T08:30:00+08:00", "2026-12-02T09:00:00+08:00"),
    ]
    assert {s["schedule"]["reference"] for s in slots} == {"Schedule/sch.1"}
    start = dt.datetime.fromisoformat(slots[0]["start"])
    assert start == dt.datetime(2026, 12, 2, 8, 0, tzinfo=HOSPITAL_TZ)


def test_the_booking_deep_link_opens_the_doctor_page_of_the_mini_program_for_that_slice() -> None:
    (slot,) = [dumped(s) for s in slot_resources(session(("08:00", 2, "open")), APPID)]
    link = extension(slot, BOOKING_DEEP_LINK)["valueUrl"]
    assert link == (
        "weixin://dl/business/?appid=wx_test_appid&path=pages/doctor/index"
        "&query=id%3Ddoc_1%26hospital_id%3Dh_1%26date%3D2026-12-02"
        "%26slot_id%3Dslot_0"
    )
    outer = parse_qs(urlsplit(link).query)
    assert outer["path"] == ["pages/doctor/index"]
    assert parse_qs(outer["query"][0]) == {
        "id": ["doc_1"],
        "hospital_id": ["h_1"],
        "date": ["2026-12-02"],
        "slot_id": ["slot_0"],
    }
    assert link == booking_deep_link(APPID, session(("08:00", 2, "open")), "slot_0")


# --- Appointment --------------------------------------------------------------------------


def appointment(status: str = "booked", **extra: Any) -> Appointment:
    return Appointment(
        id="apt_1",
        status=status,  # type: ignore[arg-type]
        seq_no=3,
        hospital_id="h_1",
        slot_id="slot_0",
        schedule_id="sch_1",
        doctor=PersonRef(id="doc_1", name="王建国", title="主任医师"),
        department=PersonRef(id="dep_1", name="心血管内科"),
        date=DATE,
        session="am",
        start="08:00",
        end="08:30",
        fee_cents=5000,
        patient=AppointmentPatient(id="pat_1", name="张三", id_number_masked="1101**********002X"),
        cancel_deadline="2026-12-02T06:00:00+08:00",
        created_at="2026-11-30T10:00:00+08:00",
        **extra,
    )


@pytest.mark.parametrize(
    ("status", "fhir_status"),
    [
        ("booked", "booked"),
        ("checked_in", "checked-in"),
        ("completed", "fulfilled"),
        ("cancelled", "cancelled"),
        ("no_show", "noshow"),
    ],
)
def test_appointment_statuses_map_to_fhir(status: str, fhir_status: str) -> None:
    resource = dumped(appointment_resource(appointment(status)))
    assert resource["status"] == fhir_status
    assert_fhir_valid(resource)


def test_an_appointment_names_its_doctor_slot_and_hospital_and_only_a_masked_patient() -> None:
    resource = dumped(appointment_resource(appointment()))
    assert resource["id"] == "apt.1"
    assert resource["start"] == "2026-12-02T08:00:00+08:00"
    assert resource["end"] == "2026-12-02T08:30:00+08:00"
    assert resource["minutesDuration"] == 30
    assert resource["slot"] == [{"reference": "Slot/slot.0"}]
    assert resource["identifier"][0]["value"] == "3"
    actors = [p["actor"] for p in resource["participant"]]
    assert {"reference": "Practitioner/doc.1", "display": "王建国 主任医师"} in actors
    assert {"reference": "Location/h.1"} in actors
    assert {"type": "Patient", "display": "张*"} in actors
    assert all(p["status"] == "accepted" for p in resource["participant"])
    text = json.dumps(resource, ensure_ascii=False)
    for secret in ("张三", "pat_1", "pat.1", "1101", "002X"):
        assert secret not in text


def test_a_cancelled_appointment_says_who_cancelled_and_why() -> None:
    resource = dumped(
        appointment_resource(
            appointment("cancelled", cancelled_by="hospital", reason="医生临时出诊")
        )
    )
    assert resource["cancelationReason"]["text"].startswith("医院取消")
    assert "医生临时出诊" in resource["cancelationReason"]["text"]
    assert_fhir_valid(resource)


# --- search parameters --------------------------------------------------------------------

SLOT_START = dt.datetime(2026, 12, 1, 8, 0, tzinfo=HOSPITAL_TZ)


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        ("2026-12-01", True),
        ("eq2026-12-01", True),
        ("ne2026-12-01", False),
        ("ge2026-12-01", True),
        ("gt2026-12-01", False),
        ("le2026-12-01", True),
        ("lt2026-12-01", False),
        ("lt2026-12-02", True),
        ("sa2026-11-30", True),
        ("eb2026-12-02", True),
        ("eb2026-12-01", False),
        ("eq2026-12", True),
        ("eq2026", True),
        ("eq2026-11", False),
        ("ge2026-12-01T08:00", True),
        ("gt2026-12-01T08:00", False),
        ("gt2026-12-01T07:59", True),
        ("ge2026-12-01T00:00:00Z", True),
        ("lt2026-12-01T00:00:00Z", False),
        ("eq2026-12-01T08:00:00+08:00", True),
        ("eq2026-12-01T08:00:00 08:00", True),
        ("lt2026-12-01T01:00:00+01:00", False),
        ("lt2026-12-01T01:00:01+01:00", True),
    ],
)
def test_a_slot_start_matches_date_prefixes_at_the_precision_given(
    value: str, matches: bool
) -> None:
    assert parse_date_criterion("start", value).matches_instant(SLOT_START) is matches


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        ("eq2026-12-01", True),
        ("ge2026-12-01", True),
        ("gt2026-12-01", False),
        ("le2026-12-01", True),
        ("lt2026-12-01", False),
        ("ge2026-12-02", False),
        ("eq2026-12-01T08:00", False),
        ("sa2026-12-01T07:59", True),
        ("eb2026-12-01T12:00", True),
        ("eb2026-12-01T11:59", False),
        ("ne2026-12-02", True),
    ],
)
def test_a_schedule_horizon_matches_date_prefixes_as_a_period(value: str, matches: bool) -> None:
    start, end = SLOT_START, SLOT_START + dt.timedelta(hours=4)
    assert parse_date_criterion("date", value).matches_period(start, end) is matches


@pytest.mark.parametrize(
    "value", ["2026-13-01", "2026-02-30", "tomorrow", "xx2026-12-01", "2026-12-01T8:00", ""]
)
def test_a_malformed_date_is_refused_as_invalid(value: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_date_criterion("start", value)
    assert refused.value.details == {"issue": "invalid", "parameter": "start"}


def test_the_approximate_prefix_is_refused_as_not_supported() -> None:
    with pytest.raises(BadRequest) as refused:
        parse_date_criterion("start", "ap2026-12-01")
    assert refused.value.details["issue"] == "not-supported"


@pytest.mark.parametrize(
    "pairs",
    [
        [("foo", "1")],
        [("start:missing", "true")],
        [("name", "x")],
        [("_sort", "start")],
    ],
)
def test_an_unsupported_search_parameter_is_refused_not_ignored(
    pairs: list[tuple[str, str]],
) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_search("Slot", pairs)
    assert refused.value.details["issue"] == "not-supported"
    assert refused.value.details["parameter"] == pairs[0][0]


@pytest.mark.parametrize("pairs", [[("_count", "501")], [("_count", "-1")], [("_offset", "x")]])
def test_bad_paging_values_are_refused(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(BadRequest):
        parse_search("Slot", pairs)


def test_repeats_are_and_commas_are_or_and_empty_values_are_ignored() -> None:
    query = parse_search(
        "Slot",
        [
            ("start", "ge2026-12-01"),
            ("start", "lt2026-12-08"),
            ("status", "free,busy"),
            ("schedule.actor", ""),
            ("_count", "10"),
            ("_offset", "20"),
        ],
    )
    assert [len(alternatives) for alternatives in query.dates("start")] == [1, 1]
    assert [set(term.values) for term in query.of("status")] == [{"free", "busy"}]
    assert query.of("schedule.actor") == []
    assert (query.count, query.offset, query.summary_count) == (10, 20, False)
    assert parse_search("Slot", [("_count", "0")]).summary_count is True


def test_start_ranges_narrow_the_dates_looked_at() -> None:
    def dates(*values: str) -> tuple[dt.date, dt.date]:
        return date_range(parse_search("Slot", [("start", v) for v in values]).dates("start"))

    assert dates("ge2026-12-01", "lt2026-12-08") == (dt.date(2026, 12, 1), dt.date(2026, 12, 7))
    assert dates("ge2026-11-30T16:00:00Z") == (dt.date(2026, 12, 1), ALL_DATES[1])
    assert dates("ne2026-12-01") == ALL_DATES
    assert dates("eq2026-12-01,eq2026-12-05") == (dt.date(2026, 12, 1), dt.date(2026, 12, 5))


def test_references_take_typed_bare_and_absolute_forms() -> None:
    query = parse_search(
        "Slot",
        [
            (
                "schedule.actor",
                "Practitioner/doc.1,Location/h.1,doc.2,https://x.example/fhir/Practitioner/doc.3",
            )
        ],
    )
    refs = query.references("schedule.actor", ("Practitioner", "Location"))[0]
    assert [(r.type, r.id) for r in refs] == [
        ("Practitioner", "doc_1"),
        ("Location", "h_1"),
        (None, "doc_2"),
        ("Practitioner", "doc_3"),
    ]
    with pytest.raises(BadRequest):
        parse_search("Slot", [("schedule.actor", "Patient/p.1")]).references(
            "schedule.actor", ("Practitioner", "Location")
        )


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-01T08:00:00+99:00",  # an offset no zone has (datetime refuses it: was a 500)
        "2026-12-01T08:00:00+13:75",
        "0001-01-01T00:00+14:00",  # overflows when moved to UTC
        "9999-12-31T23:59:59-14:00",
        "ge9999",
        "２０２６-12-01",  # full-width digits
        "2026-1٢-01",  # an Arabic-Indic digit
    ],
)
def test_crafted_dates_are_bad_requests_naming_the_parameter(value: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_date_criterion("date", value)
    assert refused.value.details == {"issue": "invalid", "parameter": "date"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("_count", "²"),
        ("_count", "٣"),
        ("_offset", "²"),
        ("_count", "1" * 40),
        ("_offset", "-1"),
    ],
)
def test_crafted_counts_are_bad_requests(name: str, value: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_search("Slot", [(name, value)])
    assert refused.value.details["parameter"] == name
