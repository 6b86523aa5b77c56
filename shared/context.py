"""Per-call context carried across processes: request id and caller identity."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

# Roles of staff accounts: `desk` works the front desk of one hospital (appointments,
# check-in, queue), `hospital_admin` runs one hospital, `platform_admin` runs the platform.
HOSPITAL_ROLES = frozenset({"hospital_admin", "desk"})
STAFF_ROLES = HOSPITAL_ROLES | {"platform_admin"}
# internal operations (service to service, never routed by the gateway): a service's signed
# call carries no caller; of the users only a platform admin may make them
INTERNAL_ROLES = frozenset({"platform_admin"})


class Caller(BaseModel):
    """Who is calling: the verified claims of the access token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    role: str
    hospital_id: str | None = None

    @property
    def is_platform_admin(self) -> bool:
        return self.role == "platform_admin"

    @property
    def is_staff(self) -> bool:
        """Hospital or platform staff (not a patient): their actions are audited."""
        return self.role in STAFF_ROLES


@dataclass(frozen=True)
class CallContext:
    """What a handler knows about the call beyond its body."""

    request_id: str
    caller: Caller | None = None
    deadline: float | None = None  # epoch seconds
    service: str | None = None  # the process kind that signed the request (gateway, booking…)


request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# the deadline of the RPC being served (epoch seconds): calls it makes may not outlive it
deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "deadline", default=None
)


# the caller whose request is being served, once an access check has named it: events
# created while serving it carry it as their `actor` (the audit log reads it from there)
actor_var: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("actor", default=None)


def new_request_id() -> str:
    """A fresh request id (used when the client sent none)."""
    return uuid.uuid4().hex
