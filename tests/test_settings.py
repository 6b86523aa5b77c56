"""Settings through pydantic-settings: the same variables and defaults, empty means the
default, and a wrong value stops the process naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import ENV_VARS, Settings, SettingsError, env_var


def test_every_variable_reaches_its_field_and_empty_means_default() -> None:
    settings = Settings.from_env(
        {
            "AMQP_URL": "amqp://u:p@broker:5672/",
            "GUAHAO_DATA_DIR": "/data",
            "GATEWAY_PORT": "8081",
            "GUAHAO_DEMO": "1",
            "GUAHAO_RPC_TIMEOUT": "2.5",
            "WEBHOOK_ALLOW_HTTP": "",
            "NOTIFY_REMINDER_HOUR": "19",
            "rpc_timeout": "9",
            "demo": "0",  # field names are not variables
        }
    )
    assert settings.amqp_url == "amqp://u:p@broker:5672/"
    assert settings.data_dir == Path("/data") and settings.gateway_port == 8081
    assert settings.demo is True and settings.rpc_timeout == 2.5
    assert settings.webhook_allow_http is False and settings.reminder_hour == 19
    assert Settings.from_env({}) == Settings()
    for var, field in ENV_VARS.items():
        assert env_var(field) == var
    assert set(ENV_VARS.values()) == set(Settings.model_fields)


def test_defaults_are_kept() -> None:
    defaults = Settings()
    assert defaults.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert defaults.mongo_url == "mongodb://127.0.0.1:27017/"
    assert defaults.data_dir == Path(".data") and defaults.gateway_port == 8080
    assert defaults.rpc_timeout == 5.0 and defaults.booking_orphan_check_seconds == 60.0
    assert defaults.log_level == "INFO" and defaults.mongo_db_prefix == "guahao_"
    assert defaults.ops_port == 9100 and defaults.webhook_max_attempts == 6


def test_settings_built_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9999")
    assert Settings().gateway_port == 8080
    assert Settings(gateway_port=81).gateway_port == 81
    assert Settings.from_env().gateway_port == 9999


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GUAHAO_RPC_TIMEOUT": "soon"}, ["GUAHAO_RPC_TIMEOUT"]),
        (
            {"GATEWAY_PORT": "http", "WEBHOOK_ALLOW_HTTP": "perhaps"},
            ["GATEWAY_PORT", "WEBHOOK_ALLOW_HTTP"],
        ),
        ({"BOOKING_ORPHAN_CHECK_SECONDS": "3"}, ["BOOKING_ORPHAN_CHECK_SECONDS"]),
    ],
)
def test_a_wrong_value_fails_naming_the_variable(env: dict[str, str], named: list[str]) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    for var in named:
        assert var in str(refused.value)


def test_a_field_added_without_a_table_entry_reads_its_upper_case_name() -> None:
    class Extended(Settings):
        amqp_urls: str = ""

    assert Extended.from_env({"AMQP_URLS": "amqp://a,amqp://b"}).amqp_urls == "amqp://a,amqp://b"


@pytest.mark.parametrize(
    ("module", "env"),
    [
        ("services.booking", {"GUAHAO_RPC_TIMEOUT": "soon"}),
        ("gateway", {"GATEWAY_PORT": "eighty"}),
        ("services.notify", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}),
    ],
)
def test_a_process_with_a_wrong_value_stops_at_start_naming_it(
    module: str, env: dict[str, str]
) -> None:
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    [var] = env
    assert var in done.stderr and "cannot start" in done.stderr
