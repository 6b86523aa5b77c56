"""A local stand-in for the WeChat server API, plus test-control endpoints under /__fake__/.

Behaves as /work/shared/wechat.md describes (codes live 5 minutes and serve once, stable
tokens overlap for 5 minutes, one-time subscribe quota, keyword value rules) on a virtual
clock that tests can advance. Run it with

    python -m shared.wechat.fake --host 127.0.0.1 --port 0 --appid A --secret S
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from shared.wechat.keywords import validate_keyword
from shared.wechat.serving import control_body, serve_until_signalled

CODE_TTL = 300.0
TOKEN_TTL = 7200.0
TOKEN_RENEW_WINDOW = 300.0
FORCE_REFRESH_GAP = 30.0
FORCE_REFRESH_PER_DAY = 20
FAILABLE_ENDPOINTS = frozenset(
    {"jscode2session", "stable_token", "subscribe_send", "getuserphonenumber", "msg_sec_check"}
)
_ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    41030: "invalid page",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    47001: "data format error",
}


MINIPROGRAM_APP_JSON = Path(__file__).resolve().parents[2] / "miniprogram" / "app.json"


def miniprogram_pages(app_json: Path = MINIPROGRAM_APP_JSON) -> frozenset[str]:
    """The pages of a mini-program (`pages` plus every subpackage's pages) from its app.json:
    the only pages a subscribe message may open, as in the released version on WeChat."""
    config = json.loads(app_json.read_text(encoding="utf-8"))
    pages = set(config.get("pages", []))
    for package in config.get("subPackages", config.get("subpackages", [])):
        root = package["root"].rstrip("/")
        pages.update(f"{root}/{page}" for page in package.get("pages", []))
    return frozenset(pages)


@dataclass(frozen=True)
class FakeTemplate:
    """A subscribe-message template: its id and the keyword keys its data must fill."""

    template_id: str
    keys: tuple[str, ...]


_VISIT_KEYS = ("thing1", "time2", "name3")  # doctor/department, visit time, patient
DEFAULT_TEMPLATES: dict[str, FakeTemplate] = {
    "booking_confirmed": FakeTemplate(
        "tmpl_booking_confirmed", (*_VISIT_KEYS, "character_string4", "thing5")
    ),
    "appointment_cancelled": FakeTemplate("tmpl_appointment_cancelled", (*_VISIT_KEYS, "thing4")),
    "appointment_moved": FakeTemplate("tmpl_appointment_moved", (*_VISIT_KEYS, "thing4")),
    "visit_reminder": FakeTemplate("tmpl_visit_reminder", (*_VISIT_KEYS, "thing4")),
    "waitlist_promoted": FakeTemplate(
        "tmpl_waitlist_promoted", (*_VISIT_KEYS, "character_string4")
    ),
    # 候诊提醒: the patient's turn is near (3 or fewer ahead)
    "queue_near": FakeTemplate("tmpl_queue_near", (*_VISIT_KEYS, "character_string4", "thing5")),
}


class FakeError(Exception):
    """A WeChat business error: HTTP 200 with errcode and errmsg."""

    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or _ERRMSG.get(errcode, "injected failure")


@dataclass
class _Code:
    subject: str
    issued_at: float
    country_code: str = "86"
    used: bool = False


@dataclass
class _Token:
    value: str
    expires_at: float
    killed: bool = False


@dataclass
class _Failure:
    endpoint: str
    errcode: int | str
    times: int


class FakeWechat:
    """All state of the fake; its clock is real time plus an offset tests can advance."""

    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        templates: Iterable[FakeTemplate],
        allowed_pages: Iterable[str] | None,
        blocklist: Iterable[str],
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.templates = {template.template_id: template for template in templates}
        self.allowed_pages = None if allowed_pages is None else frozenset(allowed_pages)
        self.blocklist = tuple(blocklist)
        self.reset()

    def reset(self) -> None:
        """Forget users, codes, tokens, quota, messages, failures and counts; clock to now."""
        self.clock_offset = 0.0
        self.users: dict[str, str | None] = {}
        self.login_codes: dict[str, _Code] = {}
        self.phone_codes: dict[str, _Code] = {}
        self.tokens: dict[str, _Token] = {}
        self.current_token: _Token | None = None
        self.force_refreshes: list[float] = []
        self.quota: dict[tuple[str, str], int] = {}
        self.messages: list[dict[str, Any]] = []
        self.failures: list[_Failure] = []
        self.calls: Counter[str] = Counter()
        self.msgids = itertools.count(1)

    def now(self) -> float:
        """The virtual time that codes and tokens expire by."""
        return time.time() + self.clock_offset

    def mint_code(self, book: dict[str, _Code], subject: str, country_code: str = "86") -> str:
        """A fresh one-use code for `subject`, valid for 5 virtual minutes."""
        code = secrets.token_hex(16)
        book[code] = _Code(subject, self.now(), country_code)
        return code

    def redeem(self, book: dict[str, _Code], code: str, *, reused_errcode: int) -> _Code:
        """Spend `code`, or raise 40029 (unknown or expired) or `reused_errcode`."""
        entry = book.get(code)
        if entry is None or self.now() - entry.issued_at > CODE_TTL:
            raise FakeError(40029)
        if entry.used:
            raise FakeError(reused_errcode)
        entry.used = True
        return entry

    def take_failure(self, endpoint: str) -> int | str | None:
        """The injected failure for this call of `endpoint`, if one is pending."""
        for failure in self.failures:
            if failure.endpoint in (endpoint, "*"):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return failure.errcode
        return None

    def check_token(self, value: str | None) -> None:
        """Raise 41001 (missing), 40001 (unknown or killed) or 42001 (expired)."""
        if not value:
            raise FakeError(41001)
        token = self.tokens.get(value)
        if token is None or token.killed:
            raise FakeError(40001)
        if self.now() >= token.expires_at:
            raise FakeError(42001)

    def stable_token(self, *, force: bool) -> _Token:
        """The current token, renewed in its last 5 minutes or at once when forced."""
        now = self.now()
        if force:
            recent = [at for at in self.force_refreshes if now - at < 86400]
            if len(recent) >= FORCE_REFRESH_PER_DAY or (
                recent and now - recent[-1] < FORCE_REFRESH_GAP
            ):
                raise FakeError(45009)
            self.force_refreshes = [*recent, now]
            if self.current_token is not None:
                self.current_token.killed = True
        elif self.current_token and now < self.current_token.expires_at - TOKEN_RENEW_WINDOW:
            return self.current_token
        token = _Token(f"fake_{secrets.token_urlsafe(32)}", now + TOKEN_TTL)
        self.tokens[token.value] = token
        self.current_token = token
        return token


FAKE_WECHAT = web.AppKey("fake_wechat", FakeWechat)
_Handler = Callable[[web.Request, FakeWechat], Awaitable[dict[str, Any]]]


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _wechat_endpoint(
    name: str, handler: _Handler, *, needs_token: bool = True, plain_text: bool = False
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wraps a handler with call counting, failure injection, token check and errcodes."""

    async def endpoint(request: web.Request) -> web.Response:
        fake = request.app[FAKE_WECHAT]
        fake.calls[name] += 1
        try:
            failure = fake.take_failure(name)
            if failure == "network":
                return web.Response(status=503, text="service unavailable")
            if isinstance(failure, int):
                raise FakeError(failure)
            if needs_token:
                fake.check_token(request.query.get("access_token"))
            reply = await handler(request, fake)
        except FakeError as exc:
            reply = {"errcode": exc.errcode, "errmsg": f"{exc.errmsg}, rid: {_rid()}"}
        content_type = "text/plain" if plain_text else "application/json"
        return web.Response(text=json.dumps(reply, ensure_ascii=False), content_type=content_type)

    return endpoint


async def _json_body(request: web.Request, errcode: int = 47001) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except ValueError:
        raise FakeError(errcode) from None
    if not isinstance(body, dict):
        raise FakeError(errcode)
    return body


def _check_app(appid: object, secret: object, fake: FakeWechat) -> None:
    if not appid:
        raise FakeError(41002)
    if not secret:
        raise FakeError(41004)
    if appid != fake.appid:
        raise FakeError(40013)
    if secret != fake.secret:
        raise FakeError(40125)


async def _jscode2session(request: web.Request, fake: FakeWechat) -> dict[str, Any]:
    query = request.query
    _check_app(query.get("appid"), query.get("secret"), fake)
    if not query.get("js_code"):
        raise FakeError(41008)
    openid = fake.redeem(fake.login_codes, query["js_code"], reused_errcode=40163).subject
    fake.users.setdefault(openid, None)
    reply = {"openid": openid, "session_key": base64.b64encode(secrets.token_bytes(16)).decode()}
    if unionid := fake.users[openid]:
        reply["unionid"] = unionid
    return reply


async def _stable_token(request: web.Request, fake: FakeWechat) -> dict[str, Any]:
    body = await _json_body(request, errcode=41002)  # a form body reads as "appid missing"
    _check_app(body.get("appid"), body.get("secret"), fake)
    if body.get("grant_type") != "client_credential":
        raise FakeError(40002)
    token = fake.stable_token(force=body.get("force_refresh") is True)
    return {"access_token": token.value, "expires_in": int(token.expires_at - fake.now())}


async def _subscribe_send(request: web.Request, fake: FakeWechat) -> dict[str, Any]:
    body = await _json_body(request)
    touser, template_id, page = body.get("touser"), body.get("template_id"), body.get("page")
    if not isinstance(touser, str) or touser not in fake.users:
        raise FakeError(40003)
    template = fake.templates.get(template_id) if isinstance(template_id, str) else None
    if template is None:
        raise FakeError(40037)
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    for key in template.keys:
        entry = data.get(key)
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(value, str) or validate_keyword(key, value) is not None:
            raise FakeError(47003, f"argument invalid! data.{key}.value invalid")
    if page is not None and fake.allowed_pages is not None:
        if str(page).split("?", 1)[0] not in fake.allowed_pages:
            raise FakeError(41030)
    if fake.quota.get((touser, template.template_id), 0) <= 0:
        raise FakeError(43101)
    fake.quota[(touser, template.template_id)] -= 1
    msgid = next(fake.msgids)
    fake.messages.append(
        {
            "touser": touser,
            "template_id": template.template_id,
            "page": page,
            "data": data,
            "miniprogram_state": body.get("miniprogram_state"),
            "lang": body.get("lang"),
            "msgid": msgid,
            "at": fake.now(),
        }
    )
    return {"errcode": 0, "errmsg": "ok", "msgid": msgid}


async def _get_phone_number(request: web.Request, fake: FakeWechat) -> dict[str, Any]:
    code = (await _json_body(request)).get("code")
    code = code if isinstance(code, str) else ""
    entry = fake.redeem(fake.phone_codes, code, reused_errcode=40029)
    pure, country = entry.subject, entry.country_code
    return {
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": pure if country == "86" else f"+{country}{pure}",
            "purePhoneNumber": pure,
            "countryCode": country,
            "watermark": {"timestamp": int(fake.now()), "appid": fake.appid},
        },
    }


