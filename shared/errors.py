"""The error codes of the public contract as typed domain errors.

Services raise these; RPC carries `{"error": {"code", "message", "details"}}`; the gateway
maps the code back to the HTTP status of the contract.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A failure the caller is meant to see, with its contract code and HTTP status."""

    code: ClassVar[str] = "INTERNAL"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "内部错误 / internal error"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    def to_wire(self) -> dict[str, Any]:
        """The `error` object of the contract."""
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequest(DomainError):
    code, status, default_message = "BAD_REQUEST", 400, "请求格式错误 / malformed request"


class Unauthenticated(DomainError):
    code, status, default_message = "UNAUTHENTICATED", 401, "请先登录 / authentication required"


class TokenExpired(DomainError):
    code, status, default_message = "TOKEN_EXPIRED", 401, "登录已过期 / token expired"


class Forbidden(DomainError):
    code, status, default_message = "FORBIDDEN", 403, "无权操作 / forbidden"


class PasswordChangeRequired(DomainError):
    code, status, default_message = (
        "PASSWORD_CHANGE_REQUIRED",
        403,
        "请先修改密码 / change your password first",
    )


class PatientBanned(DomainError):
    code, status, default_message = "PATIENT_BANNED", 403, "爽约次数过多，暂停预约 / banned"


class NotFound(DomainError):
    code, status, default_message = "NOT_FOUND", 404, "不存在 / not found"


class SlotFull(DomainError):
    code, status, default_message = "SLOT_FULL", 409, "号源已约满 / slot is full"


class AlreadyBooked(DomainError):
    code, status, default_message = "ALREADY_BOOKED", 409, "已有同科室当日预约 / already booked"


class BookingNotOpen(DomainError):
    code, status, default_message = "BOOKING_NOT_OPEN", 409, "尚未放号 / booking not open yet"


class BookingClosed(DomainError):
    code, status, default_message = "BOOKING_CLOSED", 409, "预约已截止 / booking closed"


class ScheduleStopped(DomainError):
    code, status, default_message = "SCHEDULE_STOPPED", 409, "该出诊已停诊 / clinic stopped"


class CancelDeadlinePassed(DomainError):
    code, status, default_message = (
        "CANCEL_DEADLINE_PASSED",
        409,
        "已过取消截止时间 / cancellation deadline passed",
    )


class LimitReached(DomainError):
    code, status, default_message = "LIMIT_REACHED", 409, "已达上限 / limit reached"


class InvalidState(DomainError):
    code, status, default_message = "INVALID_STATE", 409, "当前状态不允许该操作 / invalid state"


class IdempotencyKeyReused(DomainError):
    code, status, default_message = (
        "IDEMPOTENCY_KEY_REUSED",
        409,
        "幂等键已用于其他请求 / idempotency key reused",
    )


class Conflict(DomainError):
    code, status, default_message = "CONFLICT", 409, "已存在 / already exists"


class PayloadTooLarge(DomainError):
    code, status, default_message = "PAYLOAD_TOO_LARGE", 413, "请求体过大 / payload too large"


class ValidationFailed(DomainError):
    code, status, default_message = "VALIDATION_FAILED", 422, "参数校验失败 / validation failed"

    @classmethod
    def field(cls, name: str, message: str) -> ValidationFailed:
        """A validation failure on one field, in the `details.fields` shape of the contract."""
        return cls(fields={name: message})


class RateLimited(DomainError):
    code, status, default_message = "RATE_LIMITED", 429, "请求过于频繁 / too many requests"

    @property
    def retry_after(self) -> int:
        """Seconds the client should wait (`Retry-After`)."""
        return max(1, int(self.details.get("retry_after", 1)))


class WechatError(DomainError):
    code, status, default_message = "WECHAT_ERROR", 502, "微信服务异常 / WeChat error"


class ServiceUnavailable(DomainError):
    code, status, default_message = (
        "SERVICE_UNAVAILABLE",
        503,
        "服务暂不可用，请稍后重试 / service unavailable",
    )


class Internal(DomainError):
    code, status, default_message = "INTERNAL", 500, "内部错误 / internal error"


ERRORS_BY_CODE: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        TokenExpired,
        Forbidden,
        PasswordChangeRequired,
        PatientBanned,
        NotFound,
        SlotFull,
        AlreadyBooked,
        BookingNotOpen,
        BookingClosed,
        ScheduleStopped,
        CancelDeadlinePassed,
        LimitReached,
        InvalidState,
        IdempotencyKeyReused,
        Conflict,
        PayloadTooLarge,
        ValidationFailed,
        RateLimited,
        WechatError,
        ServiceUnavailable,
        Internal,
    )
}


def error_from_wire(error: dict[str, Any]) -> DomainError:
    """Rebuild the typed error a remote service raised from its RPC reply."""
    cls = ERRORS_BY_CODE.get(str(error.get("code")), Internal)
    details = error.get("details") or {}
    exc = cls(str(error.get("message") or cls.default_message), **details)
    return exc
