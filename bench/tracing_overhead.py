"""What tracing costs the flash crowd: the same crowd with tracing off (no OTEL_* variable:
propagation only) and with tracing on at a sampling ratio (`parentbased_traceidratio`,
default 10 %), exporting OTLP/HTTP to a sink in this process, in the same run (rounds
alternate the order, so a machine busy with something else weighs on both).

    python -m bench.tracing_overhead --patients 300 --capacity 100 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import threading
from typing import Any

from aiohttp import web

from bench import booking_flash


class OtlpSink:
    """Accepts OTLP/HTTP trace exports and counts them, on a thread of its own (the crowd's
    driver blocks its loop while it stops a system, and the processes flush then)."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        self.endpoint = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _traces(self, request: web.Request) -> web.Response:
        self.bytes += len(await request.read())
        self.exports += 1
        # an empty ExportTraceServiceResponse serializes to no bytes
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.endpoint = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def untraced_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sink = OtlpSink()
    sink.start()
    traced_env = {
        **untraced_env(),
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(args.ratio),
    }
    crowd = argparse.Namespace(
        patients=args.patients,
        capacity=args.capacity,
        concurrency=args.concurrency,
        booking_processes=1,
        floor_calls=0,
        gateway=None,
        wechat_fake=None,
    )
    results: dict[str, list[float]] = {"off": [], "on": []}
    reports: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    try:
        for round_no in range(args.rounds):
            order = ("off", "on") if round_no % 2 == 0 else ("on", "off")
            for mode in order:
                env = traced_env if mode == "on" else untraced_env()
                report = await booking_flash.run(crowd, env)
                results[mode].append(report["attempts_per_s"])
                reports[mode].append(
                    {
                        k: report[k]
                        for k in (
                            "attempts_per_s",
                            "successes",
                            "oversold",
                            "errors_5xx",
                            "latency_ms",
                        )
                    }
                )
    finally:
        sink.stop()
    off, on = (sum(results[m]) / len(results[m]) for m in ("off", "on"))
    return {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "params": {
            "patients": args.patients,
            "capacity": args.capacity,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "sampling_ratio": args.ratio,
        },
        "tracing_off": reports["off"],
        "tracing_on": reports["on"],
        "otlp_exports": sink.exports,
        "otlp_bytes": sink.bytes,
        "attempts_per_s_off": round(off, 1),
        "attempts_per_s_on": round(on, 1),
        "cost_of_tracing_pct": round((off - on) / off * 100, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing_overhead")
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ratio", type=float, default=0.1)
    report = asyncio.run(run(parser.parse_args(argv)))
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
