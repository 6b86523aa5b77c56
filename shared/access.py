"""Who may call what: checks services run on the caller identity the gateway verified.

The gateway checks roles too; services check again so an internal caller cannot bypass it.
Another hospital's resources are reported as NotFound (api.md), never as Forbidden.
"""

from __future__ import annotations

from shared.context import CallContext, Caller
from shared.errors import Forbidden, NotFound, Unauthenticated


def require_caller(ctx: CallContext) -> Caller:
    """Any authenticated caller."""
    if ctx.caller is None:
        raise Unauthenticated()
    return ctx.caller


def require_patient(ctx: CallContext) -> str:
    """A patient; returns the user id."""
    caller = require_caller(ctx)
    if caller.role != "patient":
        raise Forbidden()
    return caller.user_id


def require_platform_admin(ctx: CallContext) -> Caller:
    caller = require_caller(ctx)
    if caller.role != "platform_admin":
        raise Forbidden()
    return caller


def require_hospital(ctx: CallContext, hospital_id: str) -> Caller:
    """Staff of that hospital, or a platform admin; another hospital's staff see NotFound."""
    caller = require_caller(ctx)
    if caller.role == "platform_admin":
        return caller
    if caller.role != "hospital_admin":
        raise Forbidden()
    if caller.hospital_id != hospital_id:
        raise NotFound()
    return caller


def require_internal_or_caller(ctx: CallContext) -> None:
    """An end user's call, or a service's own call; not an anonymous call the gateway made
    (a public route), which must never be taken for a trusted internal one. Servers that
    verify no signature (unit tests) leave `ctx.service` unset and are let through."""
    if ctx.caller is None and ctx.service == "gateway":
        raise Forbidden()
