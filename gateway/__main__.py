"""`python -m gateway`: serve the public HTTP API."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.app import create_app
from gateway.limits import Limits, parse_rates
from shared.logs import configure_logging
from shared.loop import use_fast_loop
from shared.settings import Settings
from shared.tracing import check_environment as check_tracing_environment
from shared.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("guahao.gateway")


def main() -> None:
    try:
        settings = Settings.from_env()
        check_tracing_environment()
    except ValueError as exc:  # names the variable
        raise SystemExit(f"gateway cannot start: {exc}") from None
    use_fast_loop()
    configure_logging("gateway", settings.log_level, settings.log_format)
    configure_tracing("gateway")
    proxies = [p for p in settings.trusted_proxies.split(",") if p.strip()]
    limits = Limits(parse_rates(settings.rate_limits))
    app = create_app(settings, limits=limits, trusted_proxies=proxies)

    async def flush_spans(_: web.Application) -> None:
        shutdown_tracing()

    app.on_cleanup.append(flush_spans)
    host, port = settings.gateway_host, settings.gateway_port

    def announce(_: str) -> None:
        message = f"gateway listening on http://{host}:{port}"
        print(message, flush=True)
        log.info(message)

    web.run_app(
        app,
        host=host,
        port=port,
        shutdown_timeout=settings.shutdown_grace,
        access_log=None,
        handle_signals=True,
        print=announce,
    )


if __name__ == "__main__":
    main()
