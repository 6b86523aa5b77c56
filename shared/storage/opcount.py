"""Counting the store operations one unit of work sends (a booking decision, say), through
the driver's command monitoring: what the budget tests assert and what the metrics show.

The listener is registered once on a client (`connect_mongo` does it); `counting()` opens a
tally for the current task and the tasks it starts, and every command the driver sends
meanwhile is added to it. Nothing is counted outside a tally.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pymongo import monitoring

# the driver's own conversation with the server, not the work's
_HOUSEKEEPING = frozenset(
    {
        "hello",
        "ismaster",
        "isMaster",
        "ping",
        "endSessions",
        "buildInfo",
        "saslStart",
        "saslContinue",
        "killCursors",
    }
)

_tally: ContextVar[list[str] | None] = ContextVar("store_ops", default=None)


class StoreOps(monitoring.CommandListener):
    """Adds each command sent to the open tally of the task that sent it."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        tally = _tally.get()
        if tally is not None and event.command_name not in _HOUSEKEEPING:
            tally.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


STORE_OPS = StoreOps()


@contextmanager
def counting() -> Iterator[list[str]]:
    """A tally of the store commands sent inside the block (their names, in order)."""
    tally: list[str] = []
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)
