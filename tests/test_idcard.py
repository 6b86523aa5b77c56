"""ID and phone numbers: one spelling per person, ASCII only, masking that rebuilds nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from shared.contracts.catalog import DoctorCreate
from shared.contracts.patients import PatientCreate, PatientUpdate
from shared.idcard import (
    check_character,
    is_ascii_digits,
    mask_id_number,
    parse_mobile_phone,
    parse_resident_id,
)

VALID = "11010519491231002X"
FULL_WIDTH = VALID.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
ARABIC_INDIC = VALID[:17].translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")) + "X"


def test_full_width_digits_normalise_to_the_same_ascii_number() -> None:
    assert parse_resident_id(FULL_WIDTH).number == VALID
    one_full_width_digit = VALID[:5] + "５" + VALID[6:]
    assert parse_resident_id(one_full_width_digit).number == VALID


@pytest.mark.parametrize(
    "value",
    [
        ARABIC_INDIC,
        VALID[:5] + "٥" + VALID[6:],  # one Arabic-Indic digit
        VALID[:5] + "५" + VALID[6:],  # Devanagari
        VALID[:5] + "௫" + VALID[6:],  # Tamil
        VALID[:17] + "x\u200b",  # zero-width space
    ],
)
def test_digits_of_other_scripts_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="18"):
        parse_resident_id(value)


def test_check_character_and_ascii_digit_test() -> None:
    assert check_character(VALID[:17]) == "X"
    assert is_ascii_digits("0123") and not is_ascii_digits("²") and not is_ascii_digits("٣")
    assert not is_ascii_digits("")


def test_phone_numbers_are_normalised_and_ascii_only() -> None:
    assert parse_mobile_phone("１３８１２３４５６７８") == "13812345678"
    # NFKC maps compatibility digits (², 𝟖) to ASCII: one spelling, not a second person
    assert parse_mobile_phone("1381234567𝟖") == "13812345678"
    for bad in ("1381234567٨", "1381234567௮", "23812345678", "1381234567"):
        with pytest.raises(ValueError):
            parse_mobile_phone(bad)


def test_contract_stores_the_normalised_numbers() -> None:
    created = PatientCreate.model_validate(
        {
            "name": "张三",
            "id_number": FULL_WIDTH,
            "phone": "１３８１２３４５６７８",
            "relation": "self",
        }
    )
    assert created.id_number == VALID and created.phone == "13812345678"


@pytest.mark.parametrize(
    "name",
    [
        "张\u200b三",  # zero-width space
        "张三\u202e",  # right-to-left override
        "\u2066张三\u2069",  # isolates
        "张\u200d三",  # zero-width joiner
        "张\ufeff三",  # BOM
    ],
)
def test_names_with_invisible_characters_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        PatientCreate.model_validate(
            {"name": name, "id_number": VALID, "phone": "13812345678", "relation": "self"}
        )
    with pytest.raises(ValidationError):
        PatientUpdate.model_validate({"name": name})
    with pytest.raises(ValidationError):
        DoctorCreate.model_validate(
            {
                "name": name,
                "title": "主任医师",
                "department_id": "d_1",
                "fee_cents": 100,
                "published": True,
            }
        )


def test_masked_id_keeps_only_the_province() -> None:
    assert mask_id_number(VALID) == "11" + "*" * 16


def test_masked_id_with_birth_date_and_gender_leaves_hundreds_of_candidates() -> None:
    """Everything shown anywhere (masked ID, birth date, gender) and even the exact county
    guessed: count the valid numbers that match."""
    person = parse_resident_id(VALID)
    masked = mask_id_number(VALID)
    county = VALID[:6]
    birth = person.birth_date.strftime("%Y%m%d")
    candidates = set()
    for seq in range(1000):
        first17 = f"{county}{birth}{seq:03d}"
        number = first17 + check_character(first17)
        guess = parse_resident_id(number, today=dt.date(2026, 1, 1))
        if mask_id_number(number) == masked and guess.gender == person.gender:
            candidates.add(number)
    assert VALID in candidates and len(candidates) >= 500
