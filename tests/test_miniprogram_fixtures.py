"""The mini-program's jest fixtures are the API's reply contracts, not hand-typed shapes."""

from __future__ import annotations

from tests.miniprogram_fixtures import OUT, build_fixtures, render


def test_committed_fixtures_are_what_the_contracts_produce() -> None:
    assert OUT.read_text(encoding="utf-8") == render(), (
        "the API contracts changed: run `.venv/bin/python -m tests.miniprogram_fixtures`"
    )


def test_every_slot_carries_its_own_status() -> None:
    fixtures = build_fixtures()
    slots = [s for item in fixtures["schedules"]["items"] for s in item["slots"]]
    assert slots and all(
        s["status"] in {"open", "full", "closed", "stopped", "not_released"} for s in slots
    )
    assert set(fixtures["slot"]) == {"id", "start", "end", "capacity", "remaining", "status"}
