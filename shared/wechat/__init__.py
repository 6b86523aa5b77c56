"""WeChat mini-program server API: client, errors and subscribe-keyword rules.

The local fake lives in `shared.wechat.fake` and is deliberately not imported here: it is a
dev/test tool, and `python -m shared.wechat.fake` must not find it already imported.
"""

from shared.wechat.client import Code2Session, PhoneNumber, WechatClient
from shared.wechat.errors import WechatApiError, WechatUnavailable
from shared.wechat.keywords import (
    KNOWN_KEYWORD_TYPES,
    fit_keyword,
    keyword_type,
    validate_keyword,
)

__all__ = [
    "KNOWN_KEYWORD_TYPES",
    "Code2Session",
    "PhoneNumber",
    "WechatApiError",
    "WechatClient",
    "WechatUnavailable",
    "fit_keyword",
    "keyword_type",
    "validate_keyword",
]
