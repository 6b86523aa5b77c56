"""Serving a local fake (WeChat, WeChat Pay) as a process until it is told to stop."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from aiohttp import web


async def serve_until_signalled(app: web.Application, *, host: str, port: int, name: str) -> None:
    """Serve `app` until SIGTERM or SIGINT; announce `<name> listening on <url>` on stdout once
    listening (the dev stack and the tests wait for that line). The signal handlers are in
    place before the announcement, so a stop right after it is never lost."""
    runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await web.TCPSite(runner, host, port).start()
        print(f"{name} listening on http://{host}:{runner.addresses[0][1]}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


async def control_body(request: web.Request) -> dict[str, Any]:
    """The JSON object a fake's control endpoint was sent; 400 for anything else."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body
