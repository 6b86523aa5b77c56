"""Fault points: named places between two writes where a test can make the process die.

A flow calls `faults.point("move.after_final_write")` between its writes. Unarmed, that
costs a set lookup. Armed:
- in a test, `FaultPoints.arm(name)` makes the point raise `Crash`, a BaseException that no
  clean-up path catches — the flow stops there as if the process had been killed;
- in a process started with `GUAHAO_FAULT_POINTS=name[,name…]`, the point kills the process
  at once (`os._exit`), as `kill -9` would.
"""

from __future__ import annotations

import os


class Crash(BaseException):
    """The simulated death of the process at a fault point."""


class FaultPoints:
    def __init__(self, armed: set[str] | None = None, *, exit_process: bool = False) -> None:
        self.armed = set(armed or ())
        self.exit_process = exit_process
        self.passed: list[str] = []

    @classmethod
    def from_env(cls) -> FaultPoints:
        names = os.environ.get("GUAHAO_FAULT_POINTS", "")
        return cls({n.strip() for n in names.split(",") if n.strip()}, exit_process=True)

    def arm(self, name: str) -> None:
        self.armed.add(name)

    def disarm(self) -> None:
        self.armed.clear()

    def point(self, name: str) -> None:
        """Die here when armed; otherwise note that the flow passed it."""
        self.passed.append(name)
        if len(self.passed) > 1000:
            del self.passed[:500]
        if name in self.armed:
            if self.exit_process:
                os._exit(137)
            raise Crash(name)
