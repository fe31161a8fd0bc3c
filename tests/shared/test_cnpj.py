from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.cnpj import (
    InvalidCNPJ,
    cnpj_check_digits,
    cnpj_search_key,
    format_cnpj,
    is_valid_cnpj,
    normalize_cnpj,
)

VALID = [
    ("11.222.333/0001-81", "11222333000181"),
    ("11222333000181", "11222333000181"),
    ("11444777000161", "11444777000161"),
    ("  11.444.777/0001-61\n", "11444777000161"),
    ("11 222 333 0001 81", "11222333000181"),
    ("33.000.167/0001-01", "33000167000101"),  # Petrobras
    ("00.000.000/0001-91", "00000000000191"),  # Banco do Brasil (leading zeros)
    ("60.701.190/0001-04", "60701190000104"),
]

# Positions whose weights in the two mod-11 rounds add up to 11 (5+6, 2+9, 5+6).
BLIND_POSITIONS = {0, 4, 8}


@pytest.mark.parametrize(("raw", "digits"), VALID)
def test_normalize_accepts_known_valid(raw: str, digits: str) -> None:
    assert normalize_cnpj(raw) == digits
    assert is_valid_cnpj(raw)


@pytest.mark.parametrize(("raw", "digits"), VALID)
def test_format(raw: str, digits: str) -> None:
    formatted = format_cnpj(raw)
    assert formatted == f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}"


def test_format_known_value() -> None:
    assert format_cnpj("11222333000181") == "11.222.333/0001-81"
    assert format_cnpj("11.444.777/0001-61") == "11.444.777/0001-61"


def test_check_digits_known_values() -> None:
    assert cnpj_check_digits("112223330001") == "81"
    assert cnpj_check_digits("114447770001") == "61"


@pytest.mark.parametrize(
    "base", ["", "11222333000", "1122233300011", "11.222.333/0001", "11222333000a", "12ABC34501D-"]
)
def test_check_digits_requires_12_base_characters(base: str) -> None:
    with pytest.raises(InvalidCNPJ, match="12 characters 0-9 or A-Z"):
        cnpj_check_digits(base)


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "1122233300018", "112223330001811", "11.222.333/0001-8", "1"],
)
def test_rejects_wrong_length(raw: str) -> None:
    with pytest.raises(InvalidCNPJ, match="must have 14 characters"):
        normalize_cnpj(raw)
    assert not is_valid_cnpj(raw)


@pytest.mark.parametrize("digit", "0123456789")
def test_rejects_all_identical_digits(digit: str) -> None:
    raw = digit * 14
    with pytest.raises(InvalidCNPJ, match="identical"):
        normalize_cnpj(raw)
    assert not is_valid_cnpj(raw)


def test_all_zeros_passes_mod11_but_is_still_rejected() -> None:
    # 00000000000000 has correct check digits; only the explicit rule rejects it.
    assert cnpj_check_digits("0" * 12) == "00"
    assert not is_valid_cnpj("00.000.000/0000-00")


@pytest.mark.parametrize("raw", ["11222333000182", "11.222.333/0001-18", "11444777000160"])
def test_rejects_bad_check_digits(raw: str) -> None:
    with pytest.raises(InvalidCNPJ, match="check digits"):
        normalize_cnpj(raw)
    assert not is_valid_cnpj(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "11_222_333_0001_81",
        "11,222,333/0001-81",
        "11.222.333\\0001-81",
        "11222333000181\x00",
        "11222333\t000181",
        "١١٢٢٢٣٣٣٠٠٠١٨١",  # Arabic-Indic digits are not accepted
        "12.ÁBC.345/01DE-35",  # accented letters are not A-Z
        "12.ABC.345/01DE-3ª",
    ],
)
def test_rejects_other_characters(raw: str) -> None:
    with pytest.raises(InvalidCNPJ, match="other than 0-9 and A-Z"):
        normalize_cnpj(raw)
    assert not is_valid_cnpj(raw)


def test_error_is_value_error_with_readable_message() -> None:
    with pytest.raises(ValueError, match=r"invalid CNPJ '123': must have 14 characters, got 3"):
        normalize_cnpj("123")


