"""Logs through structlog: JSON lines for production, readable lines under `make run`."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from shared.context import request_id_var
from shared.logs import formatter
from shared.settings import Settings, SettingsError


def record(msg: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord(
        {
            "msg": msg,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "name": "guahao.booking",
            **extra,
        }
    )
    return made


def test_json_lines_keep_their_shape_and_the_extra_fields() -> None:
    token = request_id_var.set("req-7")
    try:
        line = formatter("booking", "json").format(
            record("appointment booked", appointment_id="a_1", n=3)
        )
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert list(entry)[:6] == ["ts", "level", "service", "logger", "msg", "request_id"]
    assert entry["level"] == "info" and entry["service"] == "booking"
    assert entry["logger"] == "guahao.booking" and entry["msg"] == "appointment booked"
    assert entry["request_id"] == "req-7"
    assert entry["appointment_id"] == "a_1" and entry["n"] == 3
    assert entry["ts"].endswith("Z")


def test_json_lines_carry_the_exception() -> None:
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        failed = record("failed", logging.ERROR, exc_info=sys.exc_info())
    entry = json.loads(formatter("booking", "json").format(failed))
    assert entry["level"] == "error" and "ZeroDivisionError: boom" in entry["exc"]


def test_console_lines_read_well_in_a_terminal() -> None:
    line = formatter("booking", "console", colors=False).format(
        record("appointment booked", appointment_id="a_1")
    )
    assert not line.startswith("{")
    assert "[info" in line and "appointment booked" in line
    assert "appointment_id=a_1" in line
    assert "service=" not in line and "request_id" not in line  # the process prefix says it
    coloured = formatter("booking", "console", colors=True).format(record("booked"))
    assert "\x1b[" in coloured


def test_the_format_is_one_setting() -> None:
    assert Settings.from_env({}).log_format == "json"
    assert Settings.from_env({"GUAHAO_LOG_FORMAT": "console"}).log_format == "console"
    with pytest.raises(SettingsError, match="GUAHAO_LOG_FORMAT"):
        Settings.from_env({"GUAHAO_LOG_FORMAT": "xml"})
