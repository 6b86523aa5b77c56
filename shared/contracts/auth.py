"""Auth contracts: logins, token pairs, staff accounts, key distribution."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.contracts.base import Contract, Reply

Role = Literal["patient", "hospital_admin", "platform_admin"]
Username = Annotated[
    str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]


class WechatLogin(Contract):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class StaffLogin(Contract):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


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


class CreateStaffParams(CreateStaff):
    hospital_id: str


class StaffAccount(Reply):
    id: str
    username: str
    hospital_id: str


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
