"""Standards export through the running system (gateway → catalog/booking over RabbitMQ →
nx-27017): a hospital publishes a session, a patient books one slice, and the FHIR endpoints
and the SMART Scheduling Links bulk files say so. Everything returned is checked against the
official FHIR R4 JSON schema."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.contracts.fhir import BOOKING_DEEP_LINK, SLOT_CAPACITY, fhir_id
from shared.settings import DEV_WECHAT_APPID
from tests.harness import Api
from tests.system_kit import TOMORROW, Hospital, book, make_hospital, make_schedule, patient
from tests.test_fhir_schema import assert_fhir_valid


async def fhir(api: Api, path_or_url: str, *, token: str | None = None) -> tuple[int, str, Any]:
    """GET a /fhir path (or an absolute URL the gateway handed out): status, content type,
    JSON body (or the raw text of NDJSON)."""
    url = path_or_url if "://" in path_or_url else f"{api.stack.gateway_url}{path_or_url}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with api.session.get(url, headers=headers) as response:
        text = await response.text()
        if response.content_type == "application/fhir+ndjson":
            return response.status, response.content_type, text
        return response.status, response.content_type, json.loads(text)


async def fhir_resource(
    api: Api, path_or_url: str, *, token: str | None = None, status: int = 200
) -> dict[str, Any]:
    got, content_type, body = await fhir(api, path_or_url, token=token)
    assert got == status, body
    assert content_type == "application/fhir+json"
    assert_fhir_valid(body)
    return dict(body)


def capacity(slot: dict[str, Any]) -> int:
    return next(int(e["valueInteger"]) for e in slot["extension"] if e["url"] == SLOT_CAPACITY)


def deep_link(slot: dict[str, Any]) -> str:
    return next(str(e["valueUrl"]) for e in slot["extension"] if e["url"] == BOOKING_DEEP_LINK)


async def booked_session(api: Api) -> tuple[Hospital, dict[str, Any], dict[str, Any]]:
    """A hospital with a two-slice session tomorrow (capacity 1 each), the first one booked."""
    h = await make_hospital(api)
    schedule = await make_schedule(api, h, capacity=1, starts=("08:00", "08:30"))
    token, pid = await patient(api, 731)
    booked = await book(api, token, schedule["slots"][0]["id"], pid)
    assert booked.status == 201, booked.body
    return h, schedule, dict(booked.body)


def slot_search(h: Hospital) -> str:
    after = TOMORROW + dt.timedelta(days=1)
    return (
        f"/fhir/Slot?schedule.actor=Practitioner/{fhir_id(h.doctor_id)}"
        f"&start=ge{TOMORROW.isoformat()}&start=lt{after.isoformat()}"
    )


async def test_a_booked_slice_is_a_busy_slot_and_the_other_stays_free(api: Api) -> None:
    h, schedule, _ = await booked_session(api)
    bundle = await fhir_resource(api, slot_search(h))
    assert bundle["type"] == "searchset" and bundle["total"] == 2
    slots = [entry["resource"] for entry in bundle["entry"]]
    assert [(s["id"], s["status"], capacity(s)) for s in slots] == [
        (fhir_id(schedule["slots"][0]["id"]), "busy", 0),
        (fhir_id(schedule["slots"][1]["id"]), "free", 1),
    ]
    assert slots[0]["start"] == f"{TOMORROW.isoformat()}T08:00:00+08:00"
    link = urlsplit(deep_link(slots[1]))
    outer = parse_qs(link.query)
    assert link.scheme == "weixin" and outer["appid"] == [DEV_WECHAT_APPID]
    assert parse_qs(outer["query"][0])["id"] == [h.doctor_id]
    free = await fhir_resource(api, slot_search(h) + "&status=free")
    assert [e["resource"]["id"] for e in free["entry"]] == [slots[1]["id"]]
    # every fullUrl is readable
    for entry in bundle["entry"]:
        assert await fhir_resource(api, entry["fullUrl"]) == entry["resource"]


async def test_doctor_hospital_and_session_are_practitioner_location_and_schedule(api: Api) -> None:
    h, schedule, _ = await booked_session(api)
    doctor = await fhir_resource(api, f"/fhir/Practitioner/{fhir_id(h.doctor_id)}")
    assert doctor["name"][0]["text"] == "王医生"
    assert doctor["qualification"][0]["code"]["text"] == "主任医师"
    location = await fhir_resource(api, f"/fhir/Location/{fhir_id(h.id)}")
    assert location["name"].startswith("测试医院")
    found = await fhir_resource(api, f"/fhir/Schedule?actor=Practitioner/{fhir_id(h.doctor_id)}")
    (entry,) = found["entry"]
    assert entry["resource"]["id"] == fhir_id(schedule["id"])
    assert entry["resource"]["active"] is True
    assert entry["resource"]["planningHorizon"] == {
        "start": f"{TOMORROW.isoformat()}T08:00:00+08:00",
        "end": f"{TOMORROW.isoformat()}T08:59:00+08:00",
    }
    assert entry["resource"]["serviceType"] == [{"text": "心血管内科"}]
    by_name = await fhir_resource(api, f"/fhir/Practitioner?_id={fhir_id(h.doctor_id)}&name=王")
    assert by_name["total"] == 1
    metadata = await fhir(api, "/fhir/metadata")
    assert metadata[0] == 200 and metadata[2]["resourceType"] == "CapabilityStatement"


async def test_the_bulk_manifest_links_ndjson_files_that_hold_the_session(api: Api) -> None:
    h, schedule, _ = await booked_session(api)
    status, content_type, manifest = await fhir(api, "/fhir/$bulk-publish")
    assert status == 200 and content_type == "application/json"
    assert manifest["request"] == f"{api.stack.gateway_url}/fhir/$bulk-publish"
    assert [o["type"] for o in manifest["output"]] == ["Location", "Schedule", "Slot"]
    files: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        assert output["url"].startswith(f"{api.stack.gateway_url}/fhir/bulk/")
        status, content_type, text = await fhir(api, output["url"])
        assert status == 200 and content_type == "application/fhir+ndjson"
        lines = [json.loads(line) for line in text.splitlines()]
        for resource in lines:
            assert resource["resourceType"] == output["type"]
            assert_fhir_valid(resource)
        files[output["type"]] = lines
    assert fhir_id(h.id) in {r["id"] for r in files["Location"]}
    assert fhir_id(schedule["id"]) in {r["id"] for r in files["Schedule"]}
    ours = {r["id"]: r for r in files["Slot"]}
    first, second = (ours[fhir_id(s["id"])] for s in schedule["slots"])
    assert (first["status"], capacity(first)) == ("busy", 0)
    assert (second["status"], capacity(second)) == ("free", 1)
    assert deep_link(second).startswith(f"weixin://dl/business/?appid={DEV_WECHAT_APPID}&")


async def test_an_appointment_is_readable_by_its_hospital_only(api: Api) -> None:
    h, schedule, booked = await booked_session(api)
    path = f"/fhir/Appointment/{fhir_id(booked['id'])}"
    appointment = await fhir_resource(api, path, token=h.staff_token)
    assert appointment["status"] == "booked"
    assert appointment["slot"] == [{"reference": f"Slot/{fhir_id(schedule['slots'][0]['id'])}"}]
    assert appointment["start"] == f"{TOMORROW.isoformat()}T08:00:00+08:00"
    actors = [p["actor"] for p in appointment["participant"]]
    assert {
        "reference": f"Practitioner/{fhir_id(h.doctor_id)}",
        "display": "王医生 主任医师",
    } in actors
    assert {"type": "Patient", "display": "患*"} in actors
    assert "3101" not in json.dumps(appointment)  # no ID number, not even masked
    admin = await fhir_resource(api, path, token=await api.admin_token())
    assert admin["id"] == appointment["id"]

    other = await make_hospital(api)
    denied = await fhir_resource(api, path, token=other.staff_token, status=404)
    assert denied["issue"][0]["code"] == "not-found"
    anonymous = await fhir_resource(api, path, status=401)
    assert anonymous["resourceType"] == "OperationOutcome"
    patient_token, _ = await patient(api, 732)
    forbidden = await fhir_resource(api, path, token=patient_token, status=403)
    assert forbidden["issue"][0]["code"] == "forbidden"


async def test_cancelling_frees_the_slot_and_stopping_makes_it_unavailable(api: Api) -> None:
    h, schedule, booked = await booked_session(api)
    cancelled = await api.request(
        "POST",
        f"/admin/hospitals/{h.id}/appointments/{booked['id']}/cancel",
        token=h.staff_token,
        json={"reason": "医生出诊调整"},
    )
    assert cancelled.status == 200, cancelled.body
    appointment = await fhir_resource(
        api, f"/fhir/Appointment/{fhir_id(booked['id'])}", token=h.staff_token
    )
    assert appointment["status"] == "cancelled"
    assert "医生出诊调整" in appointment["cancelationReason"]["text"]
    slots = [e["resource"] for e in (await fhir_resource(api, slot_search(h)))["entry"]]
    assert [(s["status"], capacity(s)) for s in slots] == [("free", 1), ("free", 1)]

    stopped = await api.request(
        "POST",
        f"/admin/hospitals/{h.id}/schedules/{schedule['id']}/stop",
        token=h.staff_token,
        json={"reason": "停诊"},
    )
    assert stopped.status == 200, stopped.body
    slots = [e["resource"] for e in (await fhir_resource(api, slot_search(h)))["entry"]]
    assert {s["status"] for s in slots} == {"busy-unavailable"}
    session = await fhir_resource(api, f"/fhir/Schedule/{fhir_id(schedule['id'])}")
    assert session["active"] is False


async def test_errors_are_operation_outcomes(api: Api) -> None:
    missing = await fhir_resource(api, "/fhir/Practitioner/doc.nobody", status=404)
    assert missing["issue"][0]["code"] == "not-found"
    unsupported = await fhir_resource(api, "/fhir/Slot?start=ge2026-12-01&colour=red", status=400)
    assert unsupported["issue"][0]["code"] == "not-supported"
    invalid = await fhir_resource(api, "/fhir/Slot?start=ge2026-13-45", status=400)
    assert invalid["issue"][0]["code"] == "invalid"
