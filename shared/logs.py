"""Logs through structlog: every stdlib logger of the process (ours and the libraries') is
rendered by structlog's `ProcessorFormatter`, one line per record on stderr, with the
current request id and, inside a trace, its `trace_id` (32 hex digits).

`GUAHAO_LOG_FORMAT` chooses the renderer: `json` (production, the default: one JSON object
per line, `ts`, `level`, `service`, `logger`, `msg`, `request_id`, `trace_id`, then the
`extra=` fields) or `console` (`make run`: aligned, coloured unless `NO_COLOR` is set).

PII never goes into a log: callers log ids, never names, ID numbers, phones, codes or tokens.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from shared.context import request_id_var
from shared.tracing import current_trace_id

LogFormat = Literal["json", "console"]
NOISY = ("aiormq", "aio_pika", "pymongo", "aiohttp.access")


class _Shape:
    """Puts the fields every line carries first, in a fixed order, under our names."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        shaped: EventDict = {
            "ts": event.pop("ts", None),
            "level": event.pop("level", method),
            "service": self.service,
            "logger": event.pop("logger", None),
            "msg": event.pop("event", ""),
            "request_id": request_id_var.get(),
        }
        trace_id = current_trace_id()
        if trace_id is not None:
            shaped["trace_id"] = trace_id
        shaped.update(event)
        return shaped


def _tidy_for_a_terminal(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """`make run` prefixes each line with the process name: drop what repeats it, and the
    date."""
    event.pop("service", None)
    if event.get("request_id") == "-":
        event.pop("request_id")
    if isinstance(event.get("ts"), str):
        event["ts"] = event["ts"][11:23]
    return event


def _rename_exception(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    if "exception" in event:
        event["exc"] = event.pop("exception")
    return event


def _processors(service: str) -> list[Processor]:
    """What every record goes through before its renderer (stdlib and structlog alike)."""
    return [
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _Shape(service),
    ]


def formatter(
    service: str, fmt: LogFormat = "json", *, colors: bool | None = None
) -> structlog.stdlib.ProcessorFormatter:
    """The stdlib formatter rendering a record as `fmt`."""
    if fmt == "console":
        if colors is None:
            colors = not os.environ.get("NO_COLOR")
        final: list[Processor] = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _tidy_for_a_terminal,
            structlog.dev.ConsoleRenderer(
                colors=colors, event_key="msg", timestamp_key="ts", pad_event_to=36
            ),
        ]
    else:
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _rename_exception,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_processors(service), processors=final
    )


def configure_logging(service: str, level: str = "INFO", fmt: LogFormat = "json") -> None:
    """Route every logger of the process (stdlib and structlog) through one handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(service, fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *_processors(service),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
