"""Patient profile (就诊人) contracts."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, StringConstraints

from shared.contracts.base import Contract, Reply, VisibleText
from shared.idcard import parse_mobile_phone, parse_resident_id

Relation = Literal["self", "parent", "child", "spouse", "other"]


def _valid_id_number(value: str) -> str:
    return parse_resident_id(value).number


def _nfkc(value: object) -> object:
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def _valid_mobile_phone(value: str) -> str:
    return parse_mobile_phone(value)


IdNumber = Annotated[str, AfterValidator(_valid_id_number)]
# NFKC first (full-width Latin letters become ASCII), then only visible letters: bidi
# controls and zero-width characters are refused by the pattern and by VisibleText.
PersonName = Annotated[
    str,
    BeforeValidator(_nfkc),
    StringConstraints(
        strip_whitespace=True,
        min_length=2,
        max_length=30,
        pattern=r"^[\u4e00-\u9fffA-Za-z·•. ]+$",
    ),
    VisibleText,
]
MobilePhone = Annotated[
    str, StringConstraints(min_length=11, max_length=11), AfterValidator(_valid_mobile_phone)
]


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
