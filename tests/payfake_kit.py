"""The WeChat Pay fake for tests: load with `pytest_plugins = ["tests.payfake_kit"]`.

Fixtures: `pay_credentials` (one dev credential set per session), `payfake` (the fake served
in-process on 127.0.0.1, with control helpers), `notify_sink` (a receiver of its
notifications), `wechatpay` (a `WeChatPay` client of the fake whose notify URL is the sink).
`PayFakeControl(url, http)` drives a fake started elsewhere (the dev stack's).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from shared.wechat.pay import WeChatPay
from shared.wechat.paycrypto import dev_pay_credentials
from shared.wechat.payfake import FAKE_PAY, FakeWechatPay, create_payfake_app

Received = tuple[dict[str, str], bytes]  # the headers and raw body of one notification


@dataclass
class PayFakeControl:
    """The control API of a pay fake at `url`, e.g. the dev stack's
    (`PayFakeControl(stack.wechatpay_url, http)`)."""

    url: str
    http: aiohttp.ClientSession

    async def control(
        self, path: str, body: dict[str, Any] | None = None, expect: int = 200
    ) -> dict[str, Any]:
        async with self.http.post(f"{self.url}/__control/{path}", json=body or {}) as resp:
            reply: dict[str, Any] = await resp.json()
            assert resp.status == expect, reply
            return reply

    async def pay(self, expect: Any = 200, **body: Any) -> dict[str, Any]:
        """The payer pays: prepay_id=…, out_trade_no=…, or the wx.requestPayment args
        (`expect: Any` because callers spread those args, a dict[str, str], beside it)."""
        return await self.control("pay", body, expect)

    async def behave(self, **switches: Any) -> dict[str, Any]:
        """Set behaviour switches (see `payfake._control_behaviour`)."""
        return await self.control("behaviour", switches)

    async def orders(self, out_trade_no: str | None = None) -> dict[str, Any]:
        params = {} if out_trade_no is None else {"out_trade_no": out_trade_no}
        async with self.http.get(f"{self.url}/__control/orders", params=params) as resp:
            reply: dict[str, Any] = await resp.json()
            return reply

    async def reset(self) -> None:
        await self.control("reset")


@dataclass
class PayFake(PayFakeControl):
    """A pay fake served in-process: also its state (white-box assertions) and credentials."""

    state: FakeWechatPay
    creds: dict[str, str]

    def client(self, notify_url: str, **overrides: Any) -> WeChatPay:
        """A client of this fake configured like production, from the dev credentials."""
        creds = self.creds
        kwargs: dict[str, Any] = {
            "api_base": self.url,
            "mchid": creds["mchid"],
            "appid": creds["appid"],
            "merchant_serial": creds["merchant_serial"],
            "merchant_key_pem": creds["merchant_key_pem"],
            "apiv3_key": creds["apiv3_key"],
            "public_key_pem": creds["public_key_pem"],
            "public_key_id": creds["public_key_id"],
            "notify_url": notify_url,
            **overrides,
        }
        return WeChatPay(**kwargs)


@dataclass
class NotifySink:
    """Receives notifications; answers `status` (settable) and keeps what arrived."""

    url: str
    status: int = 200
    received: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` notifications, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} arrived"
            await asyncio.sleep(0.02)
        return self.received[:count]


@pytest.fixture(scope="session")
def pay_credentials(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return dev_pay_credentials(tmp_path_factory.mktemp("wechatpay"))


@pytest.fixture
async def payfake_http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def payfake(
    pay_credentials: dict[str, str], payfake_http: aiohttp.ClientSession
) -> AsyncIterator[PayFake]:
    """The pay fake on 127.0.0.1, with quick notification retries and refunds."""
    app = create_payfake_app(
        pay_credentials, notify_retries=2, notify_retry_delay=0.05, refund_delay=0.05
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield PayFake(
        url=str(server.make_url("")).rstrip("/"),
        http=payfake_http,
        state=app[FAKE_PAY],
        creds=pay_credentials,
    )
    await server.close()


@pytest.fixture
async def notify_sink() -> AsyncIterator[NotifySink]:
    app = web.Application()
    sink = NotifySink(url="")
    app.router.add_post("/notify", sink.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    sink.url = str(server.make_url("/notify"))
    yield sink
    await server.close()


@pytest.fixture
async def wechatpay(payfake: PayFake, notify_sink: NotifySink) -> AsyncIterator[WeChatPay]:
    client = payfake.client(notify_sink.url)
    yield client
    await client.close()
