"""The one handler every `Route` is served by: authenticate, authorise, limit, validate,
call the service, answer JSON. No business rule lives here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.limits import USER
from gateway.responses import csv_response, json_response, wants_csv
from gateway.routes import HOSPITAL_PARAM, ROUTES, Route
from gateway.state import CALLER, CLIENT_IP, GATEWAY, Gateway
from shared.context import Caller
from shared.contracts.base import parse_body, parse_object
from shared.errors import Forbidden, NotFound

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_api_routes(app: web.Application, routes: tuple[Route, ...] = ROUTES) -> None:
    for route in routes:
        app.router.add_route(route.method, route.full_path, route_handler(route))


def route_handler(route: Route) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        gw = request.app[GATEWAY]
        caller = await authorise(route, request, gw)
        if route.rate is not None:
            gw.limits.hit(route.rate, caller.user_id if caller else request[CLIENT_IP])
        params = await rpc_params(route, request)
        result = await gw.upstream.call(route.service, route.rpc, params, caller=caller)
        status = route.status
        if route.created_flag:
            status = route.status if result["created"] else 200
            result = result["resource"]
        if route.csv and isinstance(result, dict) and wants_csv(request.headers.get("Accept")):
            return csv_response(result.get("items") or [], route.csv_columns,
                                filename=route.rpc)
        return json_response({} if result is None else result, status=status)

    handle.__name__ = f"{route.service}_{route.rpc}"
    return handle


async def authorise(route: Route, request: web.Request, gw: Gateway) -> Caller | None:
    """The verified caller of a protected route (None for a public one)."""
    if route.roles is None:
        return None
    caller = await gw.verifier.verify(request.headers.get("Authorization"))
    request[CALLER] = caller
    gw.limits.hit(USER, caller.user_id)
    if caller.role not in route.roles:
        raise Forbidden()
    if (
        route.hospital_scoped
        and caller.role == "hospital_admin"
        and caller.hospital_id != request.match_info[HOSPITAL_PARAM]
    ):
        raise NotFound()
    return caller


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
    if route.params is not None:
        model = parse_object(route.params, params)
        params = model.model_dump(mode="json", by_alias=True,
                                  exclude_unset=route.partial_update)
    return params
