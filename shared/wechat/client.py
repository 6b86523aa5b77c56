"""A thin aiohttp client for the WeChat mini-program server API.

It never logs or puts into an exception message a session_key, access token, login or
phone code, phone number or the app secret: request URLs carry some of them, so transport
errors are re-raised without their original text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from shared.wechat.errors import WechatApiError, WechatUnavailable

log = logging.getLogger("guahao.wechat")

TOKEN_RENEW_MARGIN = 300.0
_TOKEN_REJECTED = frozenset({40001, 42001})


@dataclass(frozen=True)
class Code2Session:
    """The result of exchanging a `wx.login` code."""

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


@dataclass(frozen=True)
class PhoneNumber:
    """The phone number a user agreed to share through `getPhoneNumber`."""

    phone_number: str = field(repr=False)
    pure_phone_number: str = field(repr=False)
    country_code: str


class WechatClient:
    """Calls WeChat on behalf of one mini-program (`appid`), caching its access token.

    One instance per process: it keeps the token and allows one token refresh in flight.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        appid: str,
        secret: str,
        api_base: str,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._appid = appid
        self._secret = secret
        self._api_base = api_base.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._token: str | None = None
        self._token_renew_at = 0.0
        self._refresh: asyncio.Task[str] | None = None

    async def code2session(self, js_code: str) -> Code2Session:
        """Exchange a `wx.login` code for the user's openid and session key.

        Retries once when WeChat says it is busy (-1); raises `WechatApiError` for any
        other refusal (40029 invalid or expired code, 40163 code already used, …).
        """
        params = {
            "appid": self._appid,
            "secret": self._secret,
            "js_code": js_code,
            "grant_type": "authorization_code",
        }
        try:
            reply = await self._call("GET", "/sns/jscode2session", params=params)
        except WechatApiError as exc:
            if exc.errcode != -1:
                raise
            log.debug("wechat busy on code2session; retrying once")
            reply = await self._call("GET", "/sns/jscode2session", params=params)
        try:
            unionid = reply.get("unionid")
            return Code2Session(
                openid=str(reply["openid"]),
                session_key=str(reply["session_key"]),
                unionid=None if unionid is None else str(unionid),
            )
        except KeyError as exc:
            raise WechatUnavailable(f"code2session reply lacks {exc.args[0]}") from None

    async def access_token(self) -> str:
        """The access token, cached until 5 minutes before it expires, then re-fetched.

        Concurrent callers during a refresh share one in-flight request.
        """
        if self._token is not None and self._clock() < self._token_renew_at:
            return self._token
        if self._refresh is None:
            self._refresh = asyncio.ensure_future(self._fetch_token())
            self._refresh.add_done_callback(self._refresh_finished)
        # shielded: a cancelled caller must not cancel the refresh the others wait for
        return await asyncio.shield(self._refresh)

    async def invalidate_token(self, token: str) -> None:
        """Forget `token` if it is still the cached one (WeChat rejected it)."""
        if self._token == token:
            self._token = None
            log.debug("wechat access token invalidated")

    async def send_subscribe_message(
        self,
        *,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        page: str | None = None,
        miniprogram_state: str | None = None,
        lang: str = "zh_CN",
    ) -> int:
        """Send a subscribe message and return its msgid.

        `data` maps keyword keys to values. Raises `WechatApiError` for refusals such as
        43101 (no quota), 47003 (bad value), 40003 (bad openid), 40037 (bad template).
        """
        body: dict[str, Any] = {
            "touser": touser,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
            "lang": lang,
        }
        if page is not None:
            body["page"] = page
        if miniprogram_state is not None:
            body["miniprogram_state"] = miniprogram_state
        reply = await self._call_with_token("/cgi-bin/message/subscribe/send", body)
        try:
            return int(reply["msgid"])
        except (KeyError, TypeError, ValueError):
            raise WechatUnavailable("subscribe send reply lacks msgid") from None

    async def get_phone_number(self, code: str) -> PhoneNumber:
        """Exchange a `getPhoneNumber` code for the user's phone number."""
        reply = await self._call_with_token("/wxa/business/getuserphonenumber", {"code": code})
        try:
            info = reply["phone_info"]
            return PhoneNumber(
                phone_number=str(info["phoneNumber"]),
                pure_phone_number=str(info["purePhoneNumber"]),
                country_code=str(info["countryCode"]),
            )
        except (KeyError, TypeError):
            raise WechatUnavailable("phone number reply is incomplete") from None

    async def msg_sec_check(self, *, openid: str, content: str, scene: int = 2) -> str:
        """The content-safety verdict on `content`: "pass", "review" or "risky"."""
        body = {"version": 2, "openid": openid, "scene": scene, "content": content}
        reply = await self._call_with_token("/wxa/msg_sec_check", body)
        try:
            return str(reply["result"]["suggest"])
        except (KeyError, TypeError):
            raise WechatUnavailable("msg_sec_check reply lacks result.suggest") from None

    async def _fetch_token(self) -> str:
        body = {
            "grant_type": "client_credential",
            "appid": self._appid,
            "secret": self._secret,
            "force_refresh": False,
        }
        reply = await self._call("POST", "/cgi-bin/stable_token", json_body=body)
        try:
            token, expires_in = str(reply["access_token"]), float(reply["expires_in"])
        except (KeyError, TypeError, ValueError):
            raise WechatUnavailable("stable_token reply is incomplete") from None
        self._token = token
        self._token_renew_at = self._clock() + max(expires_in - TOKEN_RENEW_MARGIN, 0.0)
        log.debug("wechat access token refreshed", extra={"expires_in": expires_in})
        return token

    def _refresh_finished(self, task: asyncio.Task[str]) -> None:
        if self._refresh is task:
            self._refresh = None
        if not task.cancelled():
            task.exception()  # marks the failure seen even if every waiter was cancelled

    async def _call_with_token(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._call("POST", path, params={"access_token": token}, json_body=body)
        except WechatApiError as exc:
            if exc.errcode not in _TOKEN_REJECTED:
                raise
            log.debug("wechat rejected the access token", extra={"errcode": exc.errcode})
            await self.invalidate_token(token)
        token = await self.access_token()
        return await self._call("POST", path, params={"access_token": token}, json_body=body)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One request; the reply as a dict, `WechatApiError` for a non-zero errcode."""
        try:
            async with self._session.request(
                method, self._api_base + path, params=params, json=json_body, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    raise WechatUnavailable(f"{path}: HTTP {resp.status}")
                # jscode2session answers text/plain, which resp.json() refuses
                text = await resp.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise WechatUnavailable(f"{path}: {type(exc).__name__}") from None
        try:
            reply = json.loads(text)
        except ValueError:
            raise WechatUnavailable(f"{path}: reply is not JSON") from None
        if not isinstance(reply, dict):
            raise WechatUnavailable(f"{path}: reply is not a JSON object")
        errcode = reply.get("errcode", 0)
        if errcode != 0:
            if not isinstance(errcode, int):
                raise WechatUnavailable(f"{path}: errcode is not a number")
            raise WechatApiError(errcode, str(reply.get("errmsg", "")))
        return reply
