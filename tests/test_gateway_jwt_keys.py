"""The gateway trusts the JWT public keys of its configuration (`GUAHAO_JWT_PUBLIC_KEYS`),
never keys published by whoever answers `auth.signing_keys` on the broker."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.routes import ROUTES
from gateway.testing import FakeRpc, TokenSigner, authenticated, bearer, fake_auth
from shared.jwt_keys import (
    dev_private_pem,
    key_id,
    parse_public_keys,
    public_keys_of_private,
    public_pem,
)
from shared.settings import Settings


def pem_signer() -> TokenSigner:
    """A signer whose kid is derived from its key, as auth's is."""
    signer = TokenSigner()
    signer.kid = key_id(signer.private_key.public_key())
    return signer


def jwk(signer: TokenSigner, kid: str | None = None) -> dict[str, str]:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = signer.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    entry = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
    }
    if kid is not None:
        entry["kid"] = kid
    return entry


def answering_me(rpc: FakeRpc) -> FakeRpc:
    rpc.on(
        "auth",
        "me",
        lambda p, caller: {"id": authenticated(caller).user_id, "role": authenticated(caller).role},
    )
    return rpc


async def test_a_key_published_over_rpc_is_not_trusted_when_keys_are_configured(
    aiohttp_client: AiohttpClient,
) -> None:
    configured, impostor = pem_signer(), pem_signer()
    impostor.kid = configured.kid  # an RPC answer claiming the very kid the gateway expects
    rpc = answering_me(fake_auth(impostor))
    settings = Settings(jwt_public_keys=public_pem(configured.private_key.public_key()))
    client = await aiohttp_client(create_app(settings, rpc=rpc, routes=ROUTES))
    forged = await client.get("/api/v1/me", headers=bearer(impostor.token("u_evil")))
    assert forged.status == 401
    genuine = await client.get("/api/v1/me", headers=bearer(configured.token("u_1")))
    assert genuine.status == 200, await genuine.text()
    assert rpc.calls_to("signing_keys") == []


async def test_rotation_several_configured_keys_are_each_accepted(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
) -> None:
    old, new, retired = pem_signer(), pem_signer(), pem_signer()
    path = tmp_path / "jwt_public_keys.pem"
    path.write_text(
        public_pem(new.private_key.public_key()) + public_pem(old.private_key.public_key())
    )
    rpc = answering_me(FakeRpc())
    client = await aiohttp_client(
        create_app(Settings(jwt_public_keys=str(path)), rpc=rpc, routes=ROUTES)
    )
    for signer, status in ((old, 200), (new, 200), (retired, 401)):
        r = await client.get("/api/v1/me", headers=bearer(signer.token()))
        assert r.status == status, (signer.kid, await r.text())


def test_jwks_keys_keep_their_kid_or_get_the_derived_one() -> None:
    a, b = pem_signer(), pem_signer()
    keys = parse_public_keys(json.dumps({"keys": [jwk(a, kid="2026-12"), jwk(b)]}))
    assert sorted(keys) == sorted(["2026-12", b.kid])


@pytest.mark.parametrize(
    "value",
    [
        "",
        '{"keys": []}',
        '{"keys": [{"kty": "RSA", "n": "x"}]}',
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ],
)
def test_unusable_key_configuration_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_public_keys(value)


def test_the_gateway_refuses_to_start_without_configured_keys() -> None:
    with pytest.raises(ValueError, match="GUAHAO_JWT_PUBLIC_KEYS"):
        create_app(Settings())


def test_dev_keys_derive_from_the_generated_signing_key(tmp_path: Path) -> None:
    from services.auth.keys import load_signing_key

    pem, created = dev_private_pem(tmp_path)
    assert created
    material = load_signing_key(Settings(data_dir=tmp_path))  # auth reads the same file
    assert list(parse_public_keys(public_keys_of_private(pem))) == [material.kid]
