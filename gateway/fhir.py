"""The read-only FHIR R4 endpoints under /fhir and the SMART Scheduling Links bulk
publication: a thin HTTP layer. Resources are built by the services that own the data
(catalog: Practitioner, Location, Schedule, Slot; booking: Appointment); here the query string
is passed through as given, the caller of Appointment reads is verified, every error becomes
an OperationOutcome with the matching HTTP status, and answers carry the FHIR content types.

| method | path | answer |
|---|---|---|
| GET | /fhir/metadata | CapabilityStatement |
| GET | /fhir/{Practitioner,Location,Schedule,Slot}/{id} | the resource |
| GET, POST | /fhir/{Practitioner,Location,Schedule,Slot}, …/_search | searchset Bundle |
| GET | /fhir/Appointment/{id} | Appointment (Bearer token of that hospital's staff) |
| GET | /fhir/$bulk-publish | bulk publication manifest (application/json) |
| GET | /fhir/bulk/{Location,Schedule,Slot}.ndjson | NDJSON (application/fhir+ndjson), streamed |
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, get_args

from aiohttp import web

from gateway.limits import USER, Network
from gateway.middleware import MAX_BODY_BYTES, HttpError
from gateway.responses import dumps
from gateway.routes import HOSPITAL_STAFF
from gateway.state import CALLER, GATEWAY, Gateway
from shared.contracts.base import parse_object
from shared.contracts.fhir import (
    BULK_RESOURCE_TYPES,
    FHIR_ID_PATTERN,
    FHIR_JSON,
    FHIR_NDJSON,
    FHIR_VERSION,
    SEARCH_PARAMETERS,
    BulkResourceType,
    CapabilityImplementation,
    CapabilityInteraction,
    CapabilityResource,
    CapabilityRest,
    CapabilitySearchParam,
    CapabilitySoftware,
    CapabilityStatement,
    CatalogResourceType,
    CodeableConcept,
    FhirAppointmentRef,
    FhirBulkChunk,
    FhirBulkPage,
    FhirRead,
    FhirSearch,
    OperationOutcome,
    OperationOutcomeIssue,
)
from shared.errors import (
    DomainError,
    Forbidden,
    Internal,
    NotFound,
    PayloadTooLarge,
    RateLimited,
)
from shared.rules import local_now

log = logging.getLogger("guahao.gateway.fhir")

FHIR_PREFIX = "/fhir"
CATALOG_TYPES: tuple[str, ...] = get_args(CatalogResourceType)
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
IGNORED_PARAMETERS = frozenset({"_format", "_pretty"})
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# OperationOutcome issue types (http://hl7.org/fhir/issue-type) of the contract's codes
ISSUE_TYPES = {
    "NOT_FOUND": "not-found",
    "UNAUTHENTICATED": "login",
    "TOKEN_EXPIRED": "expired",
    "FORBIDDEN": "forbidden",
    "BAD_REQUEST": "invalid",
    "VALIDATION_FAILED": "invalid",
    "RATE_LIMITED": "throttled",
    "SERVICE_UNAVAILABLE": "transient",
    "PAYLOAD_TOO_LARGE": "too-long",
    "NOT_ACCEPTABLE": "not-supported",
    "METHOD_NOT_ALLOWED": "not-supported",
    "INTERNAL": "exception",
}


class NotAcceptable(DomainError):
    code, status, default_message = (
        "NOT_ACCEPTABLE",
        406,
        "仅支持 JSON / only application/fhir+json is served",
    )


class MethodNotAllowed(DomainError):
    code, status, default_message = (
        "METHOD_NOT_ALLOWED",
        405,
        "只读接口 / this FHIR endpoint is read-only",
    )


def add_fhir_routes(app: web.Application) -> None:
    """Mount the FHIR endpoints; everything else under /fhir answers an OperationOutcome."""
    router = app.router
    router.add_get(f"{FHIR_PREFIX}/metadata", fhir_endpoint(metadata))
    router.add_get(f"{FHIR_PREFIX}/$bulk-publish", fhir_endpoint(bulk_manifest))
    for kind in BULK_RESOURCE_TYPES:
        router.add_get(f"{FHIR_PREFIX}/bulk/{kind}.ndjson", fhir_endpoint(bulk_file(kind)))
    router.add_get(f"{FHIR_PREFIX}/Appointment/{{id}}", fhir_endpoint(read_appointment))
    router.add_get(f"{FHIR_PREFIX}/{{type}}/{{id}}", fhir_endpoint(read_resource))
    router.add_get(f"{FHIR_PREFIX}/{{type}}", fhir_endpoint(search))
    router.add_post(f"{FHIR_PREFIX}/{{type}}/_search", fhir_endpoint(search))
    router.add_route("*", FHIR_PREFIX, fhir_endpoint(no_such_endpoint))
    router.add_route("*", f"{FHIR_PREFIX}/{{tail:.*}}", fhir_endpoint(no_such_endpoint))


# --- responses ----------------------------------------------------------------------------


def fhir_response(
    body: Any,
    *,
    status: int = 200,
    content_type: str = FHIR_JSON,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        text=dumps(body), status=status, content_type=content_type, charset="utf-8", headers=headers
    )


def operation_outcome(exc: DomainError) -> OperationOutcome:
    """The error as FHIR says it: issue type from the code (or what the service named),
    the message, and the offending parameter or fields."""
    details = exc.details if isinstance(exc.details, dict) else {}
    issue = details.get("issue") if isinstance(details.get("issue"), str) else None
    diagnostics = exc.code
    fields = details.get("fields")
    if isinstance(fields, dict) and fields:
        diagnostics += ": " + "; ".join(f"{k}: {v}" for k, v in fields.items())
    parameter = details.get("parameter")
    return OperationOutcome(
        issue=[
            OperationOutcomeIssue(
                severity="fatal" if exc.status >= 500 else "error",
                code=issue or ISSUE_TYPES.get(exc.code, "processing"),
                details=CodeableConcept(text=exc.message),
                diagnostics=diagnostics,
                expression=[parameter] if isinstance(parameter, str) else None,
            )
        ]
    )


def outcome_response(exc: DomainError) -> web.Response:
    headers: dict[str, str] = {}
    status = exc.status
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="guahao"'
    if status == 422:  # a query or path FHIR cannot use: the request itself is bad
        status = 400
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = "GET, HEAD"
    return fhir_response(
        operation_outcome(exc).model_dump(mode="json"), status=status, headers=headers
    )


def fhir_endpoint(handler: Handler) -> Handler:
    """Every failure of a FHIR endpoint answers an OperationOutcome."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DomainError as exc:
            return outcome_response(exc)
        except web.HTTPException as exc:  # aiohttp's own refusals, e.g. a form too large
            if exc.status < 400:
                raise
            if exc.status == 413:
                response = outcome_response(PayloadTooLarge(limit_bytes=MAX_BODY_BYTES))
                response.force_close()  # the unread body must not be parsed as a request
                return response
            return outcome_response(HttpError(exc))
        except Exception:
            log.exception("fhir endpoint failed", extra={"path": request.path})
            return outcome_response(Internal())

    handle.__name__ = f"fhir_{handler.__name__}"
    return handle


