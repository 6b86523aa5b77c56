"""Middlewares, outermost first: observe (request id, access log, metrics), errors (every
failure becomes the contract's JSON error), guard (body size, per-IP rate limit)."""

from __future__ import annotations

import logging
import re
import time
from typing import ClassVar

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, StatusCode, get_current_span

from gateway.limits import IP, client_ip
from gateway.responses import error_response
from gateway.state import CALLER, CLIENT_IP, GATEWAY, REQUEST_ID
from shared.context import new_request_id, request_id_var
from shared.errors import BadRequest, DomainError, Internal, NotFound, PayloadTooLarge
from shared.tracing import extract, tracer

log = logging.getLogger("guahao.gateway")
access_log = logging.getLogger("guahao.gateway.access")

MAX_BODY_BYTES = 64 * 1024
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED_ROUTE = "unmatched"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class MethodNotAllowed(DomainError):
    code, status, default_message = (
        "METHOD_NOT_ALLOWED",
        405,
        "不支持的请求方法 / method not allowed",
    )


class HttpError(DomainError):
    """Any other HTTP-level refusal aiohttp raised, carried in the contract's error shape."""

    code: ClassVar[str] = "HTTP_ERROR"

    def __init__(self, exc: web.HTTPException) -> None:
        super().__init__(exc.reason)
        self.status = exc.status  # type: ignore[misc]


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is a sane token, else a fresh one."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return new_request_id()


def route_template(request: web.Request) -> str:
    """The matched route's template (bounded label), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, the request's server span (the root of the request's trace), access
    log and metrics.

    The span is ours rather than the aiohttp-server instrumentation's: that one records
    the raw target with its query string (FHIR searches carry ID numbers); ours records
    the route template, like the metrics."""
    request_id = request_id_from(request.headers.get("X-Request-ID"))
    request[REQUEST_ID] = request_id
    route = route_template(request)
    if request.path in OPS_PATHS:  # probes and scrapes: no trace of their own
        return await _observed(request, handler, request_id, route, INVALID_SPAN)
    with tracer.start_as_current_span(
        f"{request.method} {route}",
        kind=SpanKind.SERVER,
        links=_caller_trace(request),
        record_exception=False,
        set_status_on_exception=False,
        attributes={
            "http.request.method": request.method,
            "http.route": route,
            "guahao.request_id": request_id,
        },
    ) as span:
        return await _observed(request, handler, request_id, route, span)


def _caller_trace(request: web.Request) -> list[Link] | None:
    """A `traceparent` sent from the internet is linked, never continued: the gateway
    starts every trace, so a client cannot choose its trace id or force it sampled."""
    if "traceparent" not in request.headers:
        return None
    caller = get_current_span(extract(request.headers)).get_span_context()
    return [Link(caller)] if caller.is_valid else None


async def _observed(
    request: web.Request, handler: Handler, request_id: str, route: str, span: Span
) -> web.StreamResponse:
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 499  # only a cancelled (client went away) request escapes the error middleware
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = request_id
        return response
    finally:
        elapsed = time.perf_counter() - started
        if span.is_recording():
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
        request.app[GATEWAY].metrics.observe_request(route, request.method, status, elapsed)
        caller = request.get(CALLER)
        access_log.log(
            logging.DEBUG if request.path in OPS_PATHS else logging.INFO,
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": status,
                "ms": round(elapsed * 1000, 2),
                "user_id": caller.user_id if caller else None,
            },
        )
        request_id_var.reset(token)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        response = error_response(exc)
        if isinstance(exc, PayloadTooLarge):
            response.force_close()  # the unread body must not be parsed as the next request
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc)
    except Exception:
        log.exception("unhandled error", extra={"route": route_template(request)})
        return error_response(Internal())


def _http_error(exc: web.HTTPException) -> web.Response:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        response = error_response(PayloadTooLarge(limit_bytes=MAX_BODY_BYTES))
        response.force_close()
        return response
    if isinstance(exc, web.HTTPNotFound):
        return error_response(NotFound())
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            MethodNotAllowed(allowed=sorted(exc.allowed_methods)), headers={"Allow": allowed}
        )
    if exc.status == 400:
        return error_response(BadRequest())
    return error_response(HttpError(exc))


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    ip = client_ip(request.remote, request.headers.get("X-Forwarded-For"), gw.trusted_proxies)
    request[CLIENT_IP] = ip
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(limit_bytes=MAX_BODY_BYTES)
    if request.path not in OPS_PATHS:
        gw.limits.hit(IP, ip)
    return await handler(request)


MIDDLEWARES = (observe, errors, guard)
