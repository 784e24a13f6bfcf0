"""Validators for numbers that carry a checksum or a fixed structure. Pure functions."""

from __future__ import annotations

import datetime as _dt
import ipaddress

# GB 11643-1999: weight of digit i is 2^(17-i) mod 11; the check character indexes this string.
_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHECK = "10X98765432"
# Province-level codes (first two digits of the administrative division code, GB/T 2260).
_PROVINCES = frozenset({
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
    50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
})

# IBAN length per country (ISO 13616 registry, the common subset).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def digits_only(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def gb11643_check_char(first17: str) -> str:
    """The 18th character of a resident identity number whose first 17 digits are given."""
    total = sum(int(d) * w for d, w in zip(first17, _GB11643_WEIGHTS, strict=True))
    return _GB11643_CHECK[total % 11]


def cn_id_valid(value: str) -> bool:
    """An 18-character PRC resident ID: province code, a real birth date, GB 11643 check character."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    if int(value[:2]) not in _PROVINCES:
        return False
    try:
        birth = _dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not 1900 <= birth.year <= 2100:
        return False
    return gb11643_check_char(value[:17]) == value[17].upper()


def luhn_valid(value: str) -> bool:
    """The Luhn (mod 10) check over the digits of `value` (separators ignored)."""
    digits = digits_only(value)
    if len(digits) < 12:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(value: str) -> bool:
    """ISO 13616: known country, its length, and the mod-97 check equal to 1."""
    iban = value.replace(" ", "").upper()
    if len(iban) < 15 or IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def us_ssn_valid(value: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000; not all one digit."""
    digits = digits_only(value)
    if len(digits) != 9 or len(set(digits)) == 1:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return digits not in ("123456789", "078051120")  # the advertising and the Woolworth SSN


def ip_valid(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def card_brand_valid(value: str) -> bool:
    """Luhn plus an issuer prefix and length of a major scheme (Visa, Mastercard, Amex, ...)."""
    digits = digits_only(value)
    n = len(digits)
    if not luhn_valid(digits):
        return False
    if digits[0] == "4":
        return n in (13, 16, 19)
    if digits[:2] in ("34", "37"):
        return n == 15
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return n == 16
    if digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19
    if 3528 <= int(digits[:4]) <= 3589:
        return 16 <= n <= 19
    if digits[:2] in ("36", "38", "39") or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    return False


def cn_bank_card_valid(value: str) -> bool:
    """A UnionPay card: 62 prefix, 16 to 19 digits, Luhn."""
    digits = digits_only(value)
    return digits.startswith("62") and 16 <= len(digits) <= 19 and luhn_valid(digits)