def test_known_single_digit_collision() -> None:
    # The mod-11 scheme cannot catch every substitution: these differ only at
    # position 8 and both are valid.
    assert is_valid_cnpj("02922896025500")
    assert is_valid_cnpj("02922896925500")


bases = st.text(alphabet="0123456789", min_size=12, max_size=12).filter(lambda s: len(set(s)) > 1)


@given(bases)
def test_base_plus_check_digits_is_valid(base: str) -> None:
    cnpj = base + cnpj_check_digits(base)
    assert is_valid_cnpj(cnpj)
    assert normalize_cnpj(cnpj) == cnpj


@given(bases)
def test_format_normalize_round_trip(base: str) -> None:
    cnpj = base + cnpj_check_digits(base)
    formatted = format_cnpj(cnpj)
    assert len(formatted) == 18
    assert normalize_cnpj(formatted) == cnpj
    assert format_cnpj(formatted) == formatted


@given(bases, st.integers(min_value=0, max_value=13), st.integers(min_value=1, max_value=9))
def test_single_digit_change_is_detected(base: str, position: int, delta: int) -> None:
    cnpj = base + cnpj_check_digits(base)
    new_digit = str((int(cnpj[position]) + delta) % 10)
    mutated = cnpj[:position] + new_digit + cnpj[position + 1 :]
    assert mutated != cnpj
    if is_valid_cnpj(mutated):
        # Only possible at the "blind" positions, and only between CNPJs whose
        # check digits are both 0 (remainders 0 and 1 both give check digit 0).
        assert position in BLIND_POSITIONS
        assert cnpj.endswith("00")
        assert mutated.endswith("00")


@given(bases, st.sampled_from(sorted(set(range(14)) - BLIND_POSITIONS)), st.integers(1, 9))
def test_single_digit_change_outside_blind_positions_always_invalid(
    base: str, position: int, delta: int
) -> None:
    cnpj = base + cnpj_check_digits(base)
    new_digit = str((int(cnpj[position]) + delta) % 10)
    mutated = cnpj[:position] + new_digit + cnpj[position + 1 :]
    assert not is_valid_cnpj(mutated)


# ------------------------------------------------------------------ alphanumeric (July 2026)

ALNUM_VALID = [
    # The Receita Federal's published example.
    ("12.ABC.345/01DE-35", "12ABC34501DE35"),
    ("12ABC34501DE35", "12ABC34501DE35"),
    ("12.abc.345/01de-35", "12ABC34501DE35"),  # lower case is upper-cased
    (" 12abc34501de35 ", "12ABC34501DE35"),
]


@pytest.mark.parametrize(("raw", "normalized"), ALNUM_VALID)
def test_alphanumeric_accepted_and_upper_cased(raw: str, normalized: str) -> None:
    assert normalize_cnpj(raw) == normalized
    assert is_valid_cnpj(raw)
    assert format_cnpj(raw) == "12.ABC.345/01DE-35"


def test_alphanumeric_check_digits_use_ascii_minus_48() -> None:
    assert cnpj_check_digits("12ABC34501DE") == "35"
    # "A" counts as 17: the base "A00000000000" weighs 17 * 5 = 85, 85 % 11 = 8 -> 3.
    assert cnpj_check_digits("A00000000000")[0] == "3"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12ABC34501DE36", "check digits"),
        ("12ABC34501DEA5", "last two characters must be digits"),
        ("11.222.333/0001-8A", "last two characters must be digits"),
        ("AAAAAAAAAAAAAA", "last two characters must be digits"),
        ("12ABC34501DE3", "must have 14 characters"),
    ],
)
def test_alphanumeric_rejections(raw: str, reason: str) -> None:
    with pytest.raises(InvalidCNPJ, match=reason):
        normalize_cnpj(raw)


alnum_bases = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=12, max_size=12)


@given(alnum_bases)
def test_alphanumeric_round_trip(base: str) -> None:
    cnpj = base + cnpj_check_digits(base)
    if len(set(cnpj)) == 1:
        return
    assert normalize_cnpj(format_cnpj(cnpj.lower())) == cnpj


def test_search_key() -> None:
    assert cnpj_search_key("12.abc.345") == "12ABC345"
    assert cnpj_search_key("11.222") == "11222"
    assert cnpj_search_key("Acme") == ""
    assert cnpj_search_key("Loja 3 irmãos") == ""
