"""Request/reply over RabbitMQ with a JSON codec.

- Requests go to the durable queue `rpc.<service>` through the default exchange. A call to a
  service whose queue does not exist fails at once instead of waiting out its deadline: the
  client checks the queue once (a passive declare) before its first call to a service, and
  again after a timeout. Requests are not publisher-confirmed: the reply is the proof of
  delivery, and a lost request is a timeout like a lost reply (a confirm per call costs the
  broker and the caller a round of frames on the hottest path).
- Replies come back on RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`), no reply queue.
- The caller's deadline travels as the message `expiration` (the broker drops the request
  once it is stale) and as the `x-deadline` header (a server that picks it up late does not
  execute it).
- Request id and caller identity travel in headers; with an RpcIdentity (every real
  process) they are signed by the client and verified by the server before executing
  (`shared/messaging/identity.py`).
- The trace context travels as W3C `traceparent`/`tracestate` headers (`shared/tracing.py`):
  a client span per call, a server span per request served, its child. They are added
  after signing and are not signed, like `x-request-id`: they grant nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, get_type_hints

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel, ValidationError
from pymongo.errors import ConnectionFailure

from shared.context import CallContext, Caller, deadline_var, request_id_var
from shared.contracts.base import field_errors
from shared.errors import (
    DomainError,
    Internal,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
    error_from_wire,
)
from shared.messaging.codec import decode, encode
from shared.messaging.draining import DrainingConsumer
from shared.messaging.identity import RefusedRequest, RpcIdentity
from shared.messaging.queues import QUORUM, declare_durable
from shared.metrics import Registry
from shared.tracing import annotate, extract, inject, tracer

log = logging.getLogger("guahao.rpc")

REPLY_TO = "amq.rabbitmq.reply-to"
REPLY_NODE_HEADER = "x-reply-node"  # host:port of the broker node the caller is on
NODE_CHECK_TIMEOUT = 0.5
NODE_CHECK_TTL = 0.5
ANSWER_TIMEOUT = 5.0  # to publish a reply and acknowledge the request
Handler = Callable[[Any, CallContext], Awaitable[Any]]


def rpc_queue(service: str) -> str:
    """The queue a service's RPC methods are served from."""
    return f"rpc.{service}"