async def _msg_sec_check(request: web.Request, fake: FakeWechat) -> dict[str, Any]:
    body = await _json_body(request)
    content = body.get("content")
    if body.get("version") != 2 or body.get("scene") not in (1, 2, 3, 4):
        raise FakeError(47001)
    if not isinstance(content, str):
        raise FakeError(47001)
    if not isinstance(body.get("openid"), str) or body["openid"] not in fake.users:
        raise FakeError(40003)
    risky = any(word in content for word in fake.blocklist)
    return {
        "errcode": 0,
        "errmsg": "ok",
        "trace_id": _rid(),
        "result": {"suggest": "risky" if risky else "pass", "label": 20001 if risky else 100},
    }


def _field(body: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise web.HTTPBadRequest(text=f"{name} must be {kind.__name__}")
    return value


async def _mint_login_code(request: web.Request) -> web.Response:
    fake, body = request.app[FAKE_WECHAT], await control_body(request)
    openid = _field(body, "openid", str)
    unionid = body.get("unionid")
    fake.users[openid] = unionid if isinstance(unionid, str) else fake.users.get(openid)
    return web.json_response({"code": fake.mint_code(fake.login_codes, openid)})


async def _mint_phone_code(request: web.Request) -> web.Response:
    fake, body = request.app[FAKE_WECHAT], await control_body(request)
    phone, country = _field(body, "phone_number", str), str(body.get("country_code", "86"))
    return web.json_response({"code": fake.mint_code(fake.phone_codes, phone, country)})


async def _list_messages(request: web.Request) -> web.Response:
    wanted = {key: request.query[key] for key in ("touser", "template_id") if key in request.query}
    items = [
        message
        for message in request.app[FAKE_WECHAT].messages
        if all(message[key] == value for key, value in wanted.items())
    ]
    return web.json_response({"items": items})


async def _clear_messages(request: web.Request) -> web.Response:
    request.app[FAKE_WECHAT].messages.clear()
    return web.json_response({"items": []})


async def _set_quota(request: web.Request) -> web.Response:
    fake, body = request.app[FAKE_WECHAT], await control_body(request)
    key = (_field(body, "openid", str), _field(body, "template_id", str))
    fake.quota[key] = _field(body, "count", int)
    return web.json_response({"count": fake.quota[key]})


async def _get_quota(request: web.Request) -> web.Response:
    key = (request.query.get("openid", ""), request.query.get("template_id", ""))
    return web.json_response({"count": request.app[FAKE_WECHAT].quota.get(key, 0)})


async def _inject_failure(request: web.Request) -> web.Response:
    fake, body = request.app[FAKE_WECHAT], await control_body(request)
    endpoint, errcode = body.get("endpoint"), body.get("errcode")
    if endpoint != "*" and endpoint not in FAILABLE_ENDPOINTS:
        known = ", ".join(sorted(FAILABLE_ENDPOINTS))
        raise web.HTTPBadRequest(text=f"endpoint must be '*' or one of {known}")
    if errcode != "network" and (not isinstance(errcode, int) or isinstance(errcode, bool)):
        raise web.HTTPBadRequest(text='errcode must be an integer or "network"')
    times = body.get("times", 1)
    if not isinstance(times, int) or times < 1:
        raise web.HTTPBadRequest(text="times must be a positive integer")
    fake.failures.append(_Failure(endpoint, errcode, times))
    return web.json_response({"pending": [vars(failure) for failure in fake.failures]})


async def _advance_clock(request: web.Request) -> web.Response:
    fake, body = request.app[FAKE_WECHAT], await control_body(request)
    seconds = body.get("advance_seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise web.HTTPBadRequest(text="advance_seconds must be a number")
    fake.clock_offset += seconds
    return web.json_response({"now": fake.now()})


async def _stats(request: web.Request) -> web.Response:
    fake = request.app[FAKE_WECHAT]
    token = fake.current_token.value if fake.current_token else None
    return web.json_response({"calls": dict(fake.calls), "access_token": token, "now": fake.now()})


async def _reset(request: web.Request) -> web.Response:
    request.app[FAKE_WECHAT].reset()
    return web.json_response({"ok": True})


def create_fake_app(
    *,
    appid: str,
    secret: str,
    templates: Iterable[FakeTemplate] = DEFAULT_TEMPLATES.values(),
    allowed_pages: Iterable[str] | None = None,
    blocklist: Iterable[str] = ("违禁词",),
) -> web.Application:
    """The fake WeChat server for one mini-program (`appid`, `secret`).

    `allowed_pages` is the set of pages a subscribe message may open (41030 otherwise); by
    default the pages of the project's `miniprogram/app.json`, as real WeChat checks the
    page against the released version. `blocklist` holds the words that make
    `msg_sec_check` answer "risky".
    """
    if allowed_pages is None:
        allowed_pages = miniprogram_pages()
    app = web.Application()
    app[FAKE_WECHAT] = FakeWechat(
        appid=appid,
        secret=secret,
        templates=templates,
        allowed_pages=allowed_pages,
        blocklist=blocklist,
    )
    add_get, add_post = app.router.add_get, app.router.add_post
    add_get(
        "/sns/jscode2session",
        _wechat_endpoint("jscode2session", _jscode2session, needs_token=False, plain_text=True),
    )
    add_post(
        "/cgi-bin/stable_token", _wechat_endpoint("stable_token", _stable_token, needs_token=False)
    )
    add_post("/cgi-bin/message/subscribe/send", _wechat_endpoint("subscribe_send", _subscribe_send))
    add_post(
        "/wxa/business/getuserphonenumber",
        _wechat_endpoint("getuserphonenumber", _get_phone_number),
    )
    add_post("/wxa/msg_sec_check", _wechat_endpoint("msg_sec_check", _msg_sec_check))
    add_post("/__fake__/codes", _mint_login_code)
    add_post("/__fake__/phone_codes", _mint_phone_code)
    add_get("/__fake__/messages", _list_messages)
    app.router.add_delete("/__fake__/messages", _clear_messages)
    add_post("/__fake__/quota", _set_quota)
    add_get("/__fake__/quota", _get_quota)
    add_post("/__fake__/failures", _inject_failure)
    add_post("/__fake__/clock", _advance_clock)
    add_get("/__fake__/stats", _stats)
    add_post("/__fake__/reset", _reset)
    return app


async def _serve(args: argparse.Namespace) -> None:
    pages = args.allowed_page or miniprogram_pages(Path(args.app_json))
    app = create_fake_app(appid=args.appid, secret=args.secret, allowed_pages=pages)
    await serve_until_signalled(app, host=args.host, port=args.port, name="wechat-fake")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: serve the fake until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m shared.wechat.fake", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--appid", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument(
        "--allowed-page",
        action="append",
        help="a page messages may open (default: the pages of --app-json)",
    )
    parser.add_argument(
        "--app-json",
        default=str(MINIPROGRAM_APP_JSON),
        help="the mini-program's app.json whose pages messages may open",
    )
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
