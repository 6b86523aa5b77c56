"""Patient profile (就诊人) contracts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, StringConstraints

from shared.contracts.base import Contract, Reply
from shared.idcard import parse_resident_id

Relation = Literal["self", "parent", "child", "spouse", "other"]


def _valid_id_number(value: str) -> str:
    return parse_resident_id(value).number


IdNumber = Annotated[str, AfterValidator(_valid_id_number)]
PersonName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=30,
        pattern=r"^[\u4e00-\u9fffA-Za-z·•. ]+$",
    ),
]
MobilePhone = Annotated[str, StringConstraints(pattern=r"^1[3-9]\d{9}$")]


class PatientCreate(Contract):
    name: PersonName
    id_number: IdNumber
    phone: MobilePhone
    relation: Relation


class PatientUpdate(Contract):
    """Editable fields; the ID number is the identity and cannot change (add a new profile)."""

    name: PersonName | None = None
    phone: MobilePhone | None = None
    relation: Relation | None = None
    is_default: Literal[True] | None = None


class PatientRef(Contract):
    patient_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PatientUpdateParams(PatientUpdate):
    patient_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Patient(Reply):
    id: str
    name: str
    id_number_masked: str
    gender: Literal["male", "female"]
    birth_date: dt.date
    phone_masked: str
    relation: Relation
    is_default: bool


class PatientList(Reply):
    items: list[Patient]


class PatientResolveParams(Contract):
    """Internal (booking → auth): the profile a booking is made for, checked against its owner."""

    user_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    patient_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ResolvedPatient(Reply):
    """Internal: what booking keeps of a profile; `id_hash` identifies the person (no-shows)."""

    id: str
    name: str
    id_number_masked: str
    id_hash: str
    gender: Literal["male", "female"]
    birth_date: dt.date
    phone_masked: str
