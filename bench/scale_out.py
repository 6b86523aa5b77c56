"""The same flash crowd against 1 and then 3 booking processes (fresh system each time).

python -m bench.scale_out --patients 400 --capacity 50 --concurrency 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from bench import booking_flash


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out")
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--capacity", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=60)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args(argv)
    reports: list[dict[str, Any]] = []
    for processes in args.processes:
        flash = argparse.Namespace(
            patients=args.patients,
            capacity=args.capacity,
            concurrency=args.concurrency,
            booking_processes=processes,
            floor_calls=2000,
            gateway=None,
            wechat_fake=None,
        )
        reports.append(asyncio.run(booking_flash.run(flash)))
    base = reports[0]
    summary = [
        {
            "booking_processes": r["params"]["booking_processes"],
            "attempts_per_s": r["attempts_per_s"],
            "speedup": round(r["attempts_per_s"] / base["attempts_per_s"], 2),
            "latency_ms": r["latency_ms"],
            "successes": r["successes"],
            "oversold": r["oversold"],
            "errors_5xx": r["errors_5xx"],
            "floor_rpc_echo": r["floor_rpc_echo"],
            "ratio_attempts_to_rpc_echo": r["ratio_attempts_to_rpc_echo"],
        }
        for r in reports
    ]
    print(json.dumps({"machine": base["machine"], "runs": summary}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
