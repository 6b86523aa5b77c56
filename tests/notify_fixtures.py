"""Fixtures of the notify tests, loaded with `pytest_plugins = ["tests.notify_fixtures"]`
(never imported directly, so pytest can rewrite its asserts)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pymongo.asynchronous.database import AsyncDatabase

from shared.storage.mongo import Document
from shared.wechat.fake import create_fake_app
from tests.notify_kit import (
    APPID,
    SECRET,
    Clock,
    Fake,
    Notify,
    StubOpenids,
    build_notify,
    local,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake(http: aiohttp.ClientSession) -> AsyncIterator[Fake]:
    """The WeChat fake, served on 127.0.0.1."""
    server = TestServer(create_fake_app(appid=APPID, secret=SECRET), host="127.0.0.1")
    await server.start_server()
    yield Fake(http, str(server.make_url("")).rstrip("/"))
    await server.close()


@pytest.fixture
def openids() -> StubOpenids:
    return StubOpenids()


@pytest.fixture
def clock() -> Clock:
    return Clock(local(2026, 11, 30, 10))


@pytest.fixture
async def notify(
    mongo_db: AsyncDatabase[Document],
    http: aiohttp.ClientSession,
    fake: Fake,
    clock: Clock,
    openids: StubOpenids,
) -> Notify:
    return await build_notify(mongo_db, http, fake, clock, openids)
