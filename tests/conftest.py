"""Shared fixtures: the embedded store (or MONGO_URL), a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.devstack import DevStack
from shared.storage.mongo import Document
from shared.storage.opcount import STORE_OPS
from shared.storage.testing import start_embedded_mongo
from tests.harness import Api, delete_vhost, start_stack
from tests.system_kit import hospital_events_queue


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """MONGO_URL when set (a real MongoDB), else nx-27017 in a temporary data dir."""
    if os.environ.get("MONGO_URL"):
        yield os.environ["MONGO_URL"]
        return
    data_dir: Path = tmp_path_factory.mktemp("mongo")
    proc, url = start_embedded_mongo(data_dir)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@asynccontextmanager
async def scratch_database(
    mongo_url: str, **options: Any
) -> AsyncIterator[AsyncDatabase[Document]]:
    """A database of its own, dropped afterwards (`options` go to the client)."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True, **options)
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
async def mongo_db(mongo_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    """A database of its own for one test, dropped afterwards."""
    async with scratch_database(mongo_url) as db:
        yield db


@pytest.fixture
async def other_db(mongo_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    """A second database for the same test (another service's store)."""
    async with scratch_database(mongo_url) as db:
        yield db


@pytest.fixture
async def counted_db(mongo_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    """Like `mongo_db`, with the driver's commands counted (`shared.storage.opcount`)."""
    async with scratch_database(mongo_url, event_listeners=[STORE_OPS]) as db:
        yield db


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The whole system, started once per test session as `make run` starts it."""
    started, vhost = start_stack(tmp_path_factory.mktemp("system"))
    yield started
    started.stop()
    delete_vhost(vhost)


@pytest.fixture
async def api(stack: DevStack) -> AsyncIterator[Api]:
    """An HTTP client for the gateway and the WeChat fake."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(stack, session)


@pytest.fixture
async def hospital_events(stack: DevStack) -> AsyncIterator[Any]:
    """Events of the hospitals a test binds, as an HIS would receive them."""
    async for events in hospital_events_queue(stack):
        yield events
