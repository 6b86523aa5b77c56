"""The floors a benchmark is read against, measured in the same run on the same machine.

- `rpc_echo_floor`: a bare aio-pika request/reply over RabbitMQ's direct reply-to — an echo
  server in its own process, the caller here, `concurrency` calls in flight: the most
  round trips per second any RPC-based design could do here.
- `store_floor`: a bare guarded `find_one_and_update` (a capacity reservation) on the store.

    python -m bench.floor --calls 3000 --concurrency 64      # prints the echo floor
    python -m bench.floor serve AMQP_URL QUEUE                # the echo server itself
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pymongo import AsyncMongoClient

REPLY_TO = "amq.rabbitmq.reply-to"


async def serve(amqp_url: str, queue_name: str) -> None:
    """Echo every request to its reply_to (what a do-nothing RPC server costs)."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=128)
    queue = await channel.declare_queue(queue_name, auto_delete=True)

    async def echo(message: AbstractIncomingMessage) -> None:
        await channel.default_exchange.publish(
            aio_pika.Message(body=message.body, correlation_id=message.correlation_id),
            routing_key=message.reply_to or "",
        )
        await message.ack()

    await queue.consume(echo)
    print("ready", flush=True)
    await asyncio.Future()


async def rpc_echo_floor(amqp_url: str, *, calls: int, concurrency: int) -> dict[str, float]:
    """Calls/s and latency of the bare echo, with `concurrency` calls in flight."""
    queue_name = f"bench.echo.{uuid.uuid4().hex[:8]}"
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.floor",
        "serve",
        amqp_url,
        queue_name,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        await server.stdout.readline()
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        pending: dict[str, asyncio.Future[bytes]] = {}
        replies = await channel.declare_queue(REPLY_TO, passive=True)

        async def on_reply(message: AbstractIncomingMessage) -> None:
            future = pending.pop(message.correlation_id or "", None)
            if future is not None and not future.done():
                future.set_result(message.body)

        await replies.consume(on_reply, no_ack=True)
        latencies: list[float] = []
        gate = asyncio.Semaphore(concurrency)

        async def call() -> None:
            async with gate:
                cid = uuid.uuid4().hex
                future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                pending[cid] = future
                started = time.perf_counter()
                await channel.default_exchange.publish(
                    aio_pika.Message(body=b'{"ping":1}', correlation_id=cid, reply_to=REPLY_TO),
                    routing_key=queue_name,
                )
                await future
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(call() for _ in range(min(200, calls))))  # warm up
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(call() for _ in range(calls)))
        elapsed = time.perf_counter() - started
        await connection.close()
    finally:
        server.terminate()
        await server.wait()
    return {
        "calls_per_s": round(calls / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
    }


async def store_floor(mongo_url: str, rounds: int) -> dict[str, float]:
    """Latency of one guarded reservation on the store (sequential)."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    collection = client["guahao_bench"]["slots"]
    await collection.delete_many({})
    await collection.insert_one(
        {"_id": "s", "capacity": rounds + 1, "booked": 0, "holders": [], "stopped": False}
    )
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        await collection.find_one_and_update(
            {
                "_id": "s",
                "stopped": False,
                "holders": {"$nin": [f"a{i}"]},
                "$expr": {"$lt": ["$booked", "$capacity"]},
            },
            {"$push": {"holders": f"a{i}"}, "$inc": {"booked": 1}},
        )
        samples.append(time.perf_counter() - started)
    await client.drop_database("guahao_bench")
    await client.close()
    return {"p50_ms": round(statistics.median(samples) * 1000, 2)}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "serve":
        asyncio.run(serve(args[1], args[2]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parsed = parser.parse_args(args)
    print(
        json.dumps(
            asyncio.run(
                rpc_echo_floor(parsed.amqp_url, calls=parsed.calls, concurrency=parsed.concurrency)
            )
        )
    )


if __name__ == "__main__":
    main()
