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


class Me(Reply):
    id: str
    role: Role
    hospital_id: str | None = None


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
