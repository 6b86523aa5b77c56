"""Distributed tracing with OpenTelemetry: one trace per booking across every hop.

Configured by the standard variables, read by the OpenTelemetry SDK itself:

- `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): spans are
  exported over OTLP/HTTP (protobuf) to it. `OTEL_TRACES_EXPORTER` (`otlp`, `console`,
  `none`) chooses the exporter explicitly. With neither set, tracing is off: no SDK, no
  exporter, no span recorded; what remains is propagation (a few dictionary look-ups per
  hop: a valid context received from a traced process is passed on).
- `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (e.g. `parentbased_traceidratio` and
  `0.1`), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`, `OTEL_SDK_DISABLED`.

The gateway starts every trace (a `traceparent` sent from the internet becomes a span
link, never the parent: a client cannot force sampling). The context travels as W3C trace
context: in outgoing HTTP headers (the aiohttp client instrumentation), in RPC and event
message headers (`shared/messaging`), in an outbox entry (stored at write time, so the
relay's publish joins the trace of the request that wrote it) and in a webhook delivery
document. The trace headers of an RPC request are not part of its HMAC signature, like
`x-request-id`: they grant nothing (no identity, no deadline), and a malformed one is
ignored by the parser.

Spans carry ids only, never PII: `guahao.appointment_id`, `guahao.hospital_id`,
`guahao.request_id`, event ids and types, route templates — never names, ID numbers,
phones, tokens or raw query strings.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, TraceState
from opentelemetry.util.types import Attributes

log = logging.getLogger("guahao.tracing")

# a proxy: it follows the provider `configure_tracing` installs (a no-op one until then)
tracer = trace.get_tracer("guahao")

HTTP_PROTOBUF = "http/protobuf"
_EXPORTERS = frozenset({"otlp", "console", "none"})


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads trace headers from AMQP headers (str or bytes values) or a stored dict."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for spans to be recorded and exported."""
    e = os.environ if env is None else env
    if e.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = e.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(e.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or e.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def check_environment(env: Mapping[str, str] | None = None) -> None:
    """Refuse, naming the variable, a tracing configuration this build cannot honour."""
    e = os.environ if env is None else env
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = e.get(var, "").strip()
        if value and value != HTTP_PROTOBUF:
            raise ValueError(
                f"{var}={value!r}: only {HTTP_PROTOBUF!r} is supported (OTLP over HTTP)"
            )
    exporter = e.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter and exporter not in _EXPORTERS:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={exporter!r}: expected one of {', '.join(sorted(_EXPORTERS))}"
        )


_provider: Any = None


def configure_tracing(service: str) -> bool:
    """Set up tracing for this process (call once, first thing at startup, before any
    MongoDB client or HTTP session is created). Returns whether spans are recorded."""
    global _provider
    check_environment()
    if _provider is not None or not wanted():
        return _provider is not None
    # imported only when wanted: with tracing off no exporter or instrumentation is loaded
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    # the sampler comes from OTEL_TRACES_SAMPLER(_ARG); OTEL_SERVICE_NAME wins over `service`
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.sampler = NoLoneClientSpans(provider.sampler)  # before any tracer exists
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    # MongoDB commands as client spans (a command listener: registered before any client)
    PymongoInstrumentor().instrument(tracer_provider=provider)
    # outgoing HTTP (WeChat, webhooks): the URL without its query string, which carries
    # WeChat's access token, app secret and login codes
    AioHttpClientInstrumentor().instrument(tracer_provider=provider, url_filter=_without_query)
    _provider = provider
    log.info("tracing on", extra={"exporter": exporter, "service": service})
    return True


class NoLoneClientSpans(Sampler):
    """Wraps the configured sampler: a call to a dependency made outside any traced work
    (a lease renewal, an outbox sweep, a worker's poll of the store) would be a trace of one
    span, every few seconds in every process — it is not sampled. Work those loops do for a
    request or an event runs in that trace's context (`resumed`) and is traced as usual."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if (
            kind is SpanKind.CLIENT
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoLoneClientSpans{{{self.inner.get_description()}}}"


def shutdown_tracing() -> None:
    """Export what is still buffered (at process stop), then stop the exporter (which
    ends its retries): a collector that is down delays the exit by seconds, not more."""
    if _provider is not None:
        try:
            _provider.force_flush(timeout_millis=3000)
            _provider.shutdown()
        except Exception as exc:  # a collector that is down must not stop the exit
            log.warning("spans not flushed at stop", extra={"error": repr(exc)})


def _without_query(url: Any) -> str:
    text = str(url)
    return text.split("?", 1)[0]


def inject(headers: MutableMapping[str, Any]) -> None:
    """Add the current trace context (`traceparent`, `tracestate`) to outgoing headers;
    nothing when there is no valid context."""
    propagate.inject(headers)


def extract(headers: Mapping[str, Any] | None) -> otel_context.Context:
    """The trace context carried by incoming headers (empty when none or malformed)."""
    return propagate.extract(headers or {}, getter=_GETTER)


def carrier() -> dict[str, str] | None:
    """The current trace context as a small dict to store with work done later (an outbox
    entry, a webhook delivery), or None when there is none."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    stored: dict[str, str] = {}
    propagate.inject(stored)
    return stored or None


@contextlib.contextmanager
def resumed(stored: Mapping[str, Any] | None) -> Iterator[None]:
    """Run the block in the trace context stored by `carrier()` (no-op without one)."""
    if not stored:
        yield
        return
    token = otel_context.attach(extract(stored))
    try:
        yield
    finally:
        otel_context.detach(token)


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside any trace."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def annotate(span: Span | None = None, **attributes: str | int | None) -> None:
    """Set `guahao.<name>` attributes (ids only, never PII) on `span` or the current span,
    when it is recorded."""
    span = span or trace.get_current_span()
    if not span.is_recording():
        return
    for name, value in attributes.items():
        if value is not None:
            span.set_attribute(f"guahao.{name}", value)


def event_attributes(event: Any) -> dict[str, str]:
    """Span attributes of a domain event (its id, type, hospital, appointment)."""
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.message.id": str(event.id),
        "guahao.event_type": str(event.type),
        "guahao.hospital_id": str(event.hospital_id),
    }
    appointment = event.data.get("appointment") if isinstance(event.data, dict) else None
    if isinstance(appointment, dict) and appointment.get("id"):
        attributes["guahao.appointment_id"] = str(appointment["id"])
    elif isinstance(event.data, dict) and event.data.get("appointment_id"):
        attributes["guahao.appointment_id"] = str(event.data["appointment_id"])
    return attributes
