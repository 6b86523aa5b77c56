"""Encryption at rest of personal data, and keyed hashes to find it without decrypting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.auth.keys import PiiKeys

NONCE_BYTES = 12


class PiiCipher:
    """AES-256-GCM with a random nonce per value, as base64 text of nonce + ciphertext.

    The context (which field of which document) is authenticated too, so a ciphertext
    copied elsewhere does not decrypt. Text rather than BSON binary: nx-27017 cannot `$set`
    a binary value.
    """

    def __init__(self, keys: PiiKeys) -> None:
        self._aead = AESGCM(keys.encryption_key)
        self._hmac_key = keys.hmac_key

    def encrypt(self, context: str, value: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, value.encode(), context.encode())
        return base64.b64encode(sealed).decode()

    def decrypt(self, context: str, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        nonce, ciphertext = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, context.encode()).decode()

    def lookup_hash(self, value: str) -> str:
        """HMAC-SHA256 (hex): equal values hash equal, and nobody without the key can
        confirm a guess (ID numbers are far too few to resist a plain hash).

        Only normalised ASCII is hashed (`shared.idcard`): a full-width or other-script
        spelling of the same number would otherwise be another person."""
        if not value.isascii():
            raise ValueError("lookup hashes take normalised ASCII values only")
        return hmac.new(self._hmac_key, value.encode(), hashlib.sha256).hexdigest()
