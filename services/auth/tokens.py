"""Access tokens (EdDSA-signed JWTs) and opaque refresh tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Callable

import jwt

from services.auth.keys import SigningKeyMaterial
from shared.context import HOSPITAL_ROLES
from shared.contracts.auth import SigningKey, SigningKeys

ISSUER = "guahao-auth"
AUDIENCE = "guahao"
ALGORITHM = "EdDSA"
ACCESS_TTL = dt.timedelta(minutes=15)
REFRESH_TTL = dt.timedelta(days=30)

Clock = Callable[[], dt.datetime]


def hash_refresh_token(token: str) -> str:
    """What is stored of a refresh token: a leaked table grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenIssuer:
    """Signs access tokens with the service's private key and mints refresh tokens."""

    def __init__(self, key: SigningKeyMaterial, clock: Clock) -> None:
        self.key = key
        self.clock = clock

    def access_token(
        self,
        user_id: str,
        role: str,
        hospital_id: str | None = None,
        *,
        token_version: int | None = None,
        must_change_password: bool = False,
    ) -> str:
        """`tv` (staff): the account's token version when issued; a revocation raises it and
        the gateway refuses lower ones. `pwc`: only a password change is allowed."""
        now = self.clock()
        claims: dict[str, object] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + ACCESS_TTL).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if hospital_id is not None and role in HOSPITAL_ROLES:
            claims["hid"] = hospital_id
        if token_version is not None:
            claims["tv"] = token_version
        if must_change_password:
            claims["pwc"] = True
        return jwt.encode(
            claims, self.key.private_key, algorithm=ALGORITHM, headers={"kid": self.key.kid}
        )

    @property
    def access_ttl_seconds(self) -> int:
        return int(ACCESS_TTL.total_seconds())

    def new_refresh_token(self, family: str | None = None) -> tuple[str, str, dt.datetime]:
        """A fresh refresh token: (token for the client, hash to store, expiry).

        With a family the token reads `<family>.<secret>`: the gateway rate-limits refreshes
        per family (one app install) without a lookup. The family id is no secret; the 256
        random bits after the dot are what a thief would need."""
        secret = secrets.token_urlsafe(32)
        token = f"{family}.{secret}" if family else secret
        return token, hash_refresh_token(token), self.clock() + REFRESH_TTL

    def signing_keys(self) -> SigningKeys:
        """The public half, for the gateway to verify tokens with."""
        key = SigningKey(kid=self.key.kid, alg=ALGORITHM, public_key_pem=self.key.public_key_pem)
        return SigningKeys(issuer=ISSUER, audience=AUDIENCE, keys=[key])
