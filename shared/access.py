"""Who may call what: checks services run on the caller identity the gateway verified.

The gateway checks roles too; services check again so an internal caller cannot bypass it.
Another hospital's resources are reported as NotFound (api.md), never as Forbidden.

Every check also records the caller as the actor of the call (`shared.context.actor_var`),
so events created while serving it name who caused them (the audit log is built from them).
"""

from __future__ import annotations

from collections.abc import Collection

from shared.context import HOSPITAL_ROLES, CallContext, Caller, actor_var
from shared.errors import Forbidden, NotFound, Unauthenticated

HOSPITAL_ADMIN_ONLY = frozenset({"hospital_admin"})


def act_as(caller: Caller | None) -> None:
    """Name `caller` as the actor of what the current call does (events it creates)."""
    actor_var.set(caller)


def require_caller(ctx: CallContext) -> Caller:
    """Any authenticated caller."""
    if ctx.caller is None:
        raise Unauthenticated()
    act_as(ctx.caller)
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


def check_hospital_role(
    caller: Caller | None, hospital_id: str, roles: Collection[str] = HOSPITAL_ADMIN_ONLY
) -> Caller:
    """A platform admin, or staff of `hospital_id` whose role is in `roles`.

    Staff of another hospital get NotFound (whatever their role); a role of this hospital
    not in `roles` (e.g. `desk` on an admin-only operation) gets Forbidden.
    """
    if caller is None:
        raise Unauthenticated()
    act_as(caller)
    if caller.is_platform_admin:
        return caller
    if caller.role not in HOSPITAL_ROLES:
        raise Forbidden()
    if caller.hospital_id != hospital_id:
        raise NotFound()
    if caller.role not in roles:
        raise Forbidden()
    return caller


def require_hospital_admin(ctx: CallContext, hospital_id: str) -> Caller:
    """The hospital's admin (or a platform admin): rules, doctors, schedules, webhooks,
    staff, audit, stop-clinic, capacity."""
    return check_hospital_role(ctx.caller, hospital_id, HOSPITAL_ADMIN_ONLY)


def require_hospital_desk(ctx: CallContext, hospital_id: str) -> Caller:
    """Front-desk work of the hospital (appointments, check-in, no-show, move, queue):
    its `desk` staff and admins, or a platform admin."""
    return check_hospital_role(ctx.caller, hospital_id, HOSPITAL_ROLES)


def require_hospital(ctx: CallContext, hospital_id: str) -> Caller:
    """Staff of that hospital, `desk` included, or a platform admin.

    Kept for booking's handlers, which call it for appointment operations (where desk is
    allowed) and also for stop-clinic and capacity (admin-only: the gateway refuses desk
    there). New code calls `require_hospital_admin` or `require_hospital_desk`.
    """
    return require_hospital_desk(ctx, hospital_id)


def require_internal_or_caller(ctx: CallContext) -> None:
    """An end user's call, or a service's own call; not an anonymous call the gateway made
    (a public route), which must never be taken for a trusted internal one. Servers that
    verify no signature (unit tests) leave `ctx.service` unset and are let through."""
    if ctx.caller is None and ctx.service == "gateway":
        raise Forbidden()
