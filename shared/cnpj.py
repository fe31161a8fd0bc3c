"""Validation and formatting of CNPJ numbers (Brazilian company registry ids).

A CNPJ has 14 characters: an 8-character company root, a 4-character branch number
and two mod-11 check digits, usually written as ``11.222.333/0001-81``.

Two forms are accepted, and both are stored the same way (14 characters, unmasked):

- the classic all-numeric CNPJ (``11222333000181``);
- the alphanumeric CNPJ the Receita Federal issues since July 2026: the first 12
  characters are ``[0-9A-Z]``, the last two are still numeric check digits
  (``12ABC34501DE35``, written ``12.ABC.345/01DE-35``).

Invariants:
- Check digits are computed with the same weights for both forms; each character counts
  as its ASCII code minus 48 (so ``"0"``..``"9"`` are 0..9 and ``"A"`` is 17, ``"Z"`` 42).
- Input is stripped of the formatting punctuation ``./-`` and spaces and upper-cased
  (``12.abc.345/01de-35`` is the same CNPJ); any other character is refused.
- The normalized form is exactly 14 characters ``[0-9A-Z]{12}[0-9]{2}``.

Note that the mod-11 scheme does not catch every single-character typo: changing the
character at position 0, 4 or 8 (whose weights in the two rounds sum to 11) can turn
a CNPJ ending in ``00`` into another valid CNPJ ending in ``00``.
"""

from __future__ import annotations

__all__ = [
    "InvalidCNPJ",
    "cnpj_check_digits",
    "cnpj_search_key",
    "format_cnpj",
    "is_valid_cnpj",
    "normalize_cnpj",
]

_DIGITS = frozenset("0123456789")
_BASE_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Characters that are silently dropped from user input (formatting punctuation).
_SEPARATORS = frozenset("./- ")
_WEIGHTS_FIRST = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_WEIGHTS_SECOND = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_LENGTH = 14
_BASE_LENGTH = 12


class InvalidCNPJ(ValueError):
    """A value is not a valid CNPJ; the message says why."""


def _check_digit(chars: str, weights: tuple[int, ...]) -> str:
    remainder = sum((ord(c) - 48) * w for c, w in zip(chars, weights, strict=True)) % 11
    return "0" if remainder < 2 else str(11 - remainder)


def cnpj_check_digits(base12: str) -> str:
    """Return the two check digits for a 12-character CNPJ base (digits or A-Z)."""
    if len(base12) != _BASE_LENGTH or not _BASE_CHARS.issuperset(base12):
        raise InvalidCNPJ(
            f"CNPJ base must be exactly {_BASE_LENGTH} characters 0-9 or A-Z, got {base12!r}"
        )
    first = _check_digit(base12, _WEIGHTS_FIRST)
    second = _check_digit(base12 + first, _WEIGHTS_SECOND)
    return first + second


def _compact(value: str) -> str:
    return "".join(ch for ch in value.strip() if ch not in _SEPARATORS).upper()


def normalize_cnpj(value: str) -> str:
    """Validate a CNPJ and return it as 14 characters without punctuation (upper case)."""
    chars = _compact(value)
    bad = sorted({ch for ch in chars if ch not in _BASE_CHARS})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise InvalidCNPJ(
            f"invalid CNPJ {value!r}: contains characters other than 0-9 and A-Z ({shown})"
        )
    if len(chars) != _LENGTH:
        raise InvalidCNPJ(
            f"invalid CNPJ {value!r}: must have {_LENGTH} characters, got {len(chars)}"
        )
    if not _DIGITS.issuperset(chars[_BASE_LENGTH:]):
        raise InvalidCNPJ(f"invalid CNPJ {value!r}: the last two characters must be digits")
    if len(set(chars)) == 1:
        raise InvalidCNPJ(f"invalid CNPJ {value!r}: all characters are identical")
    if cnpj_check_digits(chars[:_BASE_LENGTH]) != chars[_BASE_LENGTH:]:
        raise InvalidCNPJ(f"invalid CNPJ {value!r}: check digits do not match")
    return chars


def is_valid_cnpj(value: str) -> bool:
    """Return whether the value is a valid CNPJ (formatted or not, numeric or alphanumeric)."""
    try:
        normalize_cnpj(value)
    except InvalidCNPJ:
        return False
    return True


def format_cnpj(value: str) -> str:
    """Validate a CNPJ and return it formatted as ``11.222.333/0001-81``."""
    d = normalize_cnpj(value)
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"


def cnpj_search_key(text: str) -> str:
    """Return the part of a search text that can match a stored CNPJ ("" when none).

    Punctuation is dropped and letters upper-cased, so ``12.abc.345`` finds
    ``12ABC345...``; a text with no digit is taken for a name, not a CNPJ.
    """
    chars = _compact(text)
    if not chars or not _BASE_CHARS.issuperset(chars) or not _DIGITS.intersection(chars):
        return ""
    return chars
