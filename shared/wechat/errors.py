"""The two ways a WeChat call fails: WeChat said no, or WeChat could not be reached."""

from __future__ import annotations


class WechatApiError(Exception):
    """WeChat answered HTTP 200 with a non-zero `errcode` (a business refusal)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        super().__init__(f"wechat errcode {errcode}: {errmsg}")


class WechatUnavailable(Exception):
    """No usable answer: network error, timeout, non-200 status or an unparsable reply."""


class PayUnavailable(Exception):
    """WeChat Pay gave no trustworthy answer: timeout, connection error, 5xx, 429, or a
    response whose signature does not verify. The outcome is unknown: retry later."""


class PayRejected(Exception):
    """WeChat Pay refused the request (4xx with a verified signature), e.g. ORDERPAID,
    ORDER_CLOSED, PARAM_ERROR, INVALID_REQUEST, ORDER_NOT_EXIST, RESOURCE_NOT_EXISTS."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"wechat pay HTTP {status} {code}: {message}")


class InvalidNotification(Exception):
    """A notification that cannot be trusted: bad or missing signature, unknown serial,
    stale timestamp, undecryptable or malformed resource. Answer it with 401."""
