"""The MongoDB client every service uses."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import Settings
from shared.storage.opcount import STORE_OPS

Document = dict[str, Any]


# On a replica set (production: docs/operations.md "MongoDB replica set"):
# - writes are acknowledged once a majority of members has them (`w: majority`), so an
#   acknowledged booking survives the loss of the primary; `wtimeout` bounds the wait when
#   a majority is not reachable (the write may still commit: every write is idempotent or
#   guarded, and the caller gets a 503 and retries with the same key);
# - reads see only majority-committed data (`readConcern: majority`): nothing a rollback
#   after a failover could take back is ever shown or acted upon; the guarded updates that
#   decide (capacity, holds) act on the primary's latest state whatever the read concern;
# - one retry of a write or read interrupted by a primary step-down or a network blip
#   (`retryWrites`, `retryReads`): the server deduplicates a retried write by its
#   transaction number, so it applies once.
# The embedded store (nx-27017, one process) accepts these options and ignores them.
MONGO_CLIENT_OPTIONS: dict[str, Any] = {
    "w": "majority",
    "wTimeoutMS": 5000,
    "readConcernLevel": "majority",
    "retryWrites": True,
    "retryReads": True,
    # a failover elects a new primary within ~10-12 s; a booking waits at most its RPC
    # deadline (GUAHAO_RPC_TIMEOUT) anyway, so server selection gives up before that
    "serverSelectionTimeoutMS": 2000,
    "connectTimeoutMS": 3000,
    "socketTimeoutMS": 10000,
}


def connect_mongo(settings: Settings, *, app_name: str) -> AsyncMongoClient[Document]:
    """A client with the durability settings above and short timeouts, so a missing
    database fails fast instead of hanging."""
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        appname=app_name,
        event_listeners=[STORE_OPS],
        **client_options(settings.mongo_url),
    )


def client_options(mongo_url: str) -> dict[str, Any]:
    """MONGO_CLIENT_OPTIONS less those MONGO_URL sets itself: the operator's URL wins
    (pymongo would let a keyword override the URL)."""
    in_url = {key.lower() for key in parse_qs(urlsplit(mongo_url).query)}
    return {k: v for k, v in MONGO_CLIENT_OPTIONS.items() if k.lower() not in in_url}


def service_database(
    client: AsyncMongoClient[Document], settings: Settings, service: str
) -> AsyncDatabase[Document]:
    """The database owned by one service (`guahao_<service>`)."""
    return client[settings.database_name(service)]
