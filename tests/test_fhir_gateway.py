"""The gateway's /fhir endpoints against a fake RPC client: what reaches the services (the
query string as given, repeats kept), the FHIR content types, every error as an
OperationOutcome with its HTTP status, the Appointment token check, the bulk manifest's
absolute URLs and the streamed NDJSON files."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from gateway.testing import Client, FakeRpc, MakeClient, TokenSigner, bearer
from shared.contracts.fhir import FhirAppointmentRef, FhirBulkPage, FhirRead, FhirSearch
from shared.errors import BadRequest, DomainError, NotFound, ServiceUnavailable
from tests.test_fhir_schema import VALID_SLOT, assert_fhir_valid

pytest_plugins = ["tests.gateway_fixtures"]
APPOINTMENT = {
    "resourceType": "Appointment",
    "id": "apt.1",
    "status": "booked",
    "participant": [{"actor": {"type": "Patient", "display": "张*"}, "status": "accepted"}],
}


async def fhir_json(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/fhir+json"
    body: dict[str, Any] = await response.json(content_type=None)
    assert_fhir_valid(body)
    return body


async def outcome(response: Any, status: int, issue: str) -> dict[str, Any]:
    body = await fhir_json(response, status)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == issue, body
    return body


# --- reads and searches -------------------------------------------------------------------


async def test_a_read_goes_to_the_catalog_and_answers_fhir_json(
    client: Client, rpc: FakeRpc
) -> None:
    rpc.on("catalog", "fhir_read", VALID_SLOT)
    body = await fhir_json(await client.get("/fhir/Slot/slot.1"), 200)
    assert body == VALID_SLOT
    (call,) = rpc.calls_to("fhir_read")
    assert call.params == FhirRead(resource_type="Slot", id="slot.1")


async def test_a_search_passes_the_query_through_with_repeats_and_the_base_url(
    client: Client, rpc: FakeRpc
) -> None:
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    rpc.on("catalog", "fhir_search", bundle)
    response = await client.get(
        "/fhir/Slot?schedule.actor=Practitioner/doc.1&start=ge2026-12-01&start=lt2026-12-08"
        "&status=free&_format=json",
        headers={"Host": "guahao.example:8443"},
    )
    assert await fhir_json(response, 200) == bundle
    (call,) = rpc.calls_to("fhir_search")
    assert call.params == FhirSearch(
        resource_type="Slot",
        base_url="http://guahao.example:8443/fhir",
        params=[
            ("schedule.actor", "Practitioner/doc.1"),
            ("start", "ge2026-12-01"),
            ("start", "lt2026-12-08"),
            ("status", "free"),
        ],
    )


async def test_a_posted_search_merges_the_form_with_the_query(client: Client, rpc: FakeRpc) -> None:
    rpc.on("catalog", "fhir_search", {"resourceType": "Bundle", "type": "searchset"})
    response = await client.post(
        "/fhir/Schedule/_search?actor=Location/h.1", data={"date": "ge2026-12-01"}
    )
    await fhir_json(response, 200)
    assert rpc.calls_to("fhir_search")[0].params.params == [
        ("actor", "Location/h.1"),
        ("date", "ge2026-12-01"),
    ]


@pytest.mark.parametrize(
    ("path", "status", "issue"),
    [
        ("/fhir/Patient/p.1", 404, "not-supported"),
        ("/fhir/Patient", 404, "not-supported"),
        ("/fhir/Slot/slot_1", 404, "not-found"),
        ("/fhir/Slot/a%20b", 404, "not-found"),
        ("/fhir/nothing/here/at/all", 404, "not-supported"),
        ("/fhir/Slot?_format=xml", 406, "not-supported"),
        ("/fhir/metadata?_format=application/fhir%2Bxml", 406, "not-supported"),
    ],
)
async def test_what_is_not_served_answers_an_operation_outcome_without_calling_a_service(
    client: Client, rpc: FakeRpc, path: str, status: int, issue: str
) -> None:
    await outcome(await client.get(path), status, issue)
    assert [c for c in rpc.calls if c.service != "auth"] == []


async def test_an_oversized_query_is_refused_as_invalid(client: Client, rpc: FakeRpc) -> None:
    body = await outcome(await client.get("/fhir/Slot?start=" + "9" * 600), 400, "invalid")
    assert "params" in body["issue"][0]["diagnostics"]
    assert rpc.calls_to("fhir_search") == []


async def test_a_posted_search_too_large_is_an_operation_outcome(
    client: Client, rpc: FakeRpc
) -> None:
    async def chunked_form() -> Any:  # no Content-Length: aiohttp refuses it while reading
        yield b"status=" + b"x" * 70_000

    response = await client.post(
        "/fhir/Slot/_search",
        data=chunked_form(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await outcome(response, 413, "too-long")
    assert rpc.calls_to("fhir_search") == []


async def test_writes_are_not_allowed(client: Client) -> None:
    response = await client.delete("/fhir/Slot/slot.1")
    await outcome(response, 405, "not-supported")
    assert response.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("error", "status", "issue"),
    [
        (NotFound(), 404, "not-found"),
        (BadRequest("narrow it", issue="too-costly"), 400, "too-costly"),
        (BadRequest("bad date", issue="invalid", parameter="start"), 400, "invalid"),
        (ServiceUnavailable(service="booking"), 503, "transient"),
    ],
)
async def test_service_errors_become_operation_outcomes(
    client: Client, rpc: FakeRpc, error: DomainError, status: int, issue: str
) -> None:
    rpc.on("catalog", "fhir_search", error)
    body = await outcome(await client.get("/fhir/Slot?start=xx"), status, issue)
    if error.details.get("parameter"):
        assert body["issue"][0]["expression"] == ["start"]
    assert body["issue"][0]["details"]["text"] == error.message


async def test_metadata_is_a_capability_statement_of_what_is_served(client: Client) -> None:
    response = await client.get("/fhir/metadata")
    assert response.status == 200 and response.content_type == "application/fhir+json"
    body = await response.json(content_type=None)
    assert body["resourceType"] == "CapabilityStatement"
    # R4 as published today is 4.0.1; the shipped schema was generated from 4.0.0 and its
    # fhirVersion enum stops there (4.0.1 was a technical correction, same structures)
    assert body["fhirVersion"] == "4.0.1"
    assert_fhir_valid({**body, "fhirVersion": "4.0.0"})
    by_type = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert set(by_type) == {"Practitioner", "Location", "Schedule", "Slot", "Appointment"}
    assert {p["name"] for p in by_type["Slot"]["searchParam"]} >= {
        "schedule",
        "schedule.actor",
        "start",
        "status",
    }
    assert [i["code"] for i in by_type["Appointment"]["interaction"]] == ["read"]


# --- Appointment --------------------------------------------------------------------------


async def test_an_appointment_needs_a_token(client: Client, rpc: FakeRpc) -> None:
    response = await client.get("/fhir/Appointment/apt.1")
    await outcome(response, 401, "login")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert rpc.calls_to("fhir_appointment") == []


async def test_a_patient_token_cannot_read_fhir_appointments(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    response = await client.get("/fhir/Appointment/apt.1", headers=bearer(signer.token()))
    await outcome(response, 403, "forbidden")
    assert rpc.calls_to("fhir_appointment") == []


async def test_hospital_staff_read_an_appointment_through_booking_as_themselves(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("booking", "fhir_appointment", APPOINTMENT)
    token = signer.token("s_1", "hospital_admin", hid="h_1")
    body = await fhir_json(await client.get("/fhir/Appointment/apt.1", headers=bearer(token)), 200)
    assert body == APPOINTMENT
    (call,) = rpc.calls_to("fhir_appointment")
    assert call.params == FhirAppointmentRef(id="apt.1")
    assert call.caller is not None and call.caller.hospital_id == "h_1"


async def test_another_hospitals_appointment_is_not_found(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    rpc.on("booking", "fhir_appointment", NotFound())
    token = signer.token("s_2", "hospital_admin", hid="h_2")
    await outcome(
        await client.get("/fhir/Appointment/apt.1", headers=bearer(token)), 404, "not-found"
    )


# --- SMART Scheduling Links ---------------------------------------------------------------


async def test_the_manifest_links_every_bulk_file_absolutely_from_the_host(client: Client) -> None:
    response = await client.get("/fhir/$bulk-publish", headers={"Host": "guahao.example"})
    assert response.status == 200 and response.content_type == "application/json"
    manifest = await response.json()
    assert manifest["request"] == "http://guahao.example/fhir/$bulk-publish"
    assert manifest["output"] == [
        {"type": kind, "url": f"http://guahao.example/fhir/bulk/{kind}.ndjson"}
        for kind in ("Location", "Schedule", "Slot")
    ]
    assert manifest["error"] == []
    assert manifest["transactionTime"].endswith("+08:00")


@pytest.mark.parametrize(("trusted", "scheme"), [(("127.0.0.1",), "https"), ((), "http")])
async def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(
    make_client: MakeClient, trusted: tuple[str, ...], scheme: str
) -> None:
    client = await make_client(trusted_proxies=trusted)
    manifest = await (
        await client.get(
            "/fhir/$bulk-publish", headers={"Host": "guahao.example", "X-Forwarded-Proto": "https"}
        )
    ).json()
    assert manifest["request"] == f"{scheme}://guahao.example/fhir/$bulk-publish"


def pages(*chunks: dict[str, Any]) -> Callable[[Any, Any], Any]:
    """Answer fhir_bulk page by page, keyed by the cursor asked for."""
    by_cursor = {None if i == 0 else str(i): chunk for i, chunk in enumerate(chunks)}

    def respond(params: FhirBulkPage, caller: Any) -> Any:
        return by_cursor[params.cursor]

    return respond


async def test_a_bulk_file_is_every_page_one_resource_per_line(
    client: Client, rpc: FakeRpc
) -> None:
    slot2 = {**VALID_SLOT, "id": "slot.2"}
    rpc.on(
        "catalog",
        "fhir_bulk",
        pages(
            {"resources": [VALID_SLOT], "next": "1"},
            {"resources": [], "next": "2"},
            {"resources": [slot2], "next": None},
        ),
    )
    response = await client.get("/fhir/bulk/Slot.ndjson")
    assert response.status == 200
    assert response.content_type == "application/fhir+ndjson"
    lines = (await response.text()).splitlines()
    assert [json.loads(line) for line in lines] == [VALID_SLOT, slot2]
    assert [c.params.cursor for c in rpc.calls_to("fhir_bulk")] == [None, "1", "2"]
    assert {c.params.resource_type for c in rpc.calls_to("fhir_bulk")} == {"Slot"}


async def test_head_of_a_bulk_file_answers_headers_only(client: Client, rpc: FakeRpc) -> None:
    rpc.on("catalog", "fhir_bulk", {"resources": [VALID_SLOT], "next": None})
    response = await client.head("/fhir/bulk/Location.ndjson")
    assert response.status == 200
    assert response.content_type == "application/fhir+ndjson"
    assert await response.read() == b""


async def test_a_bulk_file_that_fails_before_its_first_line_is_an_operation_outcome(
    client: Client, rpc: FakeRpc
) -> None:
    rpc.on("catalog", "fhir_bulk", ServiceUnavailable(service="booking"))
    await outcome(await client.get("/fhir/bulk/Schedule.ndjson"), 503, "transient")


async def test_a_bulk_file_that_fails_midway_is_cut_off_not_silently_short(
    client: Client, rpc: FakeRpc
) -> None:
    def respond(params: FhirBulkPage, caller: Any) -> Any:
        if params.cursor is None:
            return {"resources": [VALID_SLOT], "next": "1"}
        return ServiceUnavailable(service="booking")

    rpc.on("catalog", "fhir_bulk", respond)
    response = await client.get("/fhir/bulk/Slot.ndjson")
    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
