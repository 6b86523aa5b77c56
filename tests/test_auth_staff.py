"""Staff accounts: roles, disable, reset, own password, revocation versions, audit log."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.auth.audit import audit_entry
from services.auth.tokens import hash_refresh_token
from shared.context import Caller
from shared.contracts.auth import (
    AuditQuery,
    CreateStaffParams,
    PasswordChange,
    PasswordResetParams,
    StaffPatchParams,
)
from shared.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from shared.messaging.events import new_event
from shared.storage.mongo import Document
from tests.auth_kit import PLATFORM_ADMIN, AuthKit, FakeClock, StubWechat, build_auth


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document], clock: FakeClock) -> AuthKit:
    return await build_auth(mongo_db, clock, StubWechat())


async def admin_and_desk(kit: AuthKit) -> tuple[Caller, str]:
    admin = await kit.staff.create_staff(
        PLATFORM_ADMIN,
        CreateStaffParams(username="admin1", password="admin-pass", hospital_id="h_1"),
    )
    caller = Caller(user_id=admin.id, role="hospital_admin", hospital_id="h_1")
    tick(kit)
    desk = await kit.staff.create_staff(
        caller,
        CreateStaffParams(username="desk1", password="desk-pass1", hospital_id="h_1", role="desk"),
    )
    return caller, desk.id


def tick(kit: AuthKit) -> None:
    """Let the fake clock move on (entries and accounts are ordered by time)."""
    clock = kit.service.clock
    assert isinstance(clock, FakeClock)
    clock.advance(seconds=1)


def claims(kit: AuthKit, token: str) -> dict[str, object]:
    return jwt.decode(
        token,
        kit.signing_key.public_key_pem,
        algorithms=["EdDSA"],
        audience="guahao",
        options={"verify_iat": False, "verify_exp": False},
    )


async def test_desk_login_carries_role_hospital_and_token_version(kit: AuthKit) -> None:
    await admin_and_desk(kit)
    pair = await kit.service.staff_login("desk1", "desk-pass1")
    assert (pair.user.role, pair.user.hospital_id) == ("desk", "h_1")
    assert {k: claims(kit, pair.access_token)[k] for k in ("role", "hid", "tv")} == {
        "role": "desk",
        "hid": "h_1",
        "tv": 0,
    }


async def test_staff_is_listed_and_managed_only_by_its_hospitals_admins(kit: AuthKit) -> None:
    admin, desk_id = await admin_and_desk(kit)
    listed = await kit.staff.list_staff(admin, "h_1")
    assert [(a.username, a.role) for a in listed.items] == [
        ("admin1", "hospital_admin"),
        ("desk1", "desk"),
    ]
    desk = Caller(user_id=desk_id, role="desk", hospital_id="h_1")
    with pytest.raises(Forbidden):
        await kit.staff.list_staff(desk, "h_1")
    other = Caller(user_id="s_x", role="hospital_admin", hospital_id="h_2")
    with pytest.raises(NotFound):
        await kit.staff.update_staff(
            other, StaffPatchParams(hospital_id="h_1", staff_id=desk_id, disabled=True)
        )
    with pytest.raises(NotFound):  # an account of another hospital through this one
        await kit.staff.update_staff(
            other, StaffPatchParams(hospital_id="h_2", staff_id=desk_id, disabled=True)
        )


async def test_disabling_revokes_refresh_and_raises_the_token_version(kit: AuthKit) -> None:
    admin, desk_id = await admin_and_desk(kit)
    pair = await kit.service.staff_login("desk1", "desk-pass1")
    since = kit.service.clock().timestamp()
    account = await kit.staff.update_staff(
        admin, StaffPatchParams(hospital_id="h_1", staff_id=desk_id, disabled=True)
    )
    assert account.disabled
    with pytest.raises(Unauthenticated):
        await kit.service.refresh(pair.refresh_token)
    with pytest.raises(Unauthenticated):
        await kit.service.staff_login("desk1", "desk-pass1")
    revoked = await kit.staff.revocations(None, since)
    assert [(r.user_id, r.token_version) for r in revoked.items] == [(desk_id, 1)]
    with pytest.raises(Forbidden):
        await kit.staff.revocations(admin, since)
    await kit.staff.update_staff(
        admin, StaffPatchParams(hospital_id="h_1", staff_id=desk_id, disabled=False)
    )
    again = await kit.service.staff_login("desk1", "desk-pass1")
    assert claims(kit, again.access_token)["tv"] == 1


async def test_role_change_revokes_and_nobody_disables_or_demotes_themselves(kit: AuthKit) -> None:
    admin, desk_id = await admin_and_desk(kit)
    promoted = await kit.staff.update_staff(
        admin, StaffPatchParams(hospital_id="h_1", staff_id=desk_id, role="hospital_admin")
    )
    assert promoted.role == "hospital_admin"
    pair = await kit.service.staff_login("desk1", "desk-pass1")
    assert claims(kit, pair.access_token)["tv"] == 1
    for patch in ({"disabled": True}, {"role": "desk"}):
        with pytest.raises(Conflict):
            await kit.staff.update_staff(
                admin, StaffPatchParams(hospital_id="h_1", staff_id=admin.user_id, **patch)
            )


async def test_reset_generates_a_one_time_password_and_the_old_one_is_refused(kit: AuthKit) -> None:
    admin, desk_id = await admin_and_desk(kit)
    result = await kit.staff.reset_password(
        admin, PasswordResetParams(hospital_id="h_1", staff_id=desk_id)
    )
    assert result.temporary_password and result.account.must_change_password
    with pytest.raises(Unauthenticated):
        await kit.service.staff_login("desk1", "desk-pass1")
    pair = await kit.service.staff_login("desk1", result.temporary_password)
    assert pair.must_change_password and claims(kit, pair.access_token)["pwc"] is True
    desk = Caller(user_id=desk_id, role="desk", hospital_id="h_1")
    changed = await kit.staff.change_password(
        desk, PasswordChange(old=result.temporary_password, new="my-own-pass")
    )
    assert not changed.must_change_password
    assert "pwc" not in claims(kit, changed.access_token)
    assert claims(kit, changed.access_token)["tv"] == 2
    with pytest.raises(Unauthenticated):
        await kit.service.refresh(pair.refresh_token)
    await kit.service.staff_login("desk1", "my-own-pass")
    given = await kit.staff.reset_password(
        admin, PasswordResetParams(hospital_id="h_1", staff_id=desk_id, password="chosen-by-admin")
    )
    assert given.temporary_password is None
    await kit.service.staff_login("desk1", "chosen-by-admin")


async def test_changing_ones_password_needs_the_current_one(kit: AuthKit) -> None:
    admin, _ = await admin_and_desk(kit)
    with pytest.raises(ValidationFailed):
        await kit.staff.change_password(admin, PasswordChange(old="wrong-pass", new="another-pass"))
    await kit.staff.change_password(admin, PasswordChange(old="admin-pass", new="another-pass"))
    with pytest.raises(Unauthenticated):
        await kit.service.staff_login("admin1", "admin-pass")
    patient = await kit.service.users.upsert_patient("openid-p", None, kit.service.clock())
    with pytest.raises(Forbidden):
        await kit.staff.change_password(
            Caller(user_id=patient["_id"], role="patient"),
            PasswordChange(old="x", new="another-pass"),
        )


async def test_staff_actions_are_in_the_audit_log_with_their_actor(
    kit: AuthKit, clock: FakeClock
) -> None:
    admin, desk_id = await admin_and_desk(kit)
    tick(kit)
    await kit.staff.update_staff(
        admin, StaffPatchParams(hospital_id="h_1", staff_id=desk_id, disabled=True)
    )
    tick(kit)
    await kit.staff.reset_password(admin, PasswordResetParams(hospital_id="h_1", staff_id=desk_id))
    log = await kit.audit.log(admin, AuditQuery(hospital_id="h_1"))
    assert [(e.action, e.staff_id) for e in log.items] == [
        ("staff.created", PLATFORM_ADMIN.user_id),
        ("staff.created", admin.user_id),
        ("staff.disabled", admin.user_id),
        ("staff.password_reset", admin.user_id),
    ]
    assert log.items[2].target == f"staff/{desk_id}"
    assert "password" not in str(log.model_dump()).replace("password_reset", "")
    with pytest.raises(Forbidden):
        await kit.audit.log(
            Caller(user_id=desk_id, role="desk", hospital_id="h_1"), AuditQuery(hospital_id="h_1")
        )
    yesterday = (clock() - dt.timedelta(days=1)).date()
    past = await kit.audit.log(admin, AuditQuery(hospital_id="h_1", to=yesterday))
    assert past.items == []


async def test_an_event_is_recorded_once_and_only_with_a_staff_actor(kit: AuthKit) -> None:
    desk = Caller(user_id="s_desk", role="desk", hospital_id="h_1")
    event = new_event(
        "appointment.checked_in",
        "h_1",
        {"appointment": {"id": "apt_1", "status": "checked_in", "patient_name": "张三"}},
        actor=desk,
    )
    for _ in range(2):
        await kit.audit.on_event(event)
    await kit.audit.on_event(
        new_event(
            "appointment.booked",
            "h_1",
            {"appointment": {"id": "apt_2"}},
            actor=Caller(user_id="u_1", role="patient"),
        )
    )
    await kit.audit.on_event(new_event("appointment.cancelled", "h_1", {}))
    admin = Caller(user_id="s_a", role="hospital_admin", hospital_id="h_1")
    items = (await kit.audit.log(admin, AuditQuery(hospital_id="h_1"))).items
    assert [(e.action, e.staff_id, e.target) for e in items] == [
        ("appointment.checked_in", "s_desk", "appointment/apt_1")
    ]
    assert items[0].details == {"appointment.id": "apt_1", "appointment.status": "checked_in"}
    assert audit_entry(event) is not None and "张三" not in str(audit_entry(event))


async def test_a_refresh_token_issued_before_a_revocation_is_refused(kit: AuthKit) -> None:
    admin, desk_id = await admin_and_desk(kit)
    pair = await kit.service.staff_login("desk1", "desk-pass1")
    # a refresh racing the revocation: its token was inserted after the revoke swept them
    record = await kit.refresh_tokens.get(hash_refresh_token(pair.refresh_token))
    assert record is not None
    await kit.users.update_user(desk_id, {"$inc": {"token_version": 1}})
    with pytest.raises(Unauthenticated):
        await kit.service.refresh(pair.refresh_token)
    assert admin.user_id != desk_id
