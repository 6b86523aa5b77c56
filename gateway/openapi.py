"""The OpenAPI 3.1 document, generated from the route table and the contract models."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from gateway.routes import ROUTES, Route

REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"

JsonSchemaMode = Literal["validation", "serialization"]
Refs = Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]]  # (model, mode) → {"$ref": ...}


class ErrorObject(BaseModel):
    code: str = Field(examples=["SLOT_FULL"])
    message: str = Field(examples=["号源已约满 / slot is full"])
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Always an object; validation errors carry `fields` (field → message).",
    )


class ErrorResponse(BaseModel):
    """Every non-2xx answer."""

    error: ErrorObject


ERROR_RESPONSES = MappingProxyType(
    {  # status → (components/responses name, description)
        400: ("BadRequest", "BAD_REQUEST: malformed JSON"),
        401: ("Unauthenticated", "UNAUTHENTICATED or TOKEN_EXPIRED"),
        403: ("Forbidden", "FORBIDDEN: the role may not call this"),
        404: ("NotFound", "NOT_FOUND (also another user's or another hospital's resource)"),
        409: (
            "Conflict",
            "SLOT_FULL, ALREADY_BOOKED, INVALID_STATE, CONFLICT, … (see the contract)",
        ),
        413: ("PayloadTooLarge", "PAYLOAD_TOO_LARGE: body over 64 KiB"),
        422: ("ValidationFailed", "VALIDATION_FAILED: details.fields has a message per field"),
        429: ("RateLimited", "RATE_LIMITED: wait Retry-After seconds"),
        502: ("WechatError", "WECHAT_ERROR: WeChat refused the call (details.errcode)"),
        503: ("ServiceUnavailable", "SERVICE_UNAVAILABLE: a service did not answer in time"),
    }
)


def build_openapi(
    routes: tuple[Route, ...] = ROUTES, *, title: str = "guahao API", version: str = "1.0.0"
) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for route in routes:
        models += [(m, "validation") for m in (route.body, route.query) if m is not None]
        if route.reply is not None:
            models.append((route.reply, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = defs.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.full_path, {})[route.method.lower()] = _operation(
            route, refs, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                name: _error_response(status, refs[(ErrorResponse, "serialization")])
                for status, (name, _) in ERROR_RESPONSES.items()
            },
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(
    route: Route,
    refs: Refs,
    schemas: dict[str, Any],
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag] if route.tag else [],
        "x-rpc": f"{route.service}.{route.rpc}",
        "parameters": _parameters(route, refs, schemas),
    }
    if route.roles is not None:
        op["security"] = [{"bearerAuth": []}]
        op["x-roles"] = sorted(route.roles)
    if route.body is not None:
        op["requestBody"] = {
            # an empty body reads as `{}`: required only when `{}` cannot be valid
            "required": any(f.is_required() for f in route.body.model_fields.values()),
            "content": {JSON: {"schema": refs[(route.body, "validation")]}},
        }
    reply = refs[(route.reply, "serialization")] if route.reply else {"type": "object"}
    success = "Created" if route.status == 201 else "OK"
    content = {
        JSON: {"schema": reply},
        **({"text/csv": {"schema": {"type": "string"}}} if route.csv else {}),
    }
    # a replay (same Idempotency-Key) or an existing resource answers 200 with the same body
    replayed = (
        {"200": {"description": "OK: already done (replay)", "content": content}}
        if route.created_flag or "idempotency_key" in route.headers.values()
        else {}
    )
    op["responses"] = {
        **replayed,
        str(route.status): {"description": success, "content": content},
        **{
            str(s): {"$ref": f"#/components/responses/{ERROR_RESPONSES[s][0]}"}
            for s in _error_statuses(route)
        },
    }
    return op


def _parameters(
    route: Route,
    refs: Refs,
    schemas: dict[str, Any],
) -> list[dict[str, Any]]:
    params_schema = (
        route.params.model_json_schema(ref_template=REF_TEMPLATE) if route.params else {}
    )
    params_props = params_schema.get("properties", {})
    result = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": params_props.get(name, {"type": "string"}),
        }
        for name in route.path_params
    ]
    if route.query is not None:
        query = schemas[refs[(route.query, "validation")]["$ref"].rsplit("/", 1)[-1]]
        required = set(query.get("required", []))
        result += [
            {"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in query.get("properties", {}).items()
        ]
    required_params = set(params_schema.get("required", []))
    result += [
        {
            "name": header,
            "in": "header",
            "required": name in required_params,
            "schema": params_props.get(name, {"type": "string"}),
        }
        for header, name in route.headers.items()
    ]
    return result


def _error_statuses(route: Route) -> list[int]:
    """Every status the route can answer besides its success: checked against what the
    system tests see (tests/harness.py refuses an undeclared status)."""
    statuses = {429, 503} | set(route.errors)
    if route.method != "GET":  # a change meets the state it changes: 409 (INVALID_STATE, …)
        statuses.add(409)
    if route.body is not None:
        statuses |= {400, 413, 422}
    if route.query is not None or route.params is not None:
        statuses.add(422)
    if route.roles is not None:
        statuses |= {401, 403}
    if route.path_params or route.hospital_scoped or _refers_to_ids(route):
        statuses.add(404)
    return sorted(statuses)


def _refers_to_ids(route: Route) -> bool:
    """A body or query naming another resource (`slot_id`, `patient_id`, …): 404 when it
    does not exist or is not the caller's."""
    return any(
        name.endswith("_id")
        for model in (route.body, route.query)
        if model is not None
        for name in model.model_fields
    )


def _error_response(status: int, error_schema: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_RESPONSES[status][1],
        "content": {JSON: {"schema": error_schema}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return response
