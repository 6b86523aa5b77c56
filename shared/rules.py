"""Booking-window arithmetic of domain.md on the hospital-local clock (Asia/Shanghai).

One place for the questions both the catalog (what status to show) and booking (whether to
accept) ask: when does a date open, when does same-day booking stop, until when can an
appointment be cancelled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from shared.contracts.catalog import BookingRules

HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")


def local_now(now: dt.datetime) -> dt.datetime:
    """An aware instant seen on the hospital's wall clock."""
    return now.astimezone(HOSPITAL_TZ)


def at_local(date: dt.date, clock: str) -> dt.datetime:
    """`date` at `HH:MM` hospital-local time, as an aware datetime."""
    hour, minute = (int(part) for part in clock.split(":"))
    return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=HOSPITAL_TZ)


@dataclass(frozen=True)
class BookingWindow:
    """When booking a slot on `date` (session `session`, starting at `start`) is possible."""

    rules: BookingRules
    date: dt.date
    session: str
    start: str

    @property
    def release_at(self) -> dt.datetime:
        """The date opens `window_days` before it, at `release_time`."""
        opens_on = self.date - dt.timedelta(days=self.rules.window_days)
        return at_local(opens_on, self.rules.release_time)

    @property
    def closes_at(self) -> dt.datetime:
        """Same-day booking stops at the session's stop time, and never after the slot starts."""
        stop = getattr(self.rules.same_day_stop_time, self.session)
        return min(at_local(self.date, stop), at_local(self.date, self.start))

    @property
    def cancel_deadline(self) -> dt.datetime:
        """A patient may cancel until `cancel_before_hours` before the slot starts."""
        return at_local(self.date, self.start) - dt.timedelta(hours=self.rules.cancel_before_hours)

    def is_released(self, now: dt.datetime) -> bool:
        return now >= self.release_at

    def is_closed(self, now: dt.datetime) -> bool:
        return now >= self.closes_at


def schedule_status(
    rules: BookingRules,
    date: dt.date,
    session: str,
    slot_starts_remaining: list[tuple[str, int]],
    *,
    stopped: bool,
    now: dt.datetime,
) -> str:
    """`stopped` > `closed` > `not_released` > `full` > `open` for a whole schedule."""
    if stopped:
        return "stopped"
    windows = [
        (BookingWindow(rules, date, session, start), left) for start, left in slot_starts_remaining
    ]
    if not windows:
        return "closed"
    if all(w.is_closed(now) for w, _ in windows):
        return "closed"
    if not windows[0][0].is_released(now):
        return "not_released"
    if all(left <= 0 for w, left in windows if not w.is_closed(now)):
        return "full"
    return "open"
