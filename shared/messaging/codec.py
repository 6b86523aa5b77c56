"""JSON encoding of message bodies (never pickle)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

# values JSON has no type for are written as their str(), as json.dumps(default=str) did
_AS_BEFORE = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode(value: Any) -> bytes:
    """Serialise a contract model or plain JSON data to UTF-8 JSON bytes."""
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=False).encode()
    return orjson.dumps(value, default=str, option=_AS_BEFORE)


def decode(body: bytes) -> Any:
    """Parse a JSON body."""
    return orjson.loads(body or b"null")
