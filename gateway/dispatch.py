"""The one handler every `Route` is served by: authenticate, authorise, limit, validate,
call the service, answer JSON. No business rule lives here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.limits import USER, refresh_family_key, username_ip_key
from gateway.responses import csv_response, json_response, wants_csv
from gateway.routes import HOSPITAL_PARAM, HOSPITAL_ROLES, ROUTES, Route
from gateway.state import CALLER, CLIENT_IP, GATEWAY, Gateway
from shared.context import Caller
from shared.contracts.base import parse_body, parse_object
from shared.errors import Forbidden, NotFound

log = logging.getLogger("guahao.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_api_routes(app: web.Application, routes: tuple[Route, ...] = ROUTES) -> None:
    for route in routes:
        app.router.add_route(route.method, route.full_path, route_handler(route))


def route_handler(route: Route) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        gw = request.app[GATEWAY]
        caller = await authorise(route, request, gw)
        params = await rpc_params(route, request)
        if route.rate is not None:
            gw.limits.hit(route.rate, rate_key(route, request, caller, params))
        result = await gw.upstream.call(route.service, route.rpc, params, caller=caller)
        if route.revokes_sessions:
            await refresh_revocations(gw)
        status = route.status
        if route.created_flag:
            status = route.status if result["created"] else 200
            result = result["resource"]
        if route.csv and isinstance(result, dict) and wants_csv(request.headers.get("Accept")):
            return csv_response(result.get("items") or [], route.csv_columns, filename=route.rpc)
        return json_response({} if result is None else result, status=status)

    handle.__name__ = f"{route.service}_{route.rpc}"
    return handle


async def authorise(route: Route, request: web.Request, gw: Gateway) -> Caller | None:
    """The verified caller of a protected route (None for a public one)."""
    if route.roles is None:
        return None
    caller = await gw.verifier.verify(
        request.headers.get("Authorization"),
        password_change_pending_ok=route.password_change_pending_ok,
    )
    request[CALLER] = caller
    gw.limits.hit(USER, caller.user_id)
    if caller.role not in route.roles:
        raise Forbidden()
    if (
        route.hospital_scoped
        and caller.role in HOSPITAL_ROLES
        and caller.hospital_id != request.match_info[HOSPITAL_PARAM]
    ):
        raise NotFound()
    return caller


def rate_key(
    route: Route, request: web.Request, caller: Caller | None, params: dict[str, Any]
) -> str:
    """Whose bucket a request of `route` takes its token from (see `Route.rate_key`)."""
    ip: str = request[CLIENT_IP]
    if route.rate_key == "username_ip":
        return username_ip_key(str(params.get("username", "")), ip)
    if route.rate_key == "refresh_family":
        return refresh_family_key(str(params.get("refresh_token", "")))
    if route.rate_key == "caller" and caller is not None:
        return caller.user_id
    return ip


async def refresh_revocations(gw: Gateway) -> None:
    """After a request that ended sessions: learn it before answering, so that on this
    replica the old tokens are refused by the time the client has the reply."""
    if gw.revocations is None:
        return
    try:
        await gw.revocations.refresh()
    except Exception:  # the poll catches up; the action itself succeeded
        log.warning("revocations not refreshed after a revoking request", exc_info=True)


async def rpc_params(route: Route, request: web.Request) -> dict[str, Any]:
    """Query fields, body fields, mapped headers, then path parameters (the path wins: it
    is what was authorised), validated by the route's params contract when it has one."""
    params: dict[str, Any] = {}
    if route.query is not None:
        query = parse_object(route.query, dict(request.query))
        params.update(query.model_dump(mode="json", by_alias=True, exclude_none=True))
    if route.body is not None:
        body = parse_body(route.body, await request.read())
        params.update(body.model_dump(mode="json", exclude_unset=route.partial_update))
    for header, name in route.headers.items():
        value = request.headers.get(header)
        if value is not None:
            params[name] = value
    params.update(request.match_info)
    if route.client_ip_param is not None:
        params[route.client_ip_param] = request[CLIENT_IP]
    if route.params is not None:
        model = parse_object(route.params, params)
        params = model.model_dump(mode="json", by_alias=True, exclude_unset=route.partial_update)
    return params
