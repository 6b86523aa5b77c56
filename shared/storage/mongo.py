"""The MongoDB client every service uses."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import Settings
from shared.storage.opcount import STORE_OPS

Document = dict[str, Any]


def connect_mongo(settings: Settings, *, app_name: str) -> AsyncMongoClient[Document]:
    """A client with short timeouts so a missing database fails fast instead of hanging."""
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=3000,
        socketTimeoutMS=10000,
        event_listeners=[STORE_OPS],
    )


def service_database(
    client: AsyncMongoClient[Document], settings: Settings, service: str
) -> AsyncDatabase[Document]:
    """The database owned by one service (`guahao_<service>`)."""
    return client[settings.database_name(service)]
