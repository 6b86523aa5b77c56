"""Auth contracts: logins, token pairs, staff accounts, key distribution."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from shared.contracts.base import Contract, PlausibleDate, Reply

Role = Literal["patient", "hospital_admin", "desk", "platform_admin"]
# roles of a hospital's own staff accounts (shared.context.HOSPITAL_ROLES)
StaffRole = Literal["hospital_admin", "desk"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Username = Annotated[
    str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]


class WechatLogin(Contract):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class StaffLogin(Contract):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class StaffLoginParams(StaffLogin):
    """What auth receives: the gateway adds the client address (never from the body) that
    failed logins are counted against together with the username."""

    client_ip: Annotated[str, StringConstraints(max_length=64)] | None = None


class RefreshRequest(Contract):
    refresh_token: Annotated[str, StringConstraints(min_length=16, max_length=256)]


class LogoutRequest(Contract):
    refresh_token: Annotated[str, StringConstraints(min_length=16, max_length=256)] | None = None


class UserRef(Reply):
    id: str
    role: Role
    hospital_id: str | None = None


class TokenPair(Reply):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    user: UserRef
    # a reset password is a one-time password: change it (POST /auth/password) before
    # anything else (every other staff route answers 403 PASSWORD_CHANGE_REQUIRED)
    must_change_password: bool = False


ConsentKind = Literal["terms", "privacy", "patient_data"]
ConsentVersion = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")
]


class ConsentGiven(Contract):
    """`POST /me/consents`: the user agreed to `kind` (用户协议 `terms`, 隐私政策 `privacy`,
    or the separate consent to process patients' ID numbers and phones, `patient_data`)
    in the version shown to them."""

    kind: ConsentKind
    version: ConsentVersion


class Consent(Reply):
    kind: ConsentKind
    version: str
    at: str  # instant with offset


class Me(Reply):
    id: str
    role: Role
    hospital_id: str | None = None
    consents: list[Consent] = Field(default_factory=list)


class AccountDeleted(Reply):
    """`DELETE /me`: the account and its patient profiles are gone."""

    deleted: bool
    patients_deleted: int


class ActiveAppointmentCount(Reply):
    """Booking's answer to auth before an account is deleted: active appointments (today or
    later) and waiting 候补 entries (a promotion would book for a deleted account)."""

    active: int
    waiting: int = 0


class CreateStaff(Contract):
    username: Username
    password: Password
    role: StaffRole = "hospital_admin"


class CreateStaffParams(CreateStaff):
    hospital_id: Id


class StaffAccount(Reply):
    id: str
    username: str
    hospital_id: str
    role: StaffRole = "hospital_admin"
    disabled: bool = False
    must_change_password: bool = False


class StaffList(Reply):
    items: list[StaffAccount]


class StaffListParams(Contract):
    hospital_id: Id


class StaffRef(Contract):
    hospital_id: Id
    staff_id: Id


class StaffPatch(Contract):
    """`PATCH .../staff/{sid}`: disabling or changing the role ends the account's sessions."""

    disabled: bool | None = None
    role: StaffRole | None = None


class StaffPatchParams(StaffPatch):
    hospital_id: Id
    staff_id: Id


class PasswordReset(Contract):
    """`POST .../staff/{sid}/reset-password`: without `password` one is generated."""

    password: Password | None = None


class PasswordResetParams(PasswordReset):
    hospital_id: Id
    staff_id: Id


class PasswordResetResult(Reply):
    """The account after a reset; `temporary_password` only when the service generated it
    (shown once, never stored in clear)."""

    account: StaffAccount
    temporary_password: str | None = None


class PasswordChange(Contract):
    """`POST /auth/password`: one's own password; the reply is a fresh session."""

    old: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    new: Password

    @model_validator(mode="after")
    def _differs(self) -> PasswordChange:
        if self.old == self.new:
            raise ValueError("新密码不能与旧密码相同 / new password must differ")
        return self


class RevocationQuery(Contract):
    """Accounts whose sessions were revoked at or after `since` (epoch seconds)."""

    since: float = Field(ge=0)


class Revocation(Reply):
    user_id: str
    # access tokens with a lower `tv` claim are revoked
    token_version: int
    at: float


class RevocationList(Reply):
    items: list[Revocation]
    now: float


AUDIT_FIRST_DAY, AUDIT_LAST_DAY = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


class AuditFilter(Contract):
    """Query of `GET /admin/hospitals/{hid}/audit` (hospital-local dates, default today)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: PlausibleDate | None = Field(default=None, alias="from")
    to: PlausibleDate | None = None

    @model_validator(mode="after")
    def _range(self) -> AuditFilter:
        for day in (self.from_, self.to):
            if day is not None and not AUDIT_FIRST_DAY <= day <= AUDIT_LAST_DAY:
                raise ValueError("日期超出范围 / date out of range")
        if self.from_ and self.to:
            if self.to < self.from_:
                raise ValueError("结束日期早于开始日期 / to is before from")
            if (self.to - self.from_).days > 62:
                raise ValueError("日期范围最多62天 / at most 62 days")
        return self


class AuditQuery(AuditFilter):
    hospital_id: Id


class AuditEntry(Reply):
    at: str
    staff_id: str
    role: str | None = None
    action: str
    target: str
    details: dict[str, Any] = Field(default_factory=dict)


class AuditLog(Reply):
    items: list[AuditEntry]


class SigningKey(Reply):
    kid: str
    alg: str
    public_key_pem: str


class SigningKeys(Reply):
    """What the gateway needs to verify access tokens (public keys only)."""

    issuer: str
    audience: str
    keys: list[SigningKey] = Field(default_factory=list)


class Empty(Contract):
    """A body-less request."""
