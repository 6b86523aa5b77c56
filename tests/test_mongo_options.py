"""The MongoDB client options every service uses (docs/operations.md, "MongoDB"): durable
writes, majority reads, one retry across a primary step-down, short timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.settings import Settings
from shared.storage.mongo import connect_mongo

Connect = Callable[[str], AsyncMongoClient[Any]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    made: list[AsyncMongoClient[Any]] = []

    def make(url: str) -> AsyncMongoClient[Any]:
        # the client connects lazily: nothing needs to listen at these addresses
        made.append(connect_mongo(Settings(mongo_url=url), app_name="tests"))
        return made[-1]

    yield make
    for client in made:
        await client.close()


def test_writes_wait_for_a_majority_and_reads_see_only_majority_committed_data(
    connect: Connect,
) -> None:
    client = connect("mongodb://127.0.0.1:1/")
    assert client.write_concern.document == {"w": "majority", "wtimeout": 5000}
    assert client.read_concern.level == "majority"
    database = client["guahao_booking"]  # inherited by every database and collection
    assert database.write_concern.document["w"] == "majority"
    assert database["appointments"].read_concern.level == "majority"


def test_reads_and_writes_are_retried_once_and_time_out_fast(connect: Connect) -> None:
    options = connect("mongodb://127.0.0.1:1/").options
    assert options.retry_writes is True
    assert options.retry_reads is True
    assert options.server_selection_timeout == 2.0
    assert options.pool_options.connect_timeout == 3.0
    assert options.pool_options.socket_timeout == 10.0


def test_a_replica_set_url_is_taken_as_given_and_its_options_win(connect: Connect) -> None:
    client = connect(
        "mongodb://db1:27017,db2:27017,db3:27017/?replicaSet=rs0"
        "&w=2&readConcernLevel=local&serverSelectionTimeoutMS=5000"
    )
    assert client.options.replica_set_name == "rs0"
    assert client.write_concern.document == {"w": 2, "wtimeout": 5000}
    assert client.read_concern.level == "local"
    assert client.options.server_selection_timeout == 5.0
    assert client.options.retry_writes is True
