"""Key material of the auth service: the JWT signing key and the PII keys.

Each comes from settings when set (production: mounted secrets), else it is generated once
into `<data_dir>/keys/` so that every replica sharing the data dir uses the same key.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.jwt_keys import DEV_KEY_FILE, dev_private_pem, key_id, load_private_key, public_pem
from shared.keyfile import create_secret_file
from shared.settings import Settings

log = logging.getLogger("guahao.auth.keys")

PII_KEY_BYTES = 64


@dataclass(frozen=True)
class SigningKeyMaterial:
    """The Ed25519 key that signs access tokens, with its key id and public half."""

    private_key: Ed25519PrivateKey
    kid: str
    public_key_pem: str

    @classmethod
    def from_private_key(cls, key: Ed25519PrivateKey) -> SigningKeyMaterial:
        public = key.public_key()
        return cls(key, key_id(public), public_pem(public))

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKeyMaterial:
        return cls.from_private_key(load_private_key(pem))


@dataclass(frozen=True)
class PiiKeys:
    """AES-256-GCM key for PII at rest and HMAC-SHA256 key for its lookup hashes."""

    encryption_key: bytes
    hmac_key: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> PiiKeys:
        if len(raw) != PII_KEY_BYTES:
            raise ValueError(f"the PII key must be {PII_KEY_BYTES} bytes (base64-encoded)")
        return cls(raw[:32], raw[32:])


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


def load_signing_key(settings: Settings) -> SigningKeyMaterial:
    """The JWT signing key from `GUAHAO_JWT_PRIVATE_KEY`, else the generated dev key."""
    if settings.jwt_private_key:
        return SigningKeyMaterial.from_pem(settings.jwt_private_key.encode())
    pem, created = dev_private_pem(settings.data_dir)
    if created:
        log.warning(
            "generated a JWT signing key", extra={"path": str(keys_dir(settings) / DEV_KEY_FILE)}
        )
    return SigningKeyMaterial.from_pem(pem)


def load_pii_keys(settings: Settings) -> PiiKeys:
    """The PII keys from `GUAHAO_PII_KEY` (base64 of 64 bytes), else the generated dev key."""
    if settings.pii_key:
        return PiiKeys.from_bytes(base64.b64decode(settings.pii_key, validate=True))
    path = keys_dir(settings) / "pii.key"
    encoded, created = create_secret_file(
        path, lambda: base64.b64encode(secrets.token_bytes(PII_KEY_BYTES))
    )
    if created:
        log.warning("generated a PII encryption key", extra={"path": str(path)})
    return PiiKeys.from_bytes(base64.b64decode(encoded.strip(), validate=True))


def dev_admin_password(settings: Settings) -> str:
    """The bootstrap admin password generated once into `<data_dir>/keys/admin_password`."""
    path = keys_dir(settings) / "admin_password"
    raw, created = create_secret_file(path, lambda: secrets.token_urlsafe(18).encode())
    if created:
        log.warning("generated the platform admin password", extra={"path": str(path)})
    return raw.decode().strip()
