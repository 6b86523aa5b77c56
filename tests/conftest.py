"""Shared fixtures: the embedded store (or MONGO_URL), a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.storage.mongo import Document
from shared.storage.testing import start_embedded_mongo


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


@pytest.fixture
async def mongo_db(mongo_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    """A database of its own for one test, dropped afterwards."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()
