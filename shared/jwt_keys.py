"""Ed25519 keys of access tokens as configuration: the public keys the gateway trusts
(`GUAHAO_JWT_PUBLIC_KEYS`) and the dev signing key generated into the data dir.

A key id (`kid`) is the first 16 hex digits of the SHA-256 of the public key's DER
SubjectPublicKeyInfo, so a PEM needs no separate id. `GUAHAO_JWT_PUBLIC_KEYS` takes one or
more PEM public keys (concatenated), a JWKS (`{"keys": [{"kty": "OKP", "crv": "Ed25519",
"x": …, "kid": …}]}`), or the path of a file holding either. Several keys = rotation: the
gateway accepts a token signed by any of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.keyfile import create_secret_file

DEV_KEY_FILE = "jwt_ed25519.pem"
_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def key_id(public: Ed25519PublicKey) -> str:
    """The kid of a public key (what auth puts in the token header)."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def new_private_pem() -> bytes:
    """A fresh Ed25519 private key, PKCS#8 PEM."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the JWT private key must be an Ed25519 key")
    return key


def dev_private_pem(data_dir: Path) -> tuple[bytes, bool]:
    """The dev signing key `<data_dir>/keys/jwt_ed25519.pem`, generated when absent;
    returns the PEM and whether this call created it."""
    return create_secret_file(data_dir / "keys" / DEV_KEY_FILE, new_private_pem)


def public_keys_of_private(pem: str | bytes) -> str:
    """The `GUAHAO_JWT_PUBLIC_KEYS` value that trusts this private key."""
    raw = pem.encode() if isinstance(pem, str) else pem
    return public_pem(load_private_key(raw).public_key())


def parse_public_keys(value: str) -> dict[str, Ed25519PublicKey]:
    """`GUAHAO_JWT_PUBLIC_KEYS` → public keys by kid; raises ValueError when it holds none
    or anything unreadable (the gateway refuses to start rather than trust nothing)."""
    text = value.strip()
    if text and not text.startswith(("-----", "{")):
        text = Path(text).read_text(encoding="utf-8").strip()
    keys: dict[str, Ed25519PublicKey] = {}
    if text.startswith("{"):
        for entry in json.loads(text).get("keys", []):
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
                raise ValueError(f"GUAHAO_JWT_PUBLIC_KEYS: not an Ed25519 JWK: {entry}")
            try:
                raw = base64.urlsafe_b64decode(entry["x"] + "=" * (-len(entry["x"]) % 4))
            except (binascii.Error, KeyError):
                raise ValueError("GUAHAO_JWT_PUBLIC_KEYS: a JWK without a valid x") from None
            public = Ed25519PublicKey.from_public_bytes(raw)
            keys[str(entry.get("kid") or key_id(public))] = public
    else:
        for block in _PEM_BLOCK.findall(text):
            loaded = serialization.load_pem_public_key(block.encode())
            if not isinstance(loaded, Ed25519PublicKey):
                raise ValueError("GUAHAO_JWT_PUBLIC_KEYS: only Ed25519 public keys")
            keys[key_id(loaded)] = loaded
    if not keys:
        raise ValueError("GUAHAO_JWT_PUBLIC_KEYS holds no public key")
    return keys
