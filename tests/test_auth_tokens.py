"""Access tokens verify only with auth's published key; refresh tokens rotate and die."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pymongo.asynchronous.database import AsyncDatabase

from services.auth.keys import load_pii_keys, load_signing_key
from services.auth.tokens import hash_refresh_token
from shared.context import Caller
from shared.contracts.auth import CreateStaffParams
from shared.errors import Unauthenticated
from shared.settings import Settings
from shared.storage.mongo import Document
from tests.auth_kit import PLATFORM_ADMIN, AuthKit, FakeClock, StubWechat, build_auth


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document], clock: FakeClock) -> AuthKit:
    wechat = StubWechat({f"code{i}": f"openid-{i}" for i in range(5)})
    return await build_auth(mongo_db, clock, wechat)


def decode(kit: AuthKit, token: str) -> dict[str, object]:
    published = kit.service.signing_keys().keys[0]
    key = load_pem_public_key(published.public_key_pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    return jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],
        audience="guahao",
        issuer="guahao-auth",
    )


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_access_token_verifies_with_the_published_public_key(kit: AuthKit) -> None:
    pair = await kit.service.wechat_login("code0")
    claims = decode(kit, pair.access_token)
    assert claims["sub"] == pair.user.id and claims["role"] == "patient"
    assert claims["exp"] - claims["iat"] == pair.expires_in == 900  # type: ignore[operator]
    assert claims["jti"] and "hid" not in claims
    published = kit.service.signing_keys()
    assert jwt.get_unverified_header(pair.access_token)["kid"] == published.keys[0].kid
    assert published.keys[0].alg == "EdDSA" and "PRIVATE" not in published.keys[0].public_key_pem


async def test_hospital_admin_token_carries_its_hospital(kit: AuthKit) -> None:
    params = CreateStaffParams(username="h1admin", password="pw-123456", hospital_id="h_1")
    await kit.staff.create_staff(PLATFORM_ADMIN, params)
    pair = await kit.service.staff_login("h1admin", "pw-123456")
    claims = decode(kit, pair.access_token)
    assert claims["role"] == "hospital_admin" and claims["hid"] == "h_1"


async def test_unsigned_token_is_refused(kit: AuthKit) -> None:
    pair = await kit.service.wechat_login("code0")
    _, payload, _ = pair.access_token.split(".")
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    with pytest.raises(jwt.InvalidTokenError):
        decode(kit, forged)


async def test_token_signed_by_another_key_is_refused(kit: AuthKit) -> None:
    pair = await kit.service.wechat_login("code0")
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    forged = jwt.encode(
        claims,
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": kit.signing_key.kid},
    )
    with pytest.raises(jwt.InvalidSignatureError):
        decode(kit, forged)


async def test_token_with_hmac_over_the_public_key_is_refused(kit: AuthKit) -> None:
    pair = await kit.service.wechat_login("code0")
    _, payload, _ = pair.access_token.split(".")
    header = b64({"alg": "HS256", "typ": "JWT", "kid": kit.signing_key.kid})
    signature = hmac.new(
        kit.signing_key.public_key_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256
    ).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    with pytest.raises(jwt.InvalidTokenError):
        decode(kit, forged)


async def test_refresh_rotates_and_the_presented_token_dies(kit: AuthKit) -> None:
    first = await kit.service.wechat_login("code0")
    second = await kit.service.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.user.id == first.user.id
    third = await kit.service.refresh(second.refresh_token)
    assert third.user.id == first.user.id


async def test_reusing_a_used_refresh_token_revokes_the_whole_family(kit: AuthKit) -> None:
    first = await kit.service.wechat_login("code0")
    other_session = await kit.service.wechat_login("code0")
    second = await kit.service.refresh(first.refresh_token)
    with pytest.raises(Unauthenticated):
        await kit.service.refresh(first.refresh_token)
    with pytest.raises(Unauthenticated):
        await kit.service.refresh(second.refresh_token)
    # another login of the same user is another family and survives
    assert (await kit.service.refresh(other_session.refresh_token)).user.id == first.user.id


async def test_one_token_refreshed_concurrently_leaves_no_live_session(kit: AuthKit) -> None:
    first = await kit.service.wechat_login("code0")
    results = await asyncio.gather(
        *(kit.service.refresh(first.refresh_token) for _ in range(5)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) <= 1
    assert all(isinstance(r, Unauthenticated) for r in results if r not in winners)
    for winner in winners:
        with pytest.raises(Unauthenticated):
            await kit.service.refresh(winner.refresh_token)


async def test_expired_refresh_token_is_refused(kit: AuthKit, clock: FakeClock) -> None:
    pair = await kit.service.wechat_login("code0")
    clock.advance(days=30, seconds=1)
    with pytest.raises(Unauthenticated):
        await kit.service.refresh(pair.refresh_token)


async def test_unknown_refresh_token_is_refused(kit: AuthKit) -> None:
    with pytest.raises(Unauthenticated):
        await kit.service.refresh("x" * 43)


async def test_refresh_tokens_are_stored_only_as_hashes(
    kit: AuthKit, mongo_db: AsyncDatabase[Document]
) -> None:
    pair = await kit.service.wechat_login("code0")
    docs = await mongo_db["refresh_tokens"].find().to_list()
    assert [d["_id"] for d in docs] == [hash_refresh_token(pair.refresh_token)]
    assert pair.refresh_token not in repr(docs)


async def test_logout_revokes_the_presented_family_only(kit: AuthKit) -> None:
    a = await kit.service.wechat_login("code0")
    b = await kit.service.wechat_login("code0")
    caller = Caller(user_id=a.user.id, role="patient")
    await kit.service.logout(caller, a.refresh_token)
    with pytest.raises(Unauthenticated):
        await kit.service.refresh(a.refresh_token)
    await kit.service.refresh(b.refresh_token)


async def test_logout_cannot_revoke_another_users_session(kit: AuthKit) -> None:
    victim = await kit.service.wechat_login("code0")
    attacker = await kit.service.wechat_login("code1")
    await kit.service.logout(Caller(user_id=attacker.user.id, role="patient"), victim.refresh_token)
    await kit.service.refresh(victim.refresh_token)


async def test_logout_without_a_token_ends_every_session_of_the_caller(kit: AuthKit) -> None:
    a = await kit.service.wechat_login("code0")
    b = await kit.service.wechat_login("code0")
    await kit.service.logout(Caller(user_id=a.user.id, role="patient"), None)
    for pair in (a, b):
        with pytest.raises(Unauthenticated):
            await kit.service.refresh(pair.refresh_token)


async def test_logout_needs_a_caller(kit: AuthKit) -> None:
    with pytest.raises(Unauthenticated):
        await kit.service.logout(None, None)


def test_concurrent_starters_generate_one_shared_signing_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        kids = set(pool.map(lambda _: load_signing_key(settings).kid, range(8)))
    assert len(kids) == 1
    key_file = tmp_path / "keys" / "jwt_ed25519.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["jwt_ed25519.pem"]  # no temp left
    assert load_signing_key(settings).kid == kids.pop()


def test_configured_keys_take_precedence_over_generated_ones(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pii = os.urandom(64)
    settings = Settings(
        data_dir=tmp_path, jwt_private_key=pem, pii_key=base64.b64encode(pii).decode()
    )
    assert load_signing_key(settings).private_key.private_bytes_raw() == private.private_bytes_raw()
    keys = load_pii_keys(settings)
    assert keys.encryption_key + keys.hmac_key == pii
    assert not (tmp_path / "keys").exists()


def test_generated_pii_key_is_stable_across_restarts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert load_pii_keys(settings) == load_pii_keys(settings)
    assert stat.S_IMODE((tmp_path / "keys" / "pii.key").stat().st_mode) == 0o600
