"""Chinese resident ID numbers (GB 11643-1999) and the masking rules of the contract."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


@dataclass(frozen=True)
class ResidentId:
    """What an 18-character resident ID says about its holder."""

    number: str
    birth_date: dt.date
    gender: str  # "male" | "female"


def check_character(first17: str) -> str:
    """The 18th character for the first 17 digits."""
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def parse_resident_id(value: str, *, today: dt.date | None = None) -> ResidentId:
    """Validate checksum and birth date; raise ValueError with a readable reason."""
    number = value.strip().upper()
    if len(number) != 18 or not number[:17].isdigit() or not (
        number[17].isdigit() or number[17] == "X"
    ):
        raise ValueError("身份证号应为18位 / must be 18 characters: 17 digits then a digit or X")
    if check_character(number[:17]) != number[17]:
        raise ValueError("身份证号校验位错误 / checksum does not match")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError("身份证号中的出生日期无效 / birth date is not a real date") from None
    if birth > (today or dt.date.today()) or birth.year < 1890:
        raise ValueError("身份证号中的出生日期无效 / birth date is not plausible")
    return ResidentId(number, birth, "male" if int(number[16]) % 2 else "female")


def mask_id_number(number: str) -> str:
    """`1101**********002X`: first 4 and last 4 characters kept."""
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(phone: str) -> str:
    """`138****5678`."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"