class RpcClient:
    """Calls methods of other services; one per process, safe for concurrent use."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        *,
        default_timeout: float = 5.0,
        identity: RpcIdentity | None = None,
    ):
        self.connection = connection
        self.default_timeout = default_timeout
        self.identity = identity
        self._channel: AbstractChannel | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ready = asyncio.Lock()
        self._served: set[str] = set()  # services whose request queue was seen to exist
        # direct reply-to is per connection: a reply to a call made on a connection that
        # dropped can never arrive, so its caller is failed at once instead of at its timeout
        connection.close_callbacks.add(self._on_connection_lost)
        self._service_of: dict[str, str] = {}  # correlation id → service, while pending
        self._last_reply: dict[str, float] = {}  # service → when its last reply came

    async def start(self) -> None:
        """Open the channel and start consuming direct replies."""
        async with self._ready:
            if self._channel is not None and not self._channel.is_closed:
                return
            channel = await self.connection.channel(publisher_confirms=False)
            reply_queue: AbstractQueue = await channel.declare_queue(REPLY_TO, passive=True)
            await reply_queue.consume(self._on_reply, no_ack=True)
            self._channel = channel

    async def _check_served(self, service: str) -> None:
        """Whether `rpc.<service>` exists (once per service, again after a timeout)."""
        if service in self._served:
            return
        channel = await self.connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(rpc_queue(service), passive=True)
        except ChannelNotFoundEntity:
            raise ServiceUnavailable(service=service, reason="no such service") from None
        finally:
            if not channel.is_closed:
                await channel.close()
        self._served.add(service)

    async def _recycle_channel(self) -> None:
        """Open a new channel for the next call, after a call that timed out with no reply
        from its service since it was sent. On a cluster, a channel opened while a queue's
        leader was being elected can keep sending to the old leader, and its publishes
        (unconfirmed) vanish. Calls still waiting on it fail fast (their replies could only
        come back on it)."""
        channel, self._channel = self._channel, None
        if channel is None:
            return
        log.warning("no reply from the service since the call was sent: rpc channel recycled")
        self._on_connection_lost(channel)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await channel.close()

    def _on_connection_lost(self, sender: object, exc: BaseException | None = None) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            log.warning(
                "broker connection lost: calls in flight fail fast",
                extra={"calls": len(pending), "error": repr(exc)},
            )
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionError("broker connection lost"))

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        service = self._service_of.pop(message.correlation_id or "", None)
        if service is not None:
            self._last_reply[service] = time.monotonic()
        future = self._pending.pop(message.correlation_id or "", None)
        if future is None or future.done():
            log.debug("late rpc reply dropped", extra={"correlation_id": message.correlation_id})
            return
        try:
            future.set_result(decode(message.body))
        except ValueError:
            future.set_result({"error": Internal("bad reply").to_wire()})

    async def call(
        self,
        service: str,
        method: str,
        params: BaseModel | dict[str, Any] | None = None,
        *,
        caller: Caller | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Call `service.method`; return its result or raise the DomainError it raised.

        Raises ServiceUnavailable when the service cannot be reached or does not answer in
        time; never waits longer than the timeout.
        """
        timeout = self.default_timeout if timeout is None else timeout
        inherited = deadline_var.get()
        if inherited is not None:  # a call made while serving one: within its deadline
            timeout = min(timeout, max(0.05, inherited - time.time()))
        if not self.connection.connected.is_set():
            raise ServiceUnavailable(service=service, reason="broker unavailable")
        with tracer.start_as_current_span(
            f"{service}.{method}",
            kind=SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
            attributes={"rpc.system": "guahao", "rpc.service": service, "rpc.method": method},
        ) as span:
            try:
                return await self._call(service, method, params, caller, timeout)
            except DomainError as exc:
                span.set_attribute("guahao.error_code", exc.code)
                if exc.status >= 500:
                    span.set_status(StatusCode.ERROR, exc.code)
                raise

    async def _call(
        self,
        service: str,
        method: str,
        params: BaseModel | dict[str, Any] | None,
        caller: Caller | None,
        timeout: float,
    ) -> Any:
        deadline = time.time() + timeout
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        self._service_of[correlation_id] = service
        headers: dict[str, Any] = {
            "x-request-id": request_id_var.get(),
            "x-deadline": int(deadline * 1000),
        }
        if caller is not None:
            headers["x-caller"] = caller.model_dump_json()
        reply_node = getattr(self.connection, "node", None)
        if isinstance(reply_node, str):  # where the reply must go (a cluster's node)
            headers[REPLY_NODE_HEADER] = reply_node
        body = encode(params if params is not None else {})
        if self.identity is not None:
            headers.update(self.identity.sign(service, method, correlation_id, headers, body))
        inject(headers)  # after signing: the trace context is not part of the signature
        message = aio_pika.Message(
            body=body,
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=REPLY_TO,
            type=method,
            headers=headers,
            expiration=max(timeout, 0.001),
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        sent = float("inf")  # not yet: a timeout before publishing says nothing of the channel
        try:
            async with asyncio.timeout(timeout):
                await self.start()
                await self._check_served(service)
                assert self._channel is not None
                sent = time.monotonic()
                await self._channel.default_exchange.publish(
                    message, routing_key=rpc_queue(service)
                )
                reply = await future
        except TimeoutError:
            log.info("rpc timed out", extra={"service": service, "method": method})
            self._served.discard(service)  # look again: its queue may be gone
            if (
                getattr(self.connection, "clustered", False)
                and self._last_reply.get(service, 0.0) < sent
            ):
                await self._recycle_channel()
            raise ServiceUnavailable(service=service, reason="timeout") from None
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            log.info("rpc broker fault", extra={"service": service, "error": repr(exc)})
            raise ServiceUnavailable(service=service, reason="broker unavailable") from None
        finally:
            self._pending.pop(correlation_id, None)
            self._service_of.pop(correlation_id, None)
        if "error" in reply:
            raise error_from_wire(reply["error"])
        return reply.get("ok")


class RpcServer(DrainingConsumer):
    """Serves one service's methods from `rpc.<service>`; competing consumers across replicas."""

    def __init__(
        self,
        service: str,
        connection: AbstractRobustConnection,
        *,
        prefetch: int = 128,
        metrics: Registry | None = None,
        identity: RpcIdentity | None = None,
        replicated: bool = False,
    ) -> None:
        self.service = service
        # on a cluster the request queue is a quorum queue, so it survives its node
        self.replicated = replicated
        self.identity = identity
        registry = metrics or Registry()
        self._handled = registry.counter(
            "guahao_rpc_handled_total",
            "RPC requests handled by method and outcome.",
            ("method", "outcome"),
        )
        self._latency = registry.histogram(
            "guahao_rpc_handle_seconds", "RPC handling time by method.", ("method",)
        )
        self._refused = registry.counter(
            "guahao_rpc_refused_total",
            "RPC requests refused unexecuted: unsigned or forged.",
            ("reason",),
        )
        self.connection = connection
        self.prefetch = prefetch
        self._methods: dict[str, tuple[Handler, type[BaseModel] | None]] = {}
        self._channel: AbstractChannel | None = None
        self._node_checks: dict[str, tuple[float, bool]] = {}  # node → (until, up)
        super().__init__()
        self.add_method("ping", self._ping)

    def _forget_node_checks(self, *_: object) -> None:
        self._node_checks.clear()

    async def _ping(self, params: None, ctx: CallContext) -> dict[str, Any]:
        return {"service": self.service, "time": time.time()}

    def add_method(self, name: str, handler: Handler) -> None:
        """Register a handler `async (params, ctx) -> result`; its first parameter's type
        (a contract model, or None) validates the request body."""
        hints = get_type_hints(handler)
        first = next(iter(inspect.signature(handler).parameters))
        model = hints.get(first)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = None
        self._methods[name] = (handler, model)

    def method(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator form of add_method."""

        def register(handler: Handler) -> Handler:
            self.add_method(name, handler)
            return handler

        return register

    async def start(self) -> None:
        """Declare the queue and start consuming."""
        # losing our own connection may mean a node died: check callers' nodes afresh
        self.connection.close_callbacks.add(self._forget_node_checks)
        self._channel = await self.connection.channel()
        await self._channel.set_qos(prefetch_count=self.prefetch)
        queue = await declare_durable(
            self.connection,
            self._channel,
            rpc_queue(self.service),
            QUORUM if self.replicated else None,
        )
        await self._consume(queue, self._serve)
        log.info("rpc serving", extra={"queue": rpc_queue(self.service)})

    async def _serve(self, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        request_id = str(headers.get("x-request-id") or "-")
        token = request_id_var.set(request_id)
        try:
            deadline_ms = headers.get("x-deadline")
            deadline = float(deadline_ms) / 1000 if isinstance(deadline_ms, int | float) else None
            if deadline is not None and time.time() > deadline:
                log.info("rpc expired before execution", extra={"method": message.type})
                await message.ack()
                return
            refusal, sender = self._authenticate(message)
            caller_raw = headers.get("x-caller") if refusal is None else None
            caller = None
            if caller_raw:
                raw = caller_raw.decode() if isinstance(caller_raw, bytes) else str(caller_raw)
                caller = Caller.model_validate_json(raw)
            ctx = CallContext(
                request_id=request_id, caller=caller, deadline=deadline, service=sender
            )
            deadline_var.set(deadline)
            method = message.type or ""
            with tracer.start_as_current_span(
                f"{self.service}.{method if method in self._methods else 'unknown'}",
                context=extract(headers),
                kind=SpanKind.SERVER,
                attributes={
                    "rpc.system": "guahao",
                    "rpc.service": self.service,
                    "rpc.method": method,
                    "guahao.request_id": request_id,
                },
            ) as span:
                reply = refusal or await self._dispatch(method, message.body, ctx)
                if "error" in reply:
                    annotate(span, error_code=str(reply["error"].get("code")))
                # bounded: a channel stuck reconnecting must not hold a prefetch slot forever
                async with asyncio.timeout(ANSWER_TIMEOUT):
                    if (
                        message.reply_to
                        and self._channel is not None
                        and await self._caller_node_up(headers.get(REPLY_NODE_HEADER))
                    ):
                        await self._channel.default_exchange.publish(
                            aio_pika.Message(
                                body=encode(reply),
                                content_type="application/json",
                                correlation_id=message.correlation_id,
                                delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                            ),
                            routing_key=message.reply_to,
                        )
                    await message.ack()
        except Exception:
            log.exception("rpc request could not be served", extra={"method": message.type})
            with contextlib.suppress(Exception):  # its channel is gone: the broker requeues it
                async with asyncio.timeout(ANSWER_TIMEOUT):
                    await message.reject(requeue=False)
        finally:
            request_id_var.reset(token)

    async def _caller_node_up(self, node: object) -> bool:
        """Whether the node the caller's connection is on still answers (on a cluster).

        A reply to a direct reply-to address of a node that is down crashes the publishing
        channel in RabbitMQ 3.10 (`rabbit_channel:deliver_reply` case_clause) and with it
        this connection, again at every redelivery: such a caller's call has already failed
        fast anyway, so the reply is dropped instead. Checked by a TCP connect, remembered
        for NODE_CHECK_TTL (and forgotten when this server's own connection drops)."""
        if not self.replicated or not isinstance(node, str) or ":" not in node:
            return True
        now = time.monotonic()
        known = self._node_checks.get(node)
        if known is not None and known[0] > now:
            return known[1]
        host, _, port = node.rpartition(":")
        try:
            async with asyncio.timeout(NODE_CHECK_TIMEOUT):
                _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            up = True
        except (OSError, TimeoutError, ValueError):
            up = False
            log.warning("caller's broker node is down: reply dropped", extra={"node": node})
        self._node_checks[node] = (now + NODE_CHECK_TTL, up)
        return up

    def _authenticate(
        self, message: AbstractIncomingMessage
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(None, signing service) for a verified request, (error reply, None) for a refused
        one; (None, None) when this server verifies nothing (tests without an identity)."""
        if self.identity is None:
            return None, None
        try:
            return None, self.identity.verify(
                self.service,
                message.type or "",
                message.correlation_id or "",
                message.headers or {},
                message.body,
                redelivered=bool(message.redelivered),
            )
        except RefusedRequest as exc:
            self._refused.inc(exc.reason)
            log.warning("rpc request refused", extra={"method": message.type, "reason": exc.reason})
            return {"error": Unauthenticated("rpc request not authenticated").to_wire()}, None

    async def _dispatch(self, method: str, body: bytes, ctx: CallContext) -> dict[str, Any]:
        entry = self._methods.get(method)
        if entry is None:
            return {"error": Internal(f"unknown method {self.service}.{method}").to_wire()}
        started = time.perf_counter()
        reply = await self._invoke(method, entry, body, ctx)
        outcome = "ok" if "ok" in reply else str(reply["error"]["code"]).lower()
        self._handled.inc(method, outcome)
        self._latency.observe(time.perf_counter() - started, method)
        return reply

    async def _invoke(
        self,
        method: str,
        entry: tuple[Handler, type[BaseModel] | None],
        body: bytes,
        ctx: CallContext,
    ) -> dict[str, Any]:
        handler, model = entry
        try:
            params = model.model_validate_json(body) if model is not None else None
        except ValidationError as exc:
            return {"error": ValidationFailed(fields=field_errors(exc)).to_wire()}
        # the ids an operator looks a trace up by (ids only, never PII)
        annotate(
            appointment_id=getattr(params, "appointment_id", None),
            hospital_id=getattr(params, "hospital_id", None),
        )
        try:
            result = await handler(params, ctx)
        except DomainError as exc:
            return {"error": exc.to_wire()}
        except (ConnectionFailure, ConnectionError, TimeoutError) as exc:
            # the store or a peer is unreachable: a fast, honest 503, not a 500
            log.warning(
                "rpc handler lost a dependency", extra={"method": method, "error": repr(exc)}
            )
            return {
                "error": ServiceUnavailable(
                    service=self.service, reason="dependency unavailable"
                ).to_wire()
            }
        except Exception:
            log.exception("rpc handler failed", extra={"method": method})
            return {"error": Internal().to_wire()}
        if isinstance(result, BaseModel):
            return {"ok": result.model_dump(mode="json")}
        return {"ok": result}
