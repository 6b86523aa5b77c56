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
