"""The local WeChat fake behaves like wechat.md, and the keyword rules it validates with."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from shared.wechat.fake import DEFAULT_TEMPLATES, create_fake_app, miniprogram_pages
from shared.wechat.keywords import (
    KNOWN_KEYWORD_TYPES,
    fit_keyword,
    keyword_type,
    validate_keyword,
)

APPID, SECRET = "wx_test_app", "test_secret"
BOOKED = DEFAULT_TEMPLATES["booking_confirmed"]
GOOD_DATA = {
    "thing1": "心内科 王医生",
    "time2": "2026年12月1日 08:30",
    "name3": "张三",
    "character_string4": "A-0012",
    "thing5": "请提前15分钟到院",
}
REPO_ROOT = Path(__file__).resolve().parent.parent

Fake = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Fake]]


@pytest.fixture
async def fake(aiohttp_client: MakeClient) -> Fake:
    return await aiohttp_client(create_fake_app(appid=APPID, secret=SECRET))


async def reply_of(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    assert resp.status == 200
    body: dict[str, Any] = json.loads(await resp.text())
    return body


async def login(fake: Fake, code: str) -> dict[str, Any]:
    params = {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"}
    return await reply_of(await fake.get("/sns/jscode2session", params=params))


async def control(fake: Fake, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return await reply_of(await fake.post(f"/__fake__/{path}", json=body))


async def mint_code(fake: Fake, openid: str = "o_patient") -> str:
    return str((await control(fake, "codes", {"openid": openid}))["code"])


async def stable_token(fake: Fake, *, force: bool = False) -> dict[str, Any]:
    body = {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": force,
    }
    return await reply_of(await fake.post("/cgi-bin/stable_token", json=body))


async def send(fake: Fake, token: str | None, **overrides: Any) -> dict[str, Any]:
    body = {
        "touser": "o_patient",
        "template_id": BOOKED.template_id,
        "data": {key: {"value": value} for key, value in GOOD_DATA.items()},
    }
    params = {} if token is None else {"access_token": token}
    resp = await fake.post(
        "/cgi-bin/message/subscribe/send", params=params, json={**body, **overrides}
    )
    return await reply_of(resp)


async def ready_to_send(fake: Fake, quota: int = 1) -> str:
    await mint_code(fake)
    await control(
        fake, "quota", {"openid": "o_patient", "template_id": BOOKED.template_id, "count": quota}
    )
    return str((await stable_token(fake))["access_token"])


async def advance(fake: Fake, seconds: float) -> None:
    await control(fake, "clock", {"advance_seconds": seconds})


# login codes


async def test_login_code_gives_openid_and_a_new_session_key_each_time(fake: Fake) -> None:
    resp = await fake.get(
        "/sns/jscode2session",
        params={"appid": APPID, "secret": SECRET, "js_code": await mint_code(fake)},
    )
    assert resp.content_type == "text/plain"
    first = json.loads(await resp.text())
    second = await login(fake, await mint_code(fake))
    assert first["openid"] == second["openid"] == "o_patient"
    assert "errcode" not in first
    assert first["session_key"] != second["session_key"]


async def test_unionid_is_returned_when_the_user_has_one(fake: Fake) -> None:
    code = (await control(fake, "codes", {"openid": "o_u", "unionid": "u_1"}))["code"]
    assert (await login(fake, code))["unionid"] == "u_1"


async def test_second_use_of_a_login_code_is_refused(fake: Fake) -> None:
    code = await mint_code(fake)
    await login(fake, code)
    reply = await login(fake, code)
    assert reply["errcode"] == 40163
    assert " rid: " in reply["errmsg"]


async def test_unknown_login_code_is_refused(fake: Fake) -> None:
    assert (await login(fake, "never-issued"))["errcode"] == 40029


async def test_login_code_expires_after_five_minutes(fake: Fake) -> None:
    code = await mint_code(fake)
    await advance(fake, 301)
    assert (await login(fake, code))["errcode"] == 40029


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"secret": SECRET, "js_code": "c"}, 41002),
        ({"appid": APPID, "js_code": "c"}, 41004),
        ({"appid": APPID, "secret": SECRET}, 41008),
        ({"appid": "wx_other", "secret": SECRET, "js_code": "c"}, 40013),
        ({"appid": APPID, "secret": "wrong", "js_code": "c"}, 40125),
    ],
)
async def test_login_with_missing_or_wrong_credentials_is_refused(
    fake: Fake, params: dict[str, str], errcode: int
) -> None:
    reply = await reply_of(await fake.get("/sns/jscode2session", params=params))
    assert reply["errcode"] == errcode


# access tokens


async def test_stable_token_returns_the_same_token_while_it_is_valid(fake: Fake) -> None:
    first = await stable_token(fake)
    await advance(fake, 3600)
    second = await stable_token(fake)
    assert second["access_token"] == first["access_token"]
    assert first["expires_in"] >= 7199
    assert 3598 <= second["expires_in"] <= 3600


async def test_token_in_last_five_minutes_is_renewed_and_old_one_works_until_expiry(
    fake: Fake,
) -> None:
    old = await ready_to_send(fake, quota=3)
    await advance(fake, 7200 - 200)
    new = str((await stable_token(fake))["access_token"])
    assert new != old
    assert (await send(fake, old))["errcode"] == 0
    assert (await send(fake, new))["errcode"] == 0
    await advance(fake, 250)
    assert (await send(fake, old))["errcode"] == 42001
    assert (await send(fake, new))["errcode"] == 0


async def test_force_refresh_kills_the_current_token_and_is_rate_limited(fake: Fake) -> None:
    token = await ready_to_send(fake)
    forced = await stable_token(fake, force=True)
    assert forced["access_token"] != token
    assert (await send(fake, token))["errcode"] == 40001
    assert (await stable_token(fake, force=True))["errcode"] == 45009
    await advance(fake, 31)
    assert "access_token" in await stable_token(fake, force=True)


async def test_stable_token_refuses_a_form_body(fake: Fake) -> None:
    form = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    reply = await reply_of(await fake.post("/cgi-bin/stable_token", data=form))
    assert reply["errcode"] == 41002


async def test_business_calls_check_the_access_token(fake: Fake) -> None:
    token = await ready_to_send(fake, quota=5)
    assert (await send(fake, None))["errcode"] == 41001
    assert (await send(fake, "made_up"))["errcode"] == 40001
    await advance(fake, 7201)
    assert (await send(fake, token))["errcode"] == 42001


# subscribe messages


async def test_valid_send_spends_one_quota_and_is_recorded_with_exact_data(fake: Fake) -> None:
    token = await ready_to_send(fake, quota=2)
    reply = await send(
        fake, token, page="pages/appointment-detail/index?id=7", miniprogram_state="trial"
    )
    assert reply["errcode"] == 0 and reply["errmsg"] == "ok"
    quota = await reply_of(
        await fake.get(
            "/__fake__/quota", params={"openid": "o_patient", "template_id": BOOKED.template_id}
        )
    )
    assert quota == {"count": 1}
    items = (await reply_of(await fake.get("/__fake__/messages", params={"touser": "o_patient"})))[
        "items"
    ]
    assert len(items) == 1
    assert items[0]["msgid"] == reply["msgid"]
    assert items[0]["page"] == "pages/appointment-detail/index?id=7"
    assert items[0]["data"] == {key: {"value": value} for key, value in GOOD_DATA.items()}
    await fake.delete("/__fake__/messages")
    assert (await reply_of(await fake.get("/__fake__/messages")))["items"] == []


async def test_send_without_quota_is_refused_with_43101(fake: Fake) -> None:
    token = await ready_to_send(fake, quota=1)
    assert (await send(fake, token))["errcode"] == 0
    assert (await send(fake, token))["errcode"] == 43101


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("thing1", "心" * 21),
        ("time2", "明天上午"),
        ("name3", ""),
        ("character_string4", "号1"),
    ],
)
async def test_send_with_a_bad_keyword_value_is_refused_with_47003(
    fake: Fake, key: str, value: str
) -> None:
    token = await ready_to_send(fake)
    data = {k: {"value": value if k == key else v} for k, v in GOOD_DATA.items()}
    reply = await send(fake, token, data=data)
    assert reply["errcode"] == 47003
    assert reply["errmsg"].startswith(f"argument invalid! data.{key}.value invalid")


async def test_send_with_a_missing_keyword_is_refused_with_47003(fake: Fake) -> None:
    token = await ready_to_send(fake)
    data = {k: {"value": v} for k, v in GOOD_DATA.items() if k != "thing5"}
    assert (await send(fake, token, data=data))["errcode"] == 47003


async def test_send_to_unknown_user_or_template_is_refused(fake: Fake) -> None:
    token = await ready_to_send(fake)
    assert (await send(fake, token, touser="o_stranger"))["errcode"] == 40003
    assert (await send(fake, token, template_id="tmpl_nope"))["errcode"] == 40037


async def test_send_to_a_page_outside_the_released_pages_is_refused(
    aiohttp_client: MakeClient,
) -> None:
    app = create_fake_app(appid=APPID, secret=SECRET, allowed_pages=["pages/booking/detail"])
    fake = await aiohttp_client(app)
    token = await ready_to_send(fake, quota=2)
    assert (await send(fake, token, page="pages/secret/index"))["errcode"] == 41030
    assert (await send(fake, token, page="pages/booking/detail?id=1"))["errcode"] == 0


async def test_by_default_only_the_pages_of_the_miniprograms_app_json_are_accepted(
    fake: Fake,
) -> None:
    app_json = json.loads((REPO_ROOT / "miniprogram" / "app.json").read_text(encoding="utf-8"))
    assert miniprogram_pages() == frozenset(app_json["pages"])
    token = await ready_to_send(fake, quota=3)
    assert (await send(fake, token, page="pages/appointment/detail?id=1"))["errcode"] == 41030
    assert (await send(fake, token, page="pages/appointment-detail/index?id=1"))["errcode"] == 0
    assert (await send(fake, token, page="pages/appointment-detail/index"))["errcode"] == 0


def test_subpackage_pages_are_pages_too(tmp_path: Path) -> None:
    app_json = tmp_path / "app.json"
    app_json.write_text(
        json.dumps(
            {
                "pages": ["pages/index/index"],
                "subPackages": [{"root": "staff/", "pages": ["today/index"]}],
            }
        ),
        encoding="utf-8",
    )
    assert miniprogram_pages(app_json) == {"pages/index/index", "staff/today/index"}


# phone numbers, content check, failure injection, stats


async def test_phone_code_gives_the_phone_number_once(fake: Fake) -> None:
    token = str((await stable_token(fake))["access_token"])
    code = (await control(fake, "phone_codes", {"phone_number": "13800138000"}))["code"]
    path = "/wxa/business/getuserphonenumber"
    resp = await fake.post(path, params={"access_token": token}, json={"code": code})
    info = (await reply_of(resp))["phone_info"]
    assert info["purePhoneNumber"] == "13800138000" and info["countryCode"] == "86"
    assert info["watermark"]["appid"] == APPID
    again = await fake.post(path, params={"access_token": token}, json={"code": code})
    assert (await reply_of(again))["errcode"] == 40029


async def test_content_check_flags_blocklisted_words(fake: Fake) -> None:
    token = str((await stable_token(fake))["access_token"])
    await mint_code(fake)

    async def check(content: str) -> dict[str, Any]:
        body = {"version": 2, "openid": "o_patient", "scene": 2, "content": content}
        resp = await fake.post("/wxa/msg_sec_check", params={"access_token": token}, json=body)
        return dict((await reply_of(resp))["result"])

    assert await check("医生很耐心") == {"suggest": "pass", "label": 100}
    assert (await check("这里有违禁词"))["suggest"] == "risky"


async def test_injected_failure_hits_only_the_next_calls(fake: Fake) -> None:
    await control(fake, "failures", {"endpoint": "stable_token", "errcode": -1, "times": 2})
    assert (await stable_token(fake))["errcode"] == -1
    assert (await stable_token(fake))["errcode"] == -1
    assert "access_token" in await stable_token(fake)
    stats = await reply_of(await fake.get("/__fake__/stats"))
    assert stats["calls"]["stable_token"] == 3


async def test_injected_network_failure_answers_503(fake: Fake) -> None:
    await control(fake, "failures", {"endpoint": "*", "errcode": "network"})
    form = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    assert (await fake.post("/cgi-bin/stable_token", json=form)).status == 503
    assert (await fake.post("/cgi-bin/stable_token", json=form)).status == 200


async def test_reset_forgets_users_tokens_and_counts(fake: Fake) -> None:
    token = await ready_to_send(fake)
    await control(fake, "reset", {})
    stats = await reply_of(await fake.get("/__fake__/stats"))
    assert stats["calls"] == {} and stats["access_token"] is None
    assert (await send(fake, token))["errcode"] == 40001


@pytest.mark.slow
async def test_fake_runs_as_a_module_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.wechat.fake",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--appid",
        APPID,
        "--secret",
        SECRET,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": "."},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert line.startswith("wechat-fake listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/__fake__/codes", json={"openid": "o1"}) as resp:
                assert resp.status == 200 and "code" in await resp.json()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# keyword value rules


def test_keyword_type_is_the_key_without_its_trailing_digits() -> None:
    assert keyword_type("thing1") == "thing"
    assert keyword_type("character_string12") == "character_string"
    assert {"thing", "time", "phrase", "amount", "name"} <= KNOWN_KEYWORD_TYPES


def test_thing_of_21_characters_is_invalid_and_fit_truncates_it_to_20() -> None:
    assert validate_keyword("thing1", "心" * 20) is None
    assert validate_keyword("thing1", "心" * 21) is not None
    fitted = fit_keyword("thing1", "心" * 21)
    assert len(fitted) == 20 and validate_keyword("thing1", fitted) is None


@pytest.mark.parametrize(
    "value",
    [
        "2026年12月1日 08:30",
        "08:30",
        "2026-12-01 08:30",
        "2026年12月1日 08:30~09:30",
        "8:05",
    ],
)
def test_time_accepts_24_hour_times_with_optional_date_and_ranges(value: str) -> None:
    assert validate_keyword("time2", value) is None


@pytest.mark.parametrize("value", ["2026年12月1日", "25:00", "上午", "08:30~09:00~10:00"])
def test_time_refuses_values_without_a_valid_time(value: str) -> None:
    assert validate_keyword("time2", value) is not None


def test_date_needs_a_real_date_and_may_carry_a_time() -> None:
    for value in ("2026年12月1日", "2026-12-01", "2026年12月1日 08:30"):
        assert validate_keyword("date1", value) is None
    assert validate_keyword("date1", "2026-02-30") is not None
    assert validate_keyword("date1", "08:30") is not None


def test_phrase_is_at_most_five_chinese_characters() -> None:
    assert validate_keyword("phrase1", "已预约") is None
    assert validate_keyword("phrase1", "预约已经成功") is not None
    assert validate_keyword("phrase1", "ok") is not None
    assert fit_keyword("phrase1", "预约 OK 已经成功") == "预约已经成"


@pytest.mark.parametrize("value", ["￥12.50", "¥12", "$3", "12.50元", "¥12元"])
def test_amount_with_currency_symbol_or_yuan_is_valid(value: str) -> None:
    assert validate_keyword("amount1", value) is None


def test_amount_refuses_bare_numbers_and_fit_adds_the_symbol() -> None:
    assert validate_keyword("amount1", "12.50") is not None
    assert validate_keyword("amount1", "¥12345678901") is not None
    assert fit_keyword("amount1", "12.50") == "¥12.50"


def test_name_allows_ten_chinese_characters_or_twenty_letters() -> None:
    assert validate_keyword("name3", "张三") is None
    assert validate_keyword("name3", "Zhang San") is None
    assert validate_keyword("name3", "张" * 11) is not None
    assert validate_keyword("name3", "z" * 21) is not None
    assert fit_keyword("name3", "张" * 12) == "张" * 10
    assert fit_keyword("name3", "z" * 25) == "z" * 20


def test_character_string_refuses_chinese_and_fit_strips_it() -> None:
    assert validate_keyword("character_string4", "A-0012") is None
    assert validate_keyword("character_string4", "号A-0012") is not None
    assert fit_keyword("character_string4", "号A-0012") == "A-0012"
    assert len(fit_keyword("character_string4", "9" * 40)) == 32


@pytest.mark.parametrize("kind", sorted(KNOWN_KEYWORD_TYPES))
def test_empty_value_is_invalid_for_every_type(kind: str) -> None:
    assert validate_keyword(f"{kind}1", "") is not None
    assert validate_keyword(f"{kind}1", "  ") is not None


def test_other_types_follow_their_rules() -> None:
    assert validate_keyword("number1", "12.5") is None
    assert validate_keyword("number1", "1" * 33) is not None
    assert validate_keyword("letter1", "abc") is None
    assert validate_keyword("letter1", "ab1") is not None
    assert validate_keyword("symbol1", "%") is None
    assert validate_keyword("symbol1", "%%%%%%") is not None
    assert validate_keyword("phone_number1", "+86 138-0013-8000") is None
    assert validate_keyword("phone_number1", "1" * 18) is not None
    assert validate_keyword("car_number1", "京A12345") is None
    assert validate_keyword("car_number1", "京A1234567") is not None
    assert validate_keyword("unknown1", "x") is not None
