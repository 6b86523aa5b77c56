"""Process configuration read from the environment (the table in the README), through
pydantic-settings: each field is read from its variable (`ENV_VARS`; a field not listed
there from its name in upper case), an empty variable means the default, and a value that
does not parse stops the process at start with the variable's name (`SettingsError`)."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from pydantic import AliasGenerator, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from shared.wechat.pay import validate_notify_url

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEV_WECHAT_APPID = "wx_dev_guahao"
DEV_WECHAT_SECRET = "dev_secret_guahao"

# variable → field for every setting (a field added without an entry here is read from its
# name in upper case: `amqp_urls` from AMQP_URLS)
ENV_VARS: dict[str, str] = {
    "AMQP_URL": "amqp_url",
    "AMQP_URLS": "amqp_urls",
    "MONGO_URL": "mongo_url",
    "GUAHAO_DATA_DIR": "data_dir",
    "GATEWAY_HOST": "gateway_host",
    "GATEWAY_PORT": "gateway_port",
    "WECHAT_APPID": "wechat_appid",
    "WECHAT_SECRET": "wechat_secret",
    "WECHAT_API_BASE": "wechat_api_base",
    "WECHAT_TEMPLATES": "wechat_templates",
    "GUAHAO_ADMIN_USERNAME": "admin_username",
    "GUAHAO_ADMIN_PASSWORD": "admin_password",
    "GUAHAO_DEMO": "demo",
    "GUAHAO_JWT_PRIVATE_KEY": "jwt_private_key",
    "GUAHAO_PII_KEY": "pii_key",
    "GUAHAO_RPC_TIMEOUT": "rpc_timeout",
    "BOOKING_ORPHAN_CHECK_SECONDS": "booking_orphan_check_seconds",
    "GUAHAO_SHUTDOWN_GRACE": "shutdown_grace",
    "GUAHAO_LOG_LEVEL": "log_level",
    "GUAHAO_LOG_FORMAT": "log_format",
    "GUAHAO_MONGO_DB_PREFIX": "mongo_db_prefix",
    "NOTIFY_REMINDER_HOUR": "reminder_hour",
    "NOTIFY_CLOCK_OFFSET_SECONDS": "notify_clock_offset_seconds",
    "NOTIFY_WECHAT_SEND_RETRIES": "wechat_send_retries",
    "NOTIFY_WECHAT_RETRY_BASE_SECONDS": "wechat_retry_base_seconds",
    "WEBHOOK_ALLOW_HTTP": "webhook_allow_http",
    "WEBHOOK_ALLOW_PRIVATE": "webhook_allow_private",
    "WEBHOOK_RETRY_BASE_SECONDS": "webhook_retry_base_seconds",
    "WEBHOOK_MAX_ATTEMPTS": "webhook_max_attempts",
    "WEBHOOK_TIMEOUT_SECONDS": "webhook_timeout_seconds",
    "GUAHAO_WEBHOOK_KEY": "webhook_secret_key",
    "GUAHAO_TRUSTED_PROXIES": "trusted_proxies",
    "GUAHAO_OPS_PORT": "ops_port",
    "GUAHAO_RATE_LIMITS": "rate_limits",
    "GUAHAO_RPC_KEY": "rpc_key",
    "GUAHAO_JWT_PUBLIC_KEYS": "jwt_public_keys",
    "GUAHAO_CONSOLE_DIR": "console_dir",
    "PAYMENT_TIMEOUT_SECONDS": "payment_timeout_seconds",
    "PAYMENT_QUERY_AFTER_SECONDS": "payment_query_after_seconds",
    "PAYMENT_QUERY_EVERY_SECONDS": "payment_query_every_seconds",
    "PAYMENT_RETRY_SECONDS": "payment_retry_seconds",
    "PAYMENT_SETTLEMENT_LEASE_SECONDS": "payment_settlement_lease_seconds",
    "WECHATPAY_API_BASE": "wechatpay_api_base",
    "WECHATPAY_MCHID": "wechatpay_mchid",
    "WECHATPAY_MERCHANT_SERIAL": "wechatpay_merchant_serial",
    "WECHATPAY_MERCHANT_KEY": "wechatpay_merchant_key",
    "WECHATPAY_APIV3_KEY": "wechatpay_apiv3_key",
    "WECHATPAY_PUBLIC_KEY": "wechatpay_public_key",
    "WECHATPAY_PUBLIC_KEY_ID": "wechatpay_public_key_id",
    "WECHATPAY_NOTIFY_URL": "wechatpay_notify_url",
    "WECHATPAY_PLATFORM_CERTIFICATES": "wechatpay_platform_certificates",
}
_VAR_OF = {field: var for var, field in ENV_VARS.items()}


def env_var(field: str) -> str:
    """The environment variable a field is read from."""
    return _VAR_OF.get(field, field.upper())


class SettingsError(ValueError):
    """A variable whose value the process cannot run with; the message names it."""


# the variables `Settings()` reads: none (defaults and keywords only) unless `from_env`
_NO_VARIABLES: Mapping[str, str] = MappingProxyType({})
_environ: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "settings_environ", default=_NO_VARIABLES
)


class _Environ(EnvSettingsSource):
    """pydantic-settings' environment source over the mapping `from_env` was given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            _environ.get(), self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class Settings(BaseSettings):
    """Every knob a guahao process reads; one instance per process, passed down explicitly.
    `Settings.from_env()` reads the environment; `Settings(field=…)` takes defaults and the
    given values only (tests)."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        alias_generator=AliasGenerator(validation_alias=env_var),
    )

    amqp_url: str = DEFAULT_AMQP_URL
    # the nodes of a RabbitMQ cluster, comma-separated; when set it wins over amqp_url
    amqp_urls: str = ""
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    data_dir: Path = Path(".data")
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    wechat_appid: str = DEV_WECHAT_APPID
    wechat_secret: str = DEV_WECHAT_SECRET
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_templates: str | None = None
    admin_username: str | None = None
    admin_password: str | None = None
    demo: bool = False
    jwt_private_key: str | None = None
    pii_key: str | None = None
    rpc_timeout: float = 5.0
    # a unit held this long by an appointment that does not exist is returned (booking)
    booking_orphan_check_seconds: float = 60.0
    # registration fee (issue 13): `pay_by` after this many seconds instead of the hospital's
    # `payment_timeout_minutes` (0: the rule; system tests only), and the payment jobs' pace
    payment_timeout_seconds: float = 0.0
    payment_query_after_seconds: float = 30.0
    payment_query_every_seconds: float = 60.0
    payment_retry_seconds: float = 30.0
    # how long a dead replica's settlement lease keeps the others from settling (payment)
    payment_settlement_lease_seconds: float = 30.0
    shutdown_grace: float = 10.0
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"  # console: `make run`'s readable lines
    mongo_db_prefix: str = "guahao_"
    reminder_hour: int = 18  # hospital-local hour of the day-before visit reminder
    notify_clock_offset_seconds: float = 0.0
    wechat_send_retries: int = 3
    wechat_retry_base_seconds: float = 1.0
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False
    webhook_retry_base_seconds: float = 40.0
    webhook_max_attempts: int = 6
    webhook_timeout_seconds: float = 10.0
    webhook_secret_key: str | None = None  # base64 of 32 bytes: encrypts webhook secrets
    trusted_proxies: str = ""
    ops_port: int = 9100
    rate_limits: str = ""
    rpc_key: str | None = None  # base64 HMAC key(s) signing RPC requests, first one signs
    jwt_public_keys: str | None = None  # PEM(s), JWKS JSON, or a path to either: the gateway
    console_dir: Path | None = None  # the staff console's build; default console/dist
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"
    wechatpay_mchid: str | None = None
    wechatpay_merchant_serial: str | None = None
    wechatpay_merchant_key: str | None = None  # PEM or a path to it
    wechatpay_apiv3_key: str | None = None
    wechatpay_public_key: str | None = None  # PEM or a path to it
    wechatpay_public_key_id: str | None = None
    wechatpay_notify_url: str | None = None
    wechatpay_platform_certificates: str | None = None  # PEMs or paths, during a switch-over

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environ(settings_cls)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (`env`, default the process's); unset
        or empty ones keep their defaults. Raises SettingsError naming every variable whose
        value is wrong."""
        token = _environ.set(os.environ if env is None else env)
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None
        finally:
            _environ.reset(token)

    @model_validator(mode="after")
    def _orphans_outlive_calls(self) -> Settings:
        if self.booking_orphan_check_seconds < 2 * self.rpc_timeout:
            raise ValueError(
                "BOOKING_ORPHAN_CHECK_SECONDS must be at least twice "
                "GUAHAO_RPC_TIMEOUT: a booking still running must never look "
                "abandoned"
            )
        return self

    @model_validator(mode="after")
    def _wechatpay_reachable(self) -> Settings:
        if self.wechatpay_notify_url is not None:
            validate_notify_url(self.wechatpay_notify_url)
        if self.wechatpay_apiv3_key is not None and (
            len(self.wechatpay_apiv3_key) != 32 or not self.wechatpay_apiv3_key.isascii()
        ):
            raise ValueError("WECHATPAY_APIV3_KEY must be 32 ASCII characters")
        return self

    @property
    def broker_urls(self) -> list[str]:
        """The broker nodes a process connects to, in order: AMQP_URLS, else AMQP_URL."""
        urls = [u.strip() for u in self.amqp_urls.split(",") if u.strip()]
        return urls or [self.amqp_url]

    @property
    def clustered(self) -> bool:
        """Whether the broker is a cluster (several nodes listed): queues are replicated."""
        return len(self.broker_urls) > 1

    def database_name(self, service: str) -> str:
        """The MongoDB database a service owns (`guahao_<service>`)."""
        return f"{self.mongo_db_prefix}{service}"


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = str(error["loc"][0]) if error["loc"] else ""
        if where in Settings.model_fields:
            where = env_var(where)
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "invalid configuration: " + "; ".join(problems)
