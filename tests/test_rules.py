"""Booking-window arithmetic on the hospital-local clock."""

from __future__ import annotations

import datetime as dt

from shared.contracts.catalog import BookingRules
from shared.rules import HOSPITAL_TZ, BookingWindow, schedule_status

RULES = BookingRules()
DAY = dt.date(2026, 12, 10)


def local(y: int, m: int, d: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=HOSPITAL_TZ)


def test_a_date_opens_window_days_before_at_release_time() -> None:
    window = BookingWindow(RULES, DAY, "am", "08:00")
    assert window.release_at == local(2026, 12, 3, 8)
    assert not window.is_released(local(2026, 12, 3, 7, 59))
    assert window.is_released(local(2026, 12, 3, 8))


def test_release_is_judged_on_the_hospital_clock_not_utc() -> None:
    window = BookingWindow(RULES, DAY, "am", "08:00")
    just_after_utc = dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.UTC)  # 08:00 in Shanghai
    assert window.is_released(just_after_utc)


def test_same_day_booking_stops_at_the_session_stop_time() -> None:
    window = BookingWindow(RULES, DAY, "am", "11:45")
    assert window.closes_at == local(2026, 12, 10, 11, 30)
    early = BookingWindow(RULES, DAY, "pm", "14:00")
    assert early.closes_at == local(2026, 12, 10, 14)


def test_cancel_deadline_is_hours_before_the_slot() -> None:
    window = BookingWindow(RULES, DAY, "pm", "14:00")
    assert window.cancel_deadline == local(2026, 12, 10, 12)


def test_schedule_status_order() -> None:
    now = local(2026, 12, 5, 9)
    slots = [("08:00", 0), ("08:30", 2)]
    assert schedule_status(RULES, DAY, "am", slots, stopped=True, now=now) == "stopped"
    assert schedule_status(RULES, DAY, "am", slots, stopped=False, now=now) == "open"
    assert schedule_status(RULES, DAY, "am", [("08:00", 0)], stopped=False, now=now) == "full"
    assert (
        schedule_status(RULES, dt.date(2026, 12, 20), "am", slots, stopped=False, now=now)
        == "not_released"
    )
    assert (
        schedule_status(RULES, dt.date(2026, 12, 4), "am", slots, stopped=False, now=now)
        == "closed"
    )


def test_each_slice_has_its_own_status_within_an_open_session() -> None:
    from services.catalog.service import schedule_view

    doc = {
        "_id": "s1",
        "doctor_id": "d1",
        "date": "2026-12-10",
        "session": "am",
        "fee_cents": 100,
        "slots": [
            {"id": "a", "start": "08:00", "end": "08:30", "capacity": 2},
            {"id": "b", "start": "10:00", "end": "10:30", "capacity": 2},
        ],
    }
    view = schedule_view(doc, RULES, None, local(2026, 12, 10, 9))
    assert view.status == "open"
    assert [s.status for s in view.slots] == ["closed", "open"]
