"""Validation and formatting of CNPJ numbers (Brazilian company registry ids).

A CNPJ has 14 digits: an 8-digit company root, a 4-digit branch number and two
mod-11 check digits, usually written as ``11.222.333/0001-81``.

Only the classic all-numeric CNPJ is supported. The alphanumeric CNPJ that the
Receita Federal starts issuing in July 2026 (letters allowed in the first 12
positions) is rejected as containing invalid characters.

Note that the mod-11 scheme does not catch every single-digit typo: changing the
digit at position 0, 4 or 8 (whose weights in the two rounds sum to 11) can turn
a CNPJ ending in ``00`` into another valid CNPJ ending in ``00``.
"""

from __future__ import annotations

__all__ = [
    "InvalidCNPJ",
    "cnpj_check_digits",
    "format_cnpj",
    "is_valid_cnpj",
    "normalize_cnpj",
]

_DIGITS = frozenset("0123456789")
# Characters that are silently dropped from user input (formatting punctuation).
_SEPARATORS = frozenset("./- ")
_WEIGHTS_FIRST = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_WEIGHTS_SECOND = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_LENGTH = 14
_BASE_LENGTH = 12


class InvalidCNPJ(ValueError):
    """A value is not a valid CNPJ; the message says why."""


def _check_digit(digits: str, weights: tuple[int, ...]) -> str:
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return "0" if remainder < 2 else str(11 - remainder)


def cnpj_check_digits(base12: str) -> str:
    """Return the two check digits for a 12-digit CNPJ base."""
    if len(base12) != _BASE_LENGTH or not _DIGITS.issuperset(base12):
        raise InvalidCNPJ(f"CNPJ base must be exactly {_BASE_LENGTH} ASCII digits, got {base12!r}")
    first = _check_digit(base12, _WEIGHTS_FIRST)
    second = _check_digit(base12 + first, _WEIGHTS_SECOND)
    return first + second


def normalize_cnpj(value: str) -> str:
    """Validate a CNPJ and return it as a 14-digit string without punctuation."""
    stripped = value.strip()
    digits = "".join(ch for ch in stripped if ch not in _SEPARATORS)
    bad = sorted({ch for ch in digits if ch not in _DIGITS})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise InvalidCNPJ(f"invalid CNPJ {value!r}: contains non-digit characters ({shown})")
    if len(digits) != _LENGTH:
        raise InvalidCNPJ(f"invalid CNPJ {value!r}: must have {_LENGTH} digits, got {len(digits)}")
    if len(set(digits)) == 1:
        raise InvalidCNPJ(f"invalid CNPJ {value!r}: all digits are identical")
    if cnpj_check_digits(digits[:_BASE_LENGTH]) != digits[_BASE_LENGTH:]:
        raise InvalidCNPJ(f"invalid CNPJ {value!r}: check digits do not match")
    return digits


def is_valid_cnpj(value: str) -> bool:
    """Return whether the value is a valid CNPJ (formatted or digits only)."""
    try:
        normalize_cnpj(value)
    except InvalidCNPJ:
        return False
    return True


def format_cnpj(value: str) -> str:
    """Validate a CNPJ and return it formatted as ``11.222.333/0001-81``."""
    d = normalize_cnpj(value)
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"
