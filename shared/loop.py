"""The event loop every process runs on: uvloop where it is installed (it is a dependency;
`GUAHAO_UVLOOP=0` falls back to asyncio's own loop, e.g. to compare)."""

from __future__ import annotations

import asyncio
import os


def use_fast_loop() -> bool:
    """Make new event loops uvloop's; True when it did."""
    if os.environ.get("GUAHAO_UVLOOP", "1") == "0":
        return False
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
