"""Access-token verification and authorisation at the gateway."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.auth import AUDIENCE, ISSUER, SigningKeyCache, TokenVerifier
from gateway.routes import ROUTES
from gateway.testing import (
    Client,
    FakeRpc,
    TokenSigner,
    authenticated,
    bearer,
    fake_auth,
    signing_keys,
)
from shared.errors import ServiceUnavailable, TokenExpired, Unauthenticated
from shared.settings import Settings

ME = {"id": "u_1", "role": "patient"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(signature)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u_1",
        "role": "patient",
        "iat": now,
        "exp": now + 300,
        **overrides,
    }


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture
def rpc(signer: TokenSigner) -> FakeRpc:
    fake = fake_auth(signer)
    fake.on(
        "auth",
        "me",
        lambda p, caller: {
            "id": authenticated(caller).user_id,
            "role": authenticated(caller).role,
            "hospital_id": authenticated(caller).hospital_id,
        },
    )
    fake.on("booking", "hospital_appointments", {"items": []})
    return fake


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, rpc: FakeRpc) -> Client:
    return await aiohttp_client(create_app(Settings(), rpc=rpc, routes=ROUTES))


async def status_and_code(
    client: Client, headers: dict[str, str], path: str = "/api/v1/me"
) -> tuple[int, str | None]:
    r = await client.get(path, headers=headers)
    body = await r.json()
    return r.status, body.get("error", {}).get("code")


async def test_valid_token_reaches_the_service_as_caller(
    client: Client, signer: TokenSigner
) -> None:
    r = await client.get("/api/v1/me", headers=bearer(signer.token("u_7", "hospital_admin", "h_1")))
    assert r.status == 200
    assert await r.json() == {"id": "u_7", "role": "hospital_admin", "hospital_id": "h_1"}


async def test_expired_token_is_token_expired(client: Client, signer: TokenSigner) -> None:
    assert await status_and_code(client, bearer(signer.token(ttl=-5))) == (401, "TOKEN_EXPIRED")


async def test_tampered_claims_are_refused(client: Client, signer: TokenSigner) -> None:
    header, _, signature = signer.token().split(".")
    payload = b64(json.dumps(claims(role="platform_admin")).encode())
    tampered = f"{header}.{payload}.{signature}"
    assert await status_and_code(client, bearer(tampered)) == (401, "UNAUTHENTICATED")


async def test_tampered_signature_is_refused(client: Client, signer: TokenSigner) -> None:
    header, payload, signature = signer.token().split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0xFF
    tampered = f"{header}.{payload}.{b64(bytes(raw))}"
    assert await status_and_code(client, bearer(tampered)) == (401, "UNAUTHENTICATED")


async def test_alg_none_is_refused(client: Client, signer: TokenSigner) -> None:
    token = forge({"alg": "none", "typ": "JWT", "kid": signer.kid}, claims())
    assert await status_and_code(client, bearer(token)) == (401, "UNAUTHENTICATED")


async def test_hmac_signed_with_the_public_key_is_refused(
    client: Client, signer: TokenSigner
) -> None:
    header = {"alg": "HS256", "typ": "JWT", "kid": signer.kid}
    unsigned = forge(header, claims()).rsplit(".", 1)[0]
    mac = hmac.new(signer.public_key_pem.encode(), unsigned.encode(), hashlib.sha256).digest()
    assert await status_and_code(client, bearer(f"{unsigned}.{b64(mac)}")) == (
        401,
        "UNAUTHENTICATED",
    )


async def test_token_signed_by_another_key_with_the_same_kid_is_refused(
    client: Client, signer: TokenSigner
) -> None:
    impostor = TokenSigner(kid=signer.kid)
    assert await status_and_code(client, bearer(impostor.token())) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"role": "root"},
        {"sub": 42},
        {"role": "hospital_admin"},
    ],  # a hospital admin without its hospital
    ids=["audience", "issuer", "role", "sub", "hospital-admin-without-hid"],
)
async def test_wrong_claims_are_refused(
    client: Client, signer: TokenSigner, overrides: dict[str, Any]
) -> None:
    assert await status_and_code(client, bearer(signer.token(**overrides))) == (
        401,
        "UNAUTHENTICATED",
    )


async def test_token_without_exp_is_refused(client: Client, signer: TokenSigner) -> None:
    token = jwt.encode(
        {k: v for k, v in claims().items() if k != "exp"},
        signer.private_key,
        algorithm="EdDSA",
        headers={"kid": signer.kid},
    )
    assert await status_and_code(client, bearer(token)) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dTpw"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Bearer a b"},
    ],
    ids=["missing", "basic", "empty-bearer", "garbage", "two-tokens"],
)
async def test_missing_or_malformed_authorization_is_refused(
    client: Client, headers: dict[str, str]
) -> None:
    assert await status_and_code(client, headers) == (401, "UNAUTHENTICATED")


async def test_unknown_kid_is_refused_and_refetch_is_throttled(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    assert (await client.get("/api/v1/me", headers=bearer(signer.token()))).status == 200
    stranger = TokenSigner(kid="not-published")
    for _ in range(5):
        assert await status_and_code(client, bearer(stranger.token())) == (401, "UNAUTHENTICATED")
    assert len(rpc.calls_to("signing_keys")) == 1


async def test_no_signing_keys_because_auth_is_down_is_503(
    aiohttp_client: AiohttpClient, signer: TokenSigner
) -> None:
    client = await aiohttp_client(create_app(Settings(), rpc=FakeRpc()))
    assert await status_and_code(client, bearer(signer.token())) == (503, "SERVICE_UNAVAILABLE")


async def test_wrong_role_is_forbidden(client: Client, signer: TokenSigner) -> None:
    r = await client.post(
        "/api/v1/patients", json={}, headers=bearer(signer.token("s_1", "hospital_admin", "h_1"))
    )
    assert (r.status, (await r.json())["error"]["code"]) == (403, "FORBIDDEN")


async def test_desk_cannot_create_staff(client: Client, rpc: FakeRpc, signer: TokenSigner) -> None:
    r = await client.post(
        "/api/v1/admin/hospitals/h_1/staff",
        json={"username": "bob", "password": "long enough"},
        headers=bearer(signer.token("s_1", "desk", "h_1")),
    )
    assert r.status == 403
    assert rpc.calls_to("create_staff") == []


async def test_hospital_admin_of_another_hospital_gets_not_found(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    token = bearer(signer.token("s_1", "hospital_admin", "h_1"))
    path = "/api/v1/admin/hospitals/h_2/appointments"
    assert await status_and_code(client, token, path) == (404, "NOT_FOUND")
    assert rpc.calls_to("hospital_appointments") == []


async def test_hospital_admin_of_its_own_hospital_passes(
    client: Client, rpc: FakeRpc, signer: TokenSigner
) -> None:
    token = bearer(signer.token("s_1", "hospital_admin", "h_1"))
    r = await client.get("/api/v1/admin/hospitals/h_1/appointments", headers=token)
    assert r.status == 200
    assert rpc.calls_to("hospital_appointments")[0].params["hospital_id"] == "h_1"


async def test_platform_admin_may_act_on_any_hospital(client: Client, signer: TokenSigner) -> None:
    token = bearer(signer.token("root", "platform_admin"))
    r = await client.get("/api/v1/admin/hospitals/h_2/appointments", headers=token)
    assert r.status == 200


async def test_patient_on_admin_route_is_forbidden(client: Client, signer: TokenSigner) -> None:
    path = "/api/v1/admin/hospitals/h_1/appointments"
    assert await status_and_code(client, bearer(signer.token()), path) == (403, "FORBIDDEN")


# --- the key cache on its own -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rotated_key_is_picked_up_after_the_refetch_interval() -> None:
    old, new = TokenSigner("k-old"), TokenSigner("k-new")
    rpc, clock = fake_auth(old), Clock()
    verifier = TokenVerifier(SigningKeyCache(rpc, clock=clock))
    assert (await verifier.verify(f"Bearer {old.token('u1')}")).user_id == "u1"

    rpc.on("auth", "signing_keys", signing_keys(old, new))
    with pytest.raises(Unauthenticated):
        await verifier.verify(f"Bearer {new.token('u2')}")  # within 10 s of the last fetch
    clock.now += 10
    assert (await verifier.verify(f"Bearer {new.token('u2')}")).user_id == "u2"
    assert len(rpc.calls_to("signing_keys")) == 2


async def test_cached_keys_keep_working_while_auth_is_down() -> None:
    signer, clock = TokenSigner(), Clock()
    rpc = fake_auth(signer)
    verifier = TokenVerifier(SigningKeyCache(rpc, clock=clock))
    await verifier.verify(f"Bearer {signer.token()}")
    rpc.on("auth", "signing_keys", ServiceUnavailable(service="auth"))
    clock.now += 60
    assert (await verifier.verify(f"Bearer {signer.token('u3')}")).user_id == "u3"
    with pytest.raises(Unauthenticated):
        await verifier.verify(f"Bearer {TokenSigner('other').token()}")


async def test_auth_coming_back_is_noticed_quickly_when_no_key_is_cached() -> None:
    signer, clock = TokenSigner(), Clock()
    rpc = FakeRpc()
    verifier = TokenVerifier(SigningKeyCache(rpc, clock=clock))
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(f"Bearer {signer.token()}")
    rpc.on("auth", "signing_keys", signing_keys(signer))
    clock.now += 1
    assert (await verifier.verify(f"Bearer {signer.token('u4')}")).user_id == "u4"


async def test_expired_is_reported_only_for_a_genuine_signature() -> None:
    signer = TokenSigner()
    verifier = TokenVerifier(SigningKeyCache(fake_auth(signer)))
    with pytest.raises(TokenExpired):
        await verifier.verify(f"Bearer {signer.token(ttl=-1)}")
    with pytest.raises(Unauthenticated):
        await verifier.verify(f"Bearer {TokenSigner(signer.kid).token(ttl=-1)}")
