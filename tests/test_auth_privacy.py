"""Privacy: consents recorded with their version (PIPL), and deleting one's account."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from services.auth.repository import PatientRepository
from services.auth.service import AuthService
from shared.context import Caller
from shared.contracts.auth import ConsentGiven
from shared.contracts.patients import PatientCreate
from shared.errors import Forbidden, InvalidState, Unauthenticated
from shared.storage.mongo import Document
from tests.auth_kit import (
    AuthKit,
    FakeClock,
    StubWechat,
    build_auth,
    build_patients,
    resident_id,
)


class StubAppointments:
    def __init__(self, active: int = 0, waiting: int = 0) -> None:
        self.active, self.waiting = active, waiting
        self.asked: list[Caller] = []

    async def active_count(self, caller: Caller) -> tuple[int, int]:
        self.asked.append(caller)
        return self.active, self.waiting


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document], clock: FakeClock) -> AuthKit:
    return await build_auth(mongo_db, clock, StubWechat({"code-a": "openid-a"}))


def with_collaborators(
    kit: AuthKit, db: AsyncDatabase[Document], appointments: StubAppointments
) -> AuthService:
    service = kit.service
    service.patients = PatientRepository(db)
    service.appointments = appointments
    return service


async def patient_caller(kit: AuthKit) -> Caller:
    pair = await kit.service.wechat_login("code-a")
    return Caller(user_id=pair.user.id, role="patient")


async def test_a_consent_is_recorded_with_its_version_and_shown_in_me(
    kit: AuthKit, clock: FakeClock
) -> None:
    caller = await patient_caller(kit)
    assert (await kit.service.me(caller)).consents == []
    await kit.service.record_consent(caller, ConsentGiven(kind="privacy", version="2026-11"))
    clock.advance(minutes=5)
    me = await kit.service.record_consent(
        caller, ConsentGiven(kind="patient_data", version="2026-11")
    )
    assert [(c.kind, c.version) for c in me.consents] == [
        ("patient_data", "2026-11"),
        ("privacy", "2026-11"),
    ]
    # a newer version replaces the older one of the same kind
    me = await kit.service.record_consent(caller, ConsentGiven(kind="privacy", version="2027-01"))
    assert {c.kind: c.version for c in (await kit.service.me(caller)).consents} == {
        "patient_data": "2026-11",
        "privacy": "2027-01",
    }
    assert all("T" in c.at for c in me.consents)


def test_consent_kinds_and_versions_are_checked() -> None:
    with pytest.raises(ValidationError):
        ConsentGiven.model_validate({"kind": "marketing", "version": "1"})
    with pytest.raises(ValidationError):
        ConsentGiven.model_validate({"kind": "privacy", "version": {"$gt": ""}})
    with pytest.raises(ValidationError):
        ConsentGiven.model_validate({"kind": "privacy", "version": "1", "extra": 1})


async def test_deleting_the_account_removes_its_profiles_and_sessions(
    kit: AuthKit, mongo_db: AsyncDatabase[Document], clock: FakeClock
) -> None:
    appointments = StubAppointments(active=0)
    service = with_collaborators(kit, mongo_db, appointments)
    pair = await service.wechat_login("code-a")
    caller = Caller(user_id=pair.user.id, role="patient")
    profiles = await build_patients(mongo_db, clock)
    await service.record_consent(caller, ConsentGiven(kind="patient_data", version="2026-12"))
    await profiles.create(
        caller,
        PatientCreate(name="张三", id_number=resident_id(), phone="13800138000", relation="self"),
    )
    deleted = await service.delete_account(caller)
    assert (deleted.deleted, deleted.patients_deleted) == (True, 1)
    assert appointments.asked == [caller]
    assert await mongo_db["patients"].count_documents({"user_id": caller.user_id}) == 0
    with pytest.raises(Unauthenticated):
        await service.me(caller)
    with pytest.raises(Unauthenticated):
        await service.refresh(pair.refresh_token)


async def test_deleting_the_account_is_refused_while_appointments_are_active(
    kit: AuthKit, mongo_db: AsyncDatabase[Document]
) -> None:
    service = with_collaborators(kit, mongo_db, StubAppointments(active=2))
    caller = await patient_caller(kit)
    with pytest.raises(InvalidState) as refused:
        await service.delete_account(caller)
    assert refused.value.details == {"active": 2, "waiting": 0}
    assert (await service.me(caller)).id == caller.user_id
    service.appointments = StubAppointments(active=0, waiting=1)  # a 候补 still waiting
    with pytest.raises(InvalidState) as waiting:
        await service.delete_account(caller)
    assert waiting.value.details == {"active": 0, "waiting": 1}


async def test_staff_cannot_delete_their_account_this_way(
    kit: AuthKit, mongo_db: AsyncDatabase[Document]
) -> None:
    service = with_collaborators(kit, mongo_db, StubAppointments())
    with pytest.raises(Forbidden):
        await service.delete_account(
            Caller(user_id="s_1", role="hospital_admin", hospital_id="h_1")
        )
    with pytest.raises(Unauthenticated):
        await service.delete_account(None)
