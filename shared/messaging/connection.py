"""The one robust AMQP connection a process holds, failing over across broker nodes.

aio-pika's robust connection reconnects to the one URL it was given. `FailoverConnection`
keeps the list of a cluster's nodes (`AMQP_URLS`) and moves to the next node at every
(re)connect attempt, so a process whose node dies reconnects to a live one; channels,
queues and consumers are then restored by aio-pika as after any reconnect. The first
connect tries every node once before it gives up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from yarl import URL

log = logging.getLogger("guahao.messaging")

RECONNECT_INTERVAL = 1.0
CONNECT_TIMEOUT = 5.0
RESTORE_TIMEOUT = 15.0


def broker_urls(urls: str | Sequence[str]) -> list[str]:
    """A node list from `AMQP_URLS`-style text (comma-separated) or a sequence."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    found = [u.strip() for u in items if u.strip()]
    if not found:
        raise ValueError("no broker URL given")
    return found


class FailoverConnection(RobustConnection):
    """A robust connection that cycles through the nodes of a cluster on reconnect."""

    def __init__(
        self,
        url: URL,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        nodes: Sequence[URL] = (),
        **kwargs: Any,
    ) -> None:
        self._nodes: list[URL] = list(nodes) or [URL(url)]
        self._node = self._nodes.index(URL(url)) if URL(url) in self._nodes else 0
        super().__init__(URL(url), loop, **kwargs)
        self._attempts = 0  # set last: __init__ clears `transport` too

    # aio-pika clears `transport` right before every connect attempt of its reconnect loop
    # (and in __init__ and close): the one place to choose the node the attempt goes to
    @property
    def transport(self) -> Any:
        return self.__dict__.get("_failover_transport")

    @transport.setter
    def transport(self, value: Any) -> None:
        self.__dict__["_failover_transport"] = value
        if value is not None or not hasattr(self, "_attempts"):
            return
        if self._close_called:
            return
        self._attempts += 1
        if self._attempts > 1 and len(self._nodes) > 1:  # the first attempt: the given node
            self._node = (self._node + 1) % len(self._nodes)
            self.url = self._nodes[self._node]
            log.warning(
                "broker connection moves to another node",
                extra={"node": f"{self.url.host}:{self.url.port}"},
            )

    async def _on_connected(self) -> None:
        """Restore channels, queues and consumers, within RESTORE_TIMEOUT: a restore that
        hangs (a queue still electing its leader, a channel wedged by a crash during the
        last attempt) is given up and the next attempt goes to the next node."""
        try:
            async with asyncio.timeout(RESTORE_TIMEOUT):
                await super()._on_connected()
        except TimeoutError:
            transport = self.transport
            if transport is not None:
                await asyncio.gather(transport.connection.close(), return_exceptions=True)
            log.warning("restoring the broker connection timed out", extra={"node": self.node})
            raise ConnectionError("restoring channels timed out") from None

    @property
    def clustered(self) -> bool:
        """Whether this connection knows several nodes (a cluster)."""
        return len(self._nodes) > 1

    @property
    def node(self) -> str:
        """`host:port` of the node this connection uses (or tries) now."""
        return f"{self.url.host}:{self.url.port}"


async def connect_broker(urls: str | Sequence[str], *, name: str) -> AbstractRobustConnection:
    """Connect with automatic reconnect and failover; channels, queues and consumers are
    restored. With several nodes the first listed is preferred and each is tried once
    before it raises; list the nodes in another order for other processes to spread their
    connections (and the queue leaders they declare) over the cluster."""
    nodes = [URL(u) for u in broker_urls(urls)]
    error: BaseException | None = None
    for first in nodes:
        connection = FailoverConnection(
            first,
            nodes=nodes,
            reconnect_interval=RECONNECT_INTERVAL,
            fail_fast="true",
            client_properties={"connection_name": name},
        )
        try:
            await connection.connect(timeout=CONNECT_TIMEOUT)
            return connection
        except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
            error = exc
            await connection.close()
            if len(nodes) > 1:
                log.warning(
                    "broker node not reachable, trying the next",
                    extra={"node": f"{first.host}:{first.port}", "error": repr(exc)},
                )
    assert error is not None
    raise error