# --- request helpers ----------------------------------------------------------------------


def peer_is_trusted(peer: str | None, trusted: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(address in network for network in trusted)


def fhir_base(request: web.Request, gw: Gateway) -> str:
    """The absolute base URL clients reached: Host, and X-Forwarded-Proto when a trusted
    proxy (GUAHAO_TRUSTED_PROXIES) terminated TLS in front of the gateway."""
    scheme = request.scheme
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if forwarded in ("http", "https") and peer_is_trusted(request.remote, gw.trusted_proxies):
        scheme = forwarded
    host = request.host
    if not _HOST.match(host):
        host = f"{gw.settings.gateway_host}:{gw.settings.gateway_port}"
    return f"{scheme}://{host}{FHIR_PREFIX}"


def require_json_format(pairs: Iterable[tuple[str, str]]) -> None:
    for key, value in pairs:
        wanted = value.replace(" ", "+").split(";")[0].strip().lower()
        if key == "_format" and wanted not in JSON_FORMATS:
            raise NotAcceptable(format=value)


def resource_type_of(request: web.Request) -> CatalogResourceType:
    kind = request.match_info["type"]
    if kind not in CATALOG_TYPES:
        raise NotFound(
            f"不支持的资源类型 / unsupported resource type: {kind}", issue="not-supported"
        )
    return kind  # type: ignore[return-value]  # one of CATALOG_TYPES, checked above


def resource_id_of(request: web.Request) -> str:
    resource_id = request.match_info["id"]
    if not re.fullmatch(FHIR_ID_PATTERN, resource_id):
        raise NotFound("资源不存在 / no such resource")
    return resource_id


# --- handlers -----------------------------------------------------------------------------


async def metadata(request: web.Request) -> web.Response:
    require_json_format(request.query.items())
    statement = capability_statement(
        fhir_base(request, request.app[GATEWAY]), dt.datetime.now(dt.UTC)
    )
    return fhir_response(statement.model_dump(mode="json"))


async def read_resource(request: web.Request) -> web.Response:
    require_json_format(request.query.items())
    gw = request.app[GATEWAY]
    params = parse_object(
        FhirRead, {"resource_type": resource_type_of(request), "id": resource_id_of(request)}
    )
    return fhir_response(await gw.upstream.call("catalog", "fhir_read", params))


async def search(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    resource_type = resource_type_of(request)
    pairs = list(request.query.items())
    if request.method == "POST":
        form = await request.post()
        pairs += [(k, v) for k, v in form.items() if isinstance(v, str)]
    require_json_format(pairs)
    params = parse_object(
        FhirSearch,
        {
            "resource_type": resource_type,
            "base_url": fhir_base(request, gw),
            "params": [(k, v) for k, v in pairs if k not in IGNORED_PARAMETERS],
        },
    )
    return fhir_response(await gw.upstream.call("catalog", "fhir_search", params))


async def read_appointment(request: web.Request) -> web.Response:
    """Hospital staff (or a platform admin) only; booking checks the hospital again and
    answers NotFound for another hospital's appointment."""
    require_json_format(request.query.items())
    gw = request.app[GATEWAY]
    caller = await gw.verifier.verify(request.headers.get("Authorization"))
    request[CALLER] = caller
    gw.limits.hit(USER, caller.user_id)
    if caller.role not in HOSPITAL_STAFF:
        raise Forbidden()
    params = parse_object(FhirAppointmentRef, {"id": resource_id_of(request)})
    return fhir_response(
        await gw.upstream.call("booking", "fhir_appointment", params, caller=caller)
    )


async def bulk_manifest(request: web.Request) -> web.Response:
    """The SMART Scheduling Links `$bulk-publish` manifest: absolute links to one NDJSON
    file per type, generated live when fetched (so `transactionTime` is now)."""
    base = fhir_base(request, request.app[GATEWAY])
    manifest = {
        "transactionTime": local_now(dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "request": f"{base}/$bulk-publish",
        "output": [
            {"type": kind, "url": f"{base}/bulk/{kind}.ndjson"} for kind in BULK_RESOURCE_TYPES
        ],
        "error": [],
    }
    return fhir_response(manifest, content_type="application/json")


def bulk_file(kind: BulkResourceType) -> Handler:
    async def bulk(request: web.Request) -> web.StreamResponse:
        """Page after page from the catalog, written as they come. A failure before the
        first byte is an OperationOutcome; after it, the connection is cut so the client
        sees an incomplete transfer, never a silently short file."""
        gw = request.app[GATEWAY]
        chunk = await bulk_chunk(gw, kind, None)
        response = web.StreamResponse(headers={"Content-Type": FHIR_NDJSON})
        await response.prepare(request)
        if request.method == "HEAD":
            await response.write_eof()
            return response
        try:
            while True:
                if chunk.resources:
                    await response.write(
                        "".join(dumps(resource) + "\n" for resource in chunk.resources).encode()
                    )
                if chunk.next is None:
                    break
                chunk = await bulk_chunk(gw, kind, chunk.next)
        except Exception as exc:
            log.warning("bulk file cut off", extra={"type": kind, "error": repr(exc)})
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response

    bulk.__name__ = f"bulk_{kind.lower()}"
    return bulk


async def bulk_chunk(gw: Gateway, kind: BulkResourceType, cursor: str | None) -> FhirBulkChunk:
    reply = await gw.upstream.call(
        "catalog", "fhir_bulk", FhirBulkPage(resource_type=kind, cursor=cursor)
    )
    return FhirBulkChunk.model_validate(reply)


async def no_such_endpoint(request: web.Request) -> web.Response:
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed()
    raise NotFound("没有这个 FHIR 接口 / no such FHIR endpoint", issue="not-supported")


# --- CapabilityStatement ------------------------------------------------------------------


def capability_statement(base: str, now: dt.datetime) -> CapabilityStatement:
    """What /fhir serves, from the same table the catalog enforces searches with."""
    read = CapabilityInteraction(code="read")
    search_type = CapabilityInteraction(code="search-type")
    resources = [
        CapabilityResource(
            type=kind,
            interaction=[read, search_type],
            searchParam=[
                CapabilitySearchParam(name=p.name, type=p.type, documentation=p.documentation)
                for p in SEARCH_PARAMETERS[kind]
            ],
        )
        for kind in SEARCH_PARAMETERS
    ]
    resources.append(
        CapabilityResource(
            type="Appointment",
            interaction=[read],
            documentation="Authorization: Bearer <access token> of the appointment's hospital "
            "staff (or a platform admin); another hospital's appointment is 404.",
        )
    )
    return CapabilityStatement(
        status="active",
        date=local_now(now).isoformat(timespec="seconds"),
        publisher="guahao",
        kind="instance",
        software=CapabilitySoftware(name="guahao"),
        implementation=CapabilityImplementation(
            description="guahao hospital appointment booking: read-only FHIR R4", url=base
        ),
        fhirVersion=FHIR_VERSION,
        format=["json", FHIR_JSON],
        rest=[
            CapabilityRest(
                mode="server",
                documentation="Read-only. Searches also take _count (≤ 500), _offset and "
                "_summary=count. SMART Scheduling Links bulk publication: "
                f"{base}/$bulk-publish (Location, Schedule, Slot NDJSON).",
                resource=resources,
            )
        ],
    )
