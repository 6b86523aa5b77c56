"""Privacy through the real gateway, auth and booking: consents and deleting one's account."""

from __future__ import annotations

from tests.harness import Api
from tests.system_kit import TOMORROW, book, make_hospital, make_schedule, patient


async def test_consent_then_account_deletion_refused_while_booked_then_done(api: Api) -> None:
    h = await make_hospital(api)
    schedule = await make_schedule(api, h, capacity=1)
    token, pid = await patient(api, 701)
    consent = await api.request(
        "POST", "/me/consents", token=token, json={"kind": "patient_data", "version": "2026-11"}
    )
    assert consent.status == 200, consent.body
    me = await api.request("GET", "/me", token=token)
    assert [(c["kind"], c["version"]) for c in me.body["consents"]] == [("patient_data", "2026-11")]

    booked = await book(api, token, schedule["slots"][0]["id"], pid)
    assert booked.status == 201, booked.body
    refused = await api.request("DELETE", "/me", token=token)
    assert refused.status == 409 and refused.error_code == "INVALID_STATE"
    assert refused.body["error"]["details"]["active"] == 1

    cancelled = await api.request(
        "POST", f"/appointments/{booked.body['id']}/cancel", token=token, json={}
    )
    assert cancelled.status == 200, cancelled.body
    # a waiting 候补 would book for a deleted account when promoted: refused too
    waiting = await api.request(
        "POST",
        "/waitlist",
        token=token,
        json={
            "doctor_id": h.doctor_id,
            "date_from": TOMORROW.isoformat(),
            "date_to": TOMORROW.isoformat(),
            "patient_id": pid,
        },
    )
    assert waiting.status == 201 and waiting.body["hospital_id"] == h.id, waiting.body
    refused = await api.request("DELETE", "/me", token=token)
    assert refused.status == 409 and refused.body["error"]["details"] == {"active": 0, "waiting": 1}
    left = await api.request("DELETE", f"/waitlist/{waiting.body['id']}", token=token)
    assert left.status == 200, left.body
    deleted = await api.request("DELETE", "/me", token=token)
    assert deleted.status == 200 and deleted.body == {"deleted": True, "patients_deleted": 1}
    assert (await api.request("GET", "/me", token=token)).status == 401
