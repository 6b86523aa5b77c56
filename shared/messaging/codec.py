"""JSON encoding of message bodies (never pickle)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


def encode(value: Any) -> bytes:
    """Serialise a contract model or plain JSON data to UTF-8 JSON bytes."""
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=False).encode()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def decode(body: bytes) -> Any:
    """Parse a JSON body."""
    return json.loads(body or b"null")
