"""Patient profiles: real-name rules, the limit of five, ownership and PII at rest."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.auth.patients import PatientService
from shared.context import Caller
from shared.contracts.patients import (
    PatientCreate,
    PatientResolveParams,
    PatientUpdate,
)
from shared.errors import Conflict, Forbidden, LimitReached, NotFound, Unauthenticated
from shared.storage.mongo import Document
from tests.auth_kit import (
    PLATFORM_ADMIN,
    FakeClock,
    build_patients,
    new_patient,
    resident_id,
)

PHONE = "13812345678"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service(mongo_db: AsyncDatabase[Document], clock: FakeClock) -> PatientService:
    return await build_patients(mongo_db, clock)


def profile(id_number: str, name: str = "张三", relation: str = "self") -> PatientCreate:
    return PatientCreate.model_validate(
        {"name": name, "id_number": id_number, "phone": PHONE, "relation": relation}
    )


def person(n: int) -> str:
    return resident_id(sequence=f"{n:03d}")


async def test_create_derives_gender_and_birth_date_and_masks_numbers(
    service: PatientService,
) -> None:
    created = await service.create(await new_patient(service), profile("11010519491231002X"))
    assert created.name == "张三"
    assert created.gender == "female" and created.birth_date == dt.date(1949, 12, 31)
    assert created.id_number_masked == "11****************"
    assert created.phone_masked == "138****5678"
    assert created.relation == "self" and created.is_default is True


async def test_male_is_derived_from_an_odd_seventeenth_digit(service: PatientService) -> None:
    created = await service.create(await new_patient(service), profile(resident_id(sequence="123")))
    assert created.gender == "male" and created.birth_date == dt.date(1990, 3, 7)


async def test_stored_profile_holds_no_plaintext_name_id_number_or_phone(
    service: PatientService, mongo_db: AsyncDatabase[Document]
) -> None:
    id_number = "11010519491231002X"
    await service.create(await new_patient(service), profile(id_number))
    raw = await mongo_db["patients"].find_one({})
    assert raw is not None
    dump = repr(raw) + repr(list(raw.values()))
    for secret in (id_number, id_number[:17], PHONE, "张三", "张三".encode().hex()):
        assert secret not in dump
    assert all(isinstance(raw[f"{f}_enc"], str) for f in ("name", "id_number", "phone"))
    assert len(raw["id_hash"]) == 64 and None not in raw.values()


async def test_sixth_profile_is_refused(service: PatientService) -> None:
    caller = await new_patient(service)
    for n in range(5):
        await service.create(caller, profile(person(n)))
    with pytest.raises(LimitReached) as caught:
        await service.create(caller, profile(person(5)))
    assert caught.value.details == {"limit": 5}


async def test_ten_concurrent_creates_for_one_user_yield_exactly_five(
    service: PatientService, mongo_db: AsyncDatabase[Document]
) -> None:
    caller = await new_patient(service)
    results = await asyncio.gather(
        *(service.create(caller, profile(person(n))) for n in range(10)), return_exceptions=True
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 5
    assert all(isinstance(r, LimitReached) for r in refused), refused
    assert await mongo_db["patients"].count_documents({"user_id": caller.user_id}) == 5
    listed = await service.list_profiles(caller)
    assert sum(p.is_default for p in listed.items) == 1


async def test_the_same_person_twice_for_one_user_is_a_conflict(service: PatientService) -> None:
    caller = await new_patient(service)
    await service.create(caller, profile(person(1)))
    with pytest.raises(Conflict) as caught:
        await service.create(caller, profile(person(1), name="李四", relation="other"))
    assert set(caught.value.details["fields"]) == {"id_number"}


async def test_the_same_person_twice_concurrently_is_created_once(service: PatientService) -> None:
    caller = await new_patient(service)
    results = await asyncio.gather(
        *(service.create(caller, profile(person(1))) for _ in range(4)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))


async def test_one_person_may_be_a_profile_of_two_users(service: PatientService) -> None:
    await service.create(await new_patient(service), profile(person(1)))
    await service.create(await new_patient(service), profile(person(1)))


async def test_another_users_profile_is_not_found(service: PatientService) -> None:
    owner, other = await new_patient(service), await new_patient(service)
    pid = (await service.create(owner, profile(person(1)))).id
    with pytest.raises(NotFound):
        await service.get(other, pid)
    with pytest.raises(NotFound):
        await service.update(other, pid, PatientUpdate(relation="other", is_default=True))
    with pytest.raises(NotFound):
        await service.delete(other, pid)
    assert (await service.list_profiles(other)).items == []
    still = await service.get(owner, pid)
    assert still.relation == "self" and still.is_default


async def test_profiles_need_a_patient_caller(service: PatientService) -> None:
    with pytest.raises(Unauthenticated):
        await service.list_profiles(None)
    for caller in (PLATFORM_ADMIN, Caller(user_id="s1", role="hospital_admin", hospital_id="h")):
        with pytest.raises(Forbidden):
            await service.create(caller, profile(person(1)))


async def test_update_changes_name_phone_and_relation(service: PatientService) -> None:
    caller = await new_patient(service)
    pid = (await service.create(caller, profile(person(1)))).id
    updated = await service.update(
        caller, pid, PatientUpdate(name="张小三", phone="13900001111", relation="child")
    )
    assert (updated.name, updated.phone_masked, updated.relation) == (
        "张小三",
        "139****1111",
        "child",
    )
    assert await service.get(caller, pid) == updated


async def test_setting_the_default_moves_it(service: PatientService) -> None:
    caller = await new_patient(service)
    first = await service.create(caller, profile(person(1)))
    second = await service.create(caller, profile(person(2)))
    assert first.is_default and not second.is_default
    moved = await service.update(caller, second.id, PatientUpdate(is_default=True))
    assert moved.is_default
    listed = await service.list_profiles(caller)
    assert [(p.id, p.is_default) for p in listed.items] == [(second.id, True), (first.id, False)]


async def test_deleting_the_default_makes_the_oldest_remaining_default(
    service: PatientService, clock: FakeClock
) -> None:
    caller = await new_patient(service)
    ids = []
    for n in range(3):
        ids.append((await service.create(caller, profile(person(n)))).id)
        clock.advance(seconds=1)
    await service.update(caller, ids[2], PatientUpdate(is_default=True))
    await service.delete(caller, ids[2])
    listed = await service.list_profiles(caller)
    assert [(p.id, p.is_default) for p in listed.items] == [(ids[0], True), (ids[1], False)]
    with pytest.raises(NotFound):
        await service.get(caller, ids[2])


async def test_deleting_a_profile_frees_its_place(service: PatientService) -> None:
    caller = await new_patient(service)
    ids = [(await service.create(caller, profile(person(n)))).id for n in range(5)]
    await service.delete(caller, ids[2])
    await service.create(caller, profile(person(9)))
    assert len((await service.list_profiles(caller)).items) == 5


async def test_resolve_gives_booking_the_person_hash_for_the_owner_only(
    service: PatientService,
) -> None:
    owner = await new_patient(service)
    created = await service.create(owner, profile("11010519491231002X"))
    params = PatientResolveParams(user_id=owner.user_id, patient_id=created.id)
    for caller in (None, PLATFORM_ADMIN, owner):
        resolved = await service.resolve(caller, params)
        assert resolved.id_number_masked == "11****************" and resolved.name == "张三"
        assert len(resolved.id_hash) == 64
    # the same person under another account has the same hash: a ban follows the person
    second_owner = await new_patient(service)
    twin = await service.create(second_owner, profile("11010519491231002X"))
    twin_resolved = await service.resolve(
        None, PatientResolveParams(user_id=second_owner.user_id, patient_id=twin.id)
    )
    assert twin_resolved.id_hash == resolved.id_hash
    with pytest.raises(NotFound):
        await service.resolve(None, PatientResolveParams(user_id="u_other", patient_id=created.id))
    with pytest.raises(Forbidden):
        await service.resolve(await new_patient(service), params)


async def test_a_full_width_digit_does_not_make_a_banned_person_someone_else(
    service: PatientService,
) -> None:
    """Bans, per-person limits and no-shows follow `id_hash`: one full-width digit in the ID
    must give the same person hash (and be a duplicate for the same user)."""
    owner = await new_patient(service)
    created = await service.create(owner, profile("11010519491231002X"))
    dodge = "110105194912310０2X"
    with pytest.raises(Conflict):
        await service.create(owner, profile(dodge))
    other_owner = await new_patient(service)
    twin = await service.create(other_owner, profile(dodge))
    hashes = {
        (await service.resolve(None, PatientResolveParams(user_id=u.user_id, patient_id=p))).id_hash
        for u, p in ((owner, created.id), (other_owner, twin.id))
    }
    assert len(hashes) == 1


async def test_an_arabic_indic_digit_in_the_id_is_refused(service: PatientService) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        profile("110105194912310٠2X")


def test_the_person_hash_takes_only_normalised_ascii() -> None:
    import secrets

    from services.auth.keys import PiiKeys
    from services.auth.pii import PiiCipher

    cipher = PiiCipher(PiiKeys.from_bytes(secrets.token_bytes(64)))
    assert len(cipher.lookup_hash("11010519491231002X")) == 64
    with pytest.raises(ValueError):
        cipher.lookup_hash("110105194912310０2X")


async def test_no_profile_before_the_patient_data_consent(service: PatientService) -> None:
    user = await service.users.upsert_patient("openid-no-consent", None, service.clock())
    caller = Caller(user_id=user["_id"], role="patient")
    with pytest.raises(Forbidden) as refused:
        await service.create(caller, profile(person(7)))
    assert refused.value.details == {"consent_required": "patient_data"}
    await service.users.record_consent(user["_id"], "patient_data", "2026-12", service.clock())
    assert (await service.create(caller, profile(person(7)))).name == "张三"
