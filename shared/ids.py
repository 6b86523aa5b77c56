"""Opaque identifiers."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """`<prefix>_<24 hex>`: an opaque id that says nothing about what it names."""
    return f"{prefix}_{secrets.token_hex(12)}"
