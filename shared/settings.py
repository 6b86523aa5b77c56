"""Process configuration read from the environment (the table in the README)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from shared.wechat.pay import validate_notify_url

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEV_WECHAT_APPID = "wx_dev_guahao"
DEV_WECHAT_SECRET = "dev_secret_guahao"


class Settings(BaseModel):
    """Every knob a guahao process reads; one instance per process, passed down explicitly."""

    model_config = ConfigDict(frozen=True)

    amqp_url: str = DEFAULT_AMQP_URL
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
    shutdown_grace: float = 10.0
    log_level: str = "INFO"
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
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from environment variables; unset ones keep their defaults."""
        e = os.environ if env is None else env
        mapping = {
            "AMQP_URL": "amqp_url",
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
            "PAYMENT_TIMEOUT_SECONDS": "payment_timeout_seconds",
            "PAYMENT_QUERY_AFTER_SECONDS": "payment_query_after_seconds",
            "PAYMENT_QUERY_EVERY_SECONDS": "payment_query_every_seconds",
            "PAYMENT_RETRY_SECONDS": "payment_retry_seconds",
            "GUAHAO_SHUTDOWN_GRACE": "shutdown_grace",
            "GUAHAO_LOG_LEVEL": "log_level",
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
        values = {field: e[var] for var, field in mapping.items() if e.get(var, "") != ""}
        return cls.model_validate(values)

    @model_validator(mode="after")
    def _orphans_outlive_calls(self) -> Settings:
        if self.booking_orphan_check_seconds < 2 * self.rpc_timeout:
            raise ValueError("BOOKING_ORPHAN_CHECK_SECONDS must be at least twice "
                             "GUAHAO_RPC_TIMEOUT: a booking still running must never look "
                             "abandoned")
        return self

    @model_validator(mode="after")
    def _wechatpay_reachable(self) -> Settings:
        if self.wechatpay_notify_url is not None:
            validate_notify_url(self.wechatpay_notify_url)
        if self.wechatpay_apiv3_key is not None and (
                len(self.wechatpay_apiv3_key) != 32 or not self.wechatpay_apiv3_key.isascii()):
            raise ValueError("WECHATPAY_APIV3_KEY must be 32 ASCII characters")
        return self

    def database_name(self, service: str) -> str:
        """The MongoDB database a service owns (`guahao_<service>`)."""
        return f"{self.mongo_db_prefix}{service}"
