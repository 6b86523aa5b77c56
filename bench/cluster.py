"""One broker node vs a three-node cluster, same run: guahao's own RPC (RpcServer/RpcClient,
signed nothing, direct reply-to) and confirmed event publishing into a quorum queue.

One node: a vhost of its own on the dev broker (127.0.0.1:5672), RPC queue classic as in
a single-node deployment, then quorum (as when AMQP_URLS lists several nodes but only one
runs: compose without the `cluster` profile). Cluster: three extra nodes started here
(tests/rabbit_cluster.py, needs root), the RPC queue a quorum queue of 3, the server
connected to node 2, the client to node 3 (every call crosses nodes, as in production),
events into a quorum queue replicated on the three.

    python -m bench.cluster --calls 1500 --events 1000 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import uuid
from typing import Any

from bench.booking_flash import percentile
from shared.context import CallContext
from shared.messaging.connection import connect_broker
from shared.messaging.events import EventPublisher, declare_events_exchange, new_event
from shared.messaging.queues import QUORUM, declare_durable
from shared.messaging.rpc import RpcClient, RpcServer
from tests.harness import amqp_url, create_vhost, delete_vhost
from tests.rabbit_cluster import RabbitCluster, available


async def echo(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return params


async def measure(
    server_urls: list[str],
    client_urls: list[str],
    *,
    replicated: bool,
    calls: int,
    events: int,
    concurrency: int,
) -> dict[str, Any]:
    service = f"bench{uuid.uuid4().hex[:6]}"
    server_side = await connect_broker(server_urls, name="bench-server")
    client_side = await connect_broker(client_urls, name="bench-client")
    server = RpcServer(service, server_side, replicated=replicated)
    server.add_method("echo", echo)
    try:
        await server.start()
        client = RpcClient(client_side, default_timeout=10)
        await client.call(service, "echo", {"n": 0})
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def one(n: int) -> None:
            async with gate:
                started = time.perf_counter()
                await client.call(service, "echo", {"n": n})
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(calls)))
        rpc_elapsed = time.perf_counter() - started

        channel = await server_side.channel()
        exchange = await declare_events_exchange(channel)
        queue_name = f"bench.events.{uuid.uuid4().hex[:6]}"
        queue = await declare_durable(server_side, channel, queue_name, QUORUM)
        await queue.bind(exchange, routing_key="bench.#")
        publisher = EventPublisher(client_side)
        await publisher.start()
        publish_gate = asyncio.Semaphore(concurrency)

        async def publish(n: int) -> None:
            async with publish_gate:
                await publisher.publish(new_event("bench.ping", "h", {"n": n}))

        started = time.perf_counter()
        await asyncio.gather(*(publish(n) for n in range(events)))
        events_elapsed = time.perf_counter() - started
        # queues are left: the vhost is deleted, the cluster torn down
        return {
            "rpc_calls_per_s": round(calls / rpc_elapsed, 1),
            "rpc_latency_ms": {
                q: round(percentile(latencies, v) * 1000, 1)
                for q, v in (("p50", 0.5), ("p95", 0.95))
            },
            "confirmed_events_per_s": round(events / events_elapsed, 1),
        }
    finally:
        await server.drain(1)
        await client_side.close()
        await server_side.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    why = available()
    if why is not None:
        raise SystemExit(f"bench.cluster: {why}")
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "params": {"calls": args.calls, "events": args.events, "concurrency": args.concurrency},
    }
    vhost = create_vhost()
    try:
        single = [amqp_url(vhost)]
        report["one_node"] = await measure(
            single,
            single,
            replicated=False,
            calls=args.calls,
            events=args.events,
            concurrency=args.concurrency,
        )
        # what compose's single node does (it lists three nodes, so RPC queues are quorum)
        report["one_node_quorum_rpc"] = await measure(
            single,
            single,
            replicated=True,
            calls=args.calls,
            events=args.events,
            concurrency=args.concurrency,
        )
    finally:
        delete_vhost(vhost)
    started = time.perf_counter()
    with RabbitCluster.start() as cluster:
        report["cluster_start_s"] = round(time.perf_counter() - started, 1)
        urls = cluster.urls
        report["three_nodes"] = await measure(
            [urls[1], urls[2], urls[0]],
            [urls[2], urls[0], urls[1]],
            replicated=True,
            calls=args.calls,
            events=args.events,
            concurrency=args.concurrency,
        )
    one, three = report["one_node"], report["three_nodes"]
    report["cluster_vs_one_node"] = {
        "rpc": round(three["rpc_calls_per_s"] / one["rpc_calls_per_s"], 2),
        "events": round(three["confirmed_events_per_s"] / one["confirmed_events_per_s"], 2),
    }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster")
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    print(json.dumps(asyncio.run(run(parser.parse_args(argv))), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
