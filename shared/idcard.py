"""Chinese resident ID numbers (GB 11643-1999), phone numbers, and the masking rules.

Every number is NFKC-normalised and then must be plain ASCII before anything else looks
at it: full-width `１１０１…` becomes the ASCII number (the same person, the same keyed
hash), while digits of other scripts (Arabic-Indic `٠١٢`, Devanagari, …) that `int()` and
`str.isdigit()` accept are refused. Otherwise one person could appear as many, and a ban,
a per-person limit or the one-profile-per-person rule would not recognise them.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
_MOBILE_SHAPE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# Visible in the masked ID: the province only (see `mask_id_number`).
MASK_KEEP_PREFIX = 2


@dataclass(frozen=True)
class ResidentId:
    """What an 18-character resident ID says about its holder."""

    number: str
    birth_date: dt.date
    gender: str  # "male" | "female"


def is_ascii_digits(value: str) -> bool:
    """True for a non-empty string of `0`-`9` only (`str.isdigit` also accepts `²`, `٣`)."""
    return ASCII_DIGITS.fullmatch(value) is not None


def normalise_number(value: str) -> str:
    """NFKC, surrounding whitespace removed, upper case: the one spelling of a number."""
    return unicodedata.normalize("NFKC", value).strip().upper()


def check_character(first17: str) -> str:
    """The 18th character for the first 17 ASCII digits."""
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def parse_resident_id(value: str, *, today: dt.date | None = None) -> ResidentId:
    """Normalise, validate checksum and birth date; raise ValueError with a readable reason.

    `ResidentId.number` is the normalised ASCII form: hash and encrypt that, never `value`.
    """
    number = normalise_number(value)
    if _ID_SHAPE.fullmatch(number) is None:
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


def parse_mobile_phone(value: str) -> str:
    """A mainland mobile number as 11 ASCII digits (NFKC first); ValueError otherwise."""
    phone = normalise_number(value)
    if _MOBILE_SHAPE.fullmatch(phone) is None:
        raise ValueError("手机号应为11位数字 / must be an 11-digit mobile number")
    return phone


def mask_id_number(number: str) -> str:
    """`11****************`: the province code (first 2 characters) and nothing else.

    The masked form travels to hospital staff, HIS systems (events, webhooks) and FHIR
    clients, and the profile's owner also sees birth date and gender. What is hidden must
    therefore carry enough unknowns on its own. An ID is region (6) + birth date (8) +
    sequence (3, its last digit's parity = gender) + check character (1). Assume birth
    date and gender known and even the exact county guessed from the hospital: the
    sequence still leaves 500 equally likely numbers, the check character then follows
    and is no filter because it is hidden too. Not knowing the county (100-200 per
    province) multiplies that again. The former `1101**********002X` revealed the sequence
    and check character, so with the birth date only 2 county digits remained: about 9
    candidates after the checksum. There is no oracle to test a guess either: lookups go
    through a keyed HMAC that only auth holds.
    """
    return number[:MASK_KEEP_PREFIX] + "*" * (len(number) - MASK_KEEP_PREFIX)


def mask_phone(phone: str) -> str:
    """`138****5678`."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"
