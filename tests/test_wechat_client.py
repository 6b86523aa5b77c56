"""WechatClient against the real fake server: retries, token caching and error mapping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from shared.wechat import WechatApiError, WechatClient, WechatUnavailable
from shared.wechat.fake import DEFAULT_TEMPLATES, create_fake_app

APPID, SECRET = "wx_test_app", "test_secret"
OPENID = "o_patient"
BOOKED = DEFAULT_TEMPLATES["booking_confirmed"]
GOOD_DATA = {
    "thing1": "心内科 王医生",
    "time2": "2026年12月1日 08:30",
    "name3": "张三",
    "character_string4": "A-0012",
    "thing5": "请提前15分钟到院",
}

MakeServer = Callable[..., Awaitable[TestServer]]


class ManualClock:
    """The client's clock, moved by hand alongside the fake's virtual clock."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Fake:
    """A running fake and the /__fake__/ calls the tests need."""

    session: aiohttp.ClientSession
    url: str

    async def control(self, method: str, path: str, **body: Any) -> dict[str, Any]:
        params = body if method == "GET" else None
        json_body = None if method == "GET" else body
        async with self.session.request(
            method, f"{self.url}/__fake__/{path}", json=json_body, params=params
        ) as resp:
            assert resp.status == 200, await resp.text()
            reply: dict[str, Any] = await resp.json()
            return reply

    async def login_code(self, openid: str = OPENID) -> str:
        return str((await self.control("POST", "codes", openid=openid))["code"])

    async def grant_quota(self, count: int, openid: str = OPENID) -> None:
        await self.login_code(openid)
        await self.control(
            "POST", "quota", openid=openid, template_id=BOOKED.template_id, count=count
        )

    async def fail_next(self, endpoint: str, errcode: int | str, times: int = 1) -> None:
        await self.control("POST", "failures", endpoint=endpoint, errcode=errcode, times=times)

    async def advance(self, seconds: float) -> None:
        await self.control("POST", "clock", advance_seconds=seconds)

    async def calls(self, endpoint: str) -> int:
        return int((await self.control("GET", "stats"))["calls"].get(endpoint, 0))

    async def messages(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.control("GET", "messages"))["items"]
        return items


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake(aiohttp_server: MakeServer, session: aiohttp.ClientSession) -> Fake:
    server = await aiohttp_server(create_fake_app(appid=APPID, secret=SECRET))
    return Fake(session, str(server.make_url("")).rstrip("/"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(session: aiohttp.ClientSession, fake: Fake, clock: ManualClock) -> WechatClient:
    return WechatClient(session, appid=APPID, secret=SECRET, api_base=fake.url, clock=clock)


async def send(client: WechatClient, **overrides: Any) -> int:
    kwargs: dict[str, Any] = {
        "touser": OPENID,
        "template_id": BOOKED.template_id,
        "data": GOOD_DATA,
    }
    return await client.send_subscribe_message(**{**kwargs, **overrides})


# login


async def test_login_code_exchanges_for_openid_and_session_key(
    client: WechatClient, fake: Fake
) -> None:
    result = await client.code2session(await fake.login_code())
    assert result.openid == OPENID
    assert result.session_key and result.unionid is None
    assert result.session_key not in repr(result)


async def test_second_use_of_a_login_code_is_refused(client: WechatClient, fake: Fake) -> None:
    code = await fake.login_code()
    await client.code2session(code)
    with pytest.raises(WechatApiError) as refused:
        await client.code2session(code)
    assert refused.value.errcode == 40163


async def test_unknown_login_code_is_refused(client: WechatClient) -> None:
    with pytest.raises(WechatApiError) as refused:
        await client.code2session("never-issued")
    assert refused.value.errcode == 40029


async def test_login_code_older_than_five_minutes_is_refused(
    client: WechatClient, fake: Fake
) -> None:
    code = await fake.login_code()
    await fake.advance(301)
    with pytest.raises(WechatApiError) as refused:
        await client.code2session(code)
    assert refused.value.errcode == 40029


async def test_busy_wechat_is_retried_once_and_the_login_succeeds(
    client: WechatClient, fake: Fake
) -> None:
    await fake.fail_next("jscode2session", -1)
    assert (await client.code2session(await fake.login_code())).openid == OPENID
    assert await fake.calls("jscode2session") == 2


async def test_busy_wechat_twice_raises_errcode_minus_one(client: WechatClient, fake: Fake) -> None:
    await fake.fail_next("jscode2session", -1, times=2)
    with pytest.raises(WechatApiError) as refused:
        await client.code2session(await fake.login_code())
    assert refused.value.errcode == -1
    assert await fake.calls("jscode2session") == 2


async def test_other_login_errors_are_not_retried(client: WechatClient, fake: Fake) -> None:
    await fake.fail_next("jscode2session", 40226)
    with pytest.raises(WechatApiError) as refused:
        await client.code2session(await fake.login_code())
    assert refused.value.errcode == 40226
    assert await fake.calls("jscode2session") == 1


# transport failures


async def test_network_failure_raises_wechat_unavailable(client: WechatClient, fake: Fake) -> None:
    await fake.fail_next("*", "network")
    with pytest.raises(WechatUnavailable):
        await client.code2session(await fake.login_code())


async def test_unreachable_wechat_raises_wechat_unavailable(
    session: aiohttp.ClientSession, aiohttp_server: MakeServer
) -> None:
    server = await aiohttp_server(web.Application())
    url = str(server.make_url("")).rstrip("/")
    await server.close()
    client = WechatClient(session, appid=APPID, secret=SECRET, api_base=url)
    with pytest.raises(WechatUnavailable):
        await client.access_token()


async def test_slow_or_garbled_replies_raise_wechat_unavailable(
    session: aiohttp.ClientSession, aiohttp_server: MakeServer
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({})

    async def garbled(request: web.Request) -> web.Response:
        return web.Response(text="<html>gateway</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/sns/jscode2session", slow)
    app.router.add_post("/cgi-bin/stable_token", garbled)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    client = WechatClient(session, appid=APPID, secret=SECRET, api_base=url, timeout=0.05)
    with pytest.raises(WechatUnavailable):
        await client.code2session("any")
    with pytest.raises(WechatUnavailable):
        await client.access_token()


# access token


async def test_access_token_is_cached_across_sends(client: WechatClient, fake: Fake) -> None:
    await fake.grant_quota(5)
    for _ in range(5):
        await send(client)
    assert await fake.calls("stable_token") == 1
    assert await fake.calls("subscribe_send") == 5


async def test_concurrent_token_requests_share_one_stable_token_call(
    client: WechatClient, fake: Fake
) -> None:
    tokens = await asyncio.gather(*(client.access_token() for _ in range(50)))
    assert len(set(tokens)) == 1
    assert await fake.calls("stable_token") == 1


async def test_failed_refresh_fails_every_waiter_and_the_next_call_retries(
    client: WechatClient, fake: Fake
) -> None:
    await fake.fail_next("stable_token", -1)
    results = await asyncio.gather(
        *(client.access_token() for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(result, WechatApiError) for result in results)
    assert await client.access_token()
    assert await fake.calls("stable_token") == 2


async def test_expired_token_is_refreshed_once_and_the_message_delivered_once(
    client: WechatClient, fake: Fake
) -> None:
    await fake.grant_quota(2)
    await send(client)
    await fake.advance(7201)
    msgid = await send(client)
    assert [message["msgid"] for message in await fake.messages()][-1] == msgid
    assert len(await fake.messages()) == 2
    assert await fake.calls("stable_token") == 2
    assert await fake.calls("subscribe_send") == 3


async def test_superseded_token_is_replaced_after_a_40001(
    client: WechatClient, fake: Fake, session: aiohttp.ClientSession
) -> None:
    await fake.grant_quota(1)
    old = await client.access_token()
    body = {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": True,
    }
    async with session.post(f"{fake.url}/cgi-bin/stable_token", json=body) as resp:
        assert (await resp.json(content_type=None))["access_token"] != old
    await send(client)
    assert await client.access_token() != old
    assert len(await fake.messages()) == 1


async def test_token_rejected_twice_gives_up_after_one_refresh(
    client: WechatClient, fake: Fake
) -> None:
    await fake.grant_quota(1)
    await fake.fail_next("subscribe_send", 40001, times=2)
    with pytest.raises(WechatApiError) as refused:
        await send(client)
    assert refused.value.errcode == 40001
    assert await fake.calls("stable_token") == 2
    assert await fake.messages() == []


async def test_token_in_its_last_five_minutes_is_renewed_and_the_old_one_still_works(
    client: WechatClient, fake: Fake, clock: ManualClock, session: aiohttp.ClientSession
) -> None:
    await fake.grant_quota(2)
    old = await client.access_token()
    await fake.advance(7200 - 250)
    clock.now += 7200 - 250
    new = await client.access_token()
    assert new != old
    assert await fake.calls("stable_token") == 2
    stale = WechatClient(session, appid=APPID, secret=SECRET, api_base=fake.url)
    stale_token = await stale.access_token()
    assert stale_token == new
    await send(client)
    async with session.post(
        f"{fake.url}/cgi-bin/message/subscribe/send",
        params={"access_token": old},
        json={
            "touser": OPENID,
            "template_id": BOOKED.template_id,
            "data": {key: {"value": value} for key, value in GOOD_DATA.items()},
        },
    ) as resp:
        assert (await resp.json())["errcode"] == 0


# subscribe messages and other calls


async def test_valid_send_is_recorded_with_exact_data(client: WechatClient, fake: Fake) -> None:
    await fake.grant_quota(1)
    msgid = await send(
        client, page="pages/appointment-detail/index?id=7", miniprogram_state="trial"
    )
    [message] = await fake.messages()
    assert message["msgid"] == msgid
    assert message["touser"] == OPENID and message["template_id"] == BOOKED.template_id
    assert message["page"] == "pages/appointment-detail/index?id=7"
    assert message["miniprogram_state"] == "trial" and message["lang"] == "zh_CN"
    assert message["data"] == {key: {"value": value} for key, value in GOOD_DATA.items()}


async def test_send_without_quota_raises_43101(client: WechatClient, fake: Fake) -> None:
    await fake.grant_quota(0)
    with pytest.raises(WechatApiError) as refused:
        await send(client)
    assert refused.value.errcode == 43101


async def test_send_with_a_bad_keyword_value_raises_47003(client: WechatClient, fake: Fake) -> None:
    await fake.grant_quota(1)
    with pytest.raises(WechatApiError) as refused:
        await send(client, data={**GOOD_DATA, "thing1": "心" * 21})
    assert refused.value.errcode == 47003
    assert "data.thing1.value invalid" in refused.value.errmsg


async def test_phone_code_gives_the_users_phone_number(client: WechatClient, fake: Fake) -> None:
    code = (await fake.control("POST", "phone_codes", phone_number="13800138000"))["code"]
    phone = await client.get_phone_number(code)
    assert phone.pure_phone_number == "13800138000" and phone.country_code == "86"
    assert "13800138000" not in repr(phone)
    with pytest.raises(WechatApiError) as refused:
        await client.get_phone_number(code)
    assert refused.value.errcode == 40029


async def test_phone_number_call_refreshes_an_expired_token(
    client: WechatClient, fake: Fake
) -> None:
    await client.access_token()
    await fake.advance(7201)
    code = (await fake.control("POST", "phone_codes", phone_number="13800138000"))["code"]
    assert (await client.get_phone_number(code)).phone_number == "13800138000"
    assert await fake.calls("stable_token") == 2


async def test_content_check_reports_risky_text(client: WechatClient, fake: Fake) -> None:
    await fake.login_code()
    assert await client.msg_sec_check(openid=OPENID, content="医生很耐心") == "pass"
    assert await client.msg_sec_check(openid=OPENID, content="违禁词") == "risky"


async def test_client_logs_no_codes_tokens_or_session_keys(
    client: WechatClient, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="guahao.wechat")
    await fake.grant_quota(2)
    code = await fake.login_code()
    await fake.fail_next("jscode2session", -1)
    login = await client.code2session(code)
    token = await client.access_token()
    await fake.advance(7201)
    await send(client)
    assert caplog.records, "token refresh should be logged at debug"
    logged = caplog.text + " ".join(str(vars(record)) for record in caplog.records)
    for secret in (code, login.session_key, token, await client.access_token(), SECRET):
        assert secret not in logged
