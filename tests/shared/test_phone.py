from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.phone import (
    BR_AREA_CODES,
    InvalidJid,
    InvalidPhone,
    WaJid,
    br_phone_variants,
    e164_to_jid,
    format_phone_display,
    jid_to_e164,
    normalize_phone,
    parse_jid,
    same_person,
)

# Every Brazilian DDD in use, written out independently of the implementation.
DDDS = [
    *range(11, 20),
    21,
    22,
    24,
    27,
    28,
    *range(31, 36),
    37,
    38,
    *range(41, 47),
    *range(47, 50),
    51,
    *range(53, 56),
    *range(61, 70),
    71,
    *range(73, 76),
    77,
    79,
    *range(81, 90),
    *range(91, 100),
]

# phonenumbers loads its metadata lazily, so the first example can be slow.
phone_settings = settings(deadline=None)


def test_area_codes_match_the_official_list() -> None:
    assert {str(d) for d in DDDS} == BR_AREA_CODES
    assert "36" not in BR_AREA_CODES
    assert "20" not in BR_AREA_CODES


# --------------------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    "raw",
    [
        "+55 11 91234-5678",
        "+5511912345678",
        "5511912345678",
        "55 11 91234-5678",
        "(11) 91234-5678",
        "11 91234-5678",
        "011 91234-5678",
        "0 15 11 91234-5678",  # long-distance carrier selection code
        "+55 (11) 9 1234-5678",
        "0055 11 91234-5678",  # "00" international prefix, see _parse_00_prefix
        "  +55.11.91234.5678  ",
        "+55 11 91234\u20115678",
    ],
)
def test_normalize_br_mobile_formats(raw: str) -> None:
    assert normalize_phone(raw) == "+5511912345678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 650 253 0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+351 912 345 678", "+351912345678"),
        ("+55 11 3123-4567", "+551131234567"),  # landline
        ("(21) 2123-4567", "+552121234567"),  # landline
        ("+55 4004-1234", "+5540041234"),  # non-geographic 8-digit service number
    ],
)
def test_normalize_other_numbers_untouched(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


def test_normalize_uses_default_region() -> None:
    assert normalize_phone("(650) 253-0000", default_region="US") == "+16502530000"
    assert normalize_phone("650 253 0000", default_region="us") == "+16502530000"
    assert normalize_phone("+55 11 91234-5678", default_region="US") == "+5511912345678"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "unexpected characters"),
        ("123", "too short"),
        ("+", "no digits"),
        ("+ - ()", "no digits"),
        ("++5511912345678", "unexpected characters"),
        ("+55 11 91234-567a", "unexpected characters"),
        ("+55 11 91234-5678 ext. 12", "unexpected characters"),
        ("1800FLOWERS", "unexpected characters"),
        ("tel:+5511912345678", "unexpected characters"),
        ("+55 11 91234-5678999999", "too long"),
        ("91234-5678", "area code"),
        ("+999 1234 5678", "plus-sign"),  # unassigned country code
        ("+55 11 1123-4567", "not an assigned number range"),
    ],
)
def test_normalize_rejects_garbage(raw: str, match: str) -> None:
    with pytest.raises(InvalidPhone, match=match):
        normalize_phone(raw)


def test_invalid_phone_is_value_error() -> None:
    with pytest.raises(ValueError, match="invalid phone number"):
        normalize_phone("abc")


def test_non_strict_accepts_possible_but_unassigned_numbers() -> None:
    # 9-digit BR mobiles all start with 9; "6" is not assigned today.
    with pytest.raises(InvalidPhone):
        normalize_phone("+55 11 61234-5678")
    assert normalize_phone("+55 11 61234-5678", strict=False) == "+5511612345678"
    # Still rejects impossible lengths and missing area codes.
    with pytest.raises(InvalidPhone):
        normalize_phone("123", strict=False)
    with pytest.raises(InvalidPhone, match="area code"):
        normalize_phone("91234-5678", strict=False)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("00000000000", "starts with 0"),
        ("090801000000", "unambiguous"),  # "+55 90..." would lose "90" when read back
    ],
)
def test_non_strict_rejects_numbers_that_do_not_round_trip(raw: str, match: str) -> None:
    with pytest.raises(InvalidPhone, match=match):
        normalize_phone(raw, strict=False)


def test_collect_call_prefix_is_stripped() -> None:
    # phonenumbers reads a leading "90" + carrier code as the BR collect-call prefix.
    assert normalize_phone("90 15 11 91234-5678") == "+5511912345678"


# --------------------------------------------------------------------------- BR 9th digit


@pytest.mark.parametrize(
    "raw",
    [
        "+55 11 8123-4567",
        "+551181234567",
        "551181234567",  # the way WhatsApp reports many BR mobiles
        "(11) 8123-4567",
        "+55 11 98123-4567",
        "5511981234567",
    ],
)
def test_br_mobile_with_and_without_9_are_equivalent(raw: str) -> None:
    assert normalize_phone(raw) == "+5511981234567"


@pytest.mark.parametrize(
    ("without_9", "with_9"),
    [
        ("+552161234567", "+5521961234567"),
        ("+553171234567", "+5531971234567"),
        ("+558191234567", "+5581991234567"),
        ("+555581234567", "+5555981234567"),  # DDD 55 looks like the country code
    ],
)
def test_br_old_mobile_prefixes(without_9: str, with_9: str) -> None:
    assert normalize_phone(without_9) == with_9
    assert normalize_phone(without_9[1:]) == with_9
    assert br_phone_variants(with_9) == (with_9, without_9)
    assert br_phone_variants(without_9) == (with_9, without_9)


@pytest.mark.parametrize("subscriber", ["2123-4567", "3123-4567", "4123-4567", "5123-4567"])
def test_br_landline_untouched(subscriber: str) -> None:
    e164 = "+5511" + subscriber.replace("-", "")
    assert normalize_phone(f"+55 11 {subscriber}") == e164
    assert br_phone_variants(e164) == (e164,)


def test_br_phone_variants() -> None:
    assert br_phone_variants("+5511981234567") == ("+5511981234567", "+551181234567")
    assert br_phone_variants("+551181234567") == ("+5511981234567", "+551181234567")
    # A 9-digit mobile whose remaining digits start with 1-5 never had an 8-digit form.
    assert br_phone_variants("+5511951234567") == ("+5511951234567",)
    assert br_phone_variants("+16502530000") == ("+16502530000",)
    assert br_phone_variants("+442079460958") == ("+442079460958",)
    with pytest.raises(InvalidPhone):
        br_phone_variants("garbage")


def test_non_br_numbers_are_never_given_a_9() -> None:
    # Same digit shapes as an old BR mobile, but other countries.
    assert normalize_phone("+1 650 253 0000") == "+16502530000"
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert br_phone_variants("+16502530000") == ("+16502530000",)


def test_same_person() -> None:
    assert same_person("+55 11 8123-4567", "5511981234567")
    assert same_person("(11) 98123-4567", "+551181234567")
    assert same_person("+1 650 253 0000", "+16502530000")
    assert not same_person("+5511981234567", "+5511981234568")
    assert not same_person("+5511981234567", "+551131234567")
    assert not same_person("garbage", "garbage")
    assert not same_person("", "")


def test_format_phone_display() -> None:
    assert format_phone_display("+5511912345678") == "+55 11 91234-5678"
    assert format_phone_display("+551181234567") == "+55 11 98123-4567"
    assert format_phone_display("+551131234567") == "+55 11 3123-4567"
    assert format_phone_display("+16502530000") == "+1 650-253-0000"
    assert format_phone_display("+442079460958") == "+44 20 7946 0958"
    with pytest.raises(InvalidPhone):
        format_phone_display("abc")


# --------------------------------------------------------------------------- JIDs


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5511912345678@s.whatsapp.net", WaJid("5511912345678", "s.whatsapp.net", None)),
        ("5511912345678@c.us", WaJid("5511912345678", "c.us", None)),
        ("5511912345678:12@s.whatsapp.net", WaJid("5511912345678", "s.whatsapp.net", 12)),
        ("5511912345678:0@s.whatsapp.net", WaJid("5511912345678", "s.whatsapp.net", 0)),
        ("123456789012345@lid", WaJid("123456789012345", "lid", None)),
        ("123456789012345:3@lid", WaJid("123456789012345", "lid", 3)),
        ("120363012345678901@g.us", WaJid("120363012345678901", "g.us", None)),
        ("5511912345678-1571234567@g.us", WaJid("5511912345678-1571234567", "g.us", None)),
        ("status@broadcast", WaJid("status", "broadcast", None)),
        ("1571234567@broadcast", WaJid("1571234567", "broadcast", None)),
        ("120363123456789012@newsletter", WaJid("120363123456789012", "newsletter", None)),
        ("  5511912345678@S.WhatsApp.Net ", WaJid("5511912345678", "s.whatsapp.net", None)),
    ],
)
def test_parse_jid(raw: str, expected: WaJid) -> None:
    assert parse_jid(raw) == expected


def test_jid_kinds() -> None:
    user = parse_jid("5511912345678:12@s.whatsapp.net")
    assert user.is_user
    assert not (user.is_lid or user.is_group or user.is_broadcast or user.is_newsletter)
    assert parse_jid("5511912345678@c.us").is_user
    lid = parse_jid("123456789012345@lid")
    assert lid.is_lid
    assert not lid.is_user
    assert parse_jid("120363012345678901@g.us").is_group
    assert parse_jid("status@broadcast").is_broadcast
    assert parse_jid("120363123456789012@newsletter").is_newsletter


def test_jid_str_and_without_device() -> None:
    jid = parse_jid("5511912345678:12@s.whatsapp.net")
    assert str(jid) == "5511912345678:12@s.whatsapp.net"
    assert str(jid.without_device()) == "5511912345678@s.whatsapp.net"
    assert parse_jid(str(jid)) == jid


def test_wajid_is_frozen() -> None:
    jid = parse_jid("5511912345678@s.whatsapp.net")
    with pytest.raises(dataclasses.FrozenInstanceError):
        jid.user = "1"  # type: ignore[misc]
    assert hash(jid) == hash(parse_jid("5511912345678@s.whatsapp.net"))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "5511912345678",
        "@s.whatsapp.net",
        "5511912345678@",
        "5511912345678@example.com",
        "abc@s.whatsapp.net",
        "+5511912345678@s.whatsapp.net",
        "55 11 91234-5678@s.whatsapp.net",
        "abc@lid",
        "5511912345678:@s.whatsapp.net",
        "5511912345678:x@s.whatsapp.net",
        ":12@s.whatsapp.net",
        "120363012345678901:1@g.us",
        "group-name@g.us",
        "120363-@g.us",
        "news@newsletter",
        "5511912345678@s.whatsapp.net@s.whatsapp.net",
    ],
)
def test_parse_jid_rejects_garbage(raw: str) -> None:
    with pytest.raises(InvalidJid):
        parse_jid(raw)


def test_invalid_jid_is_invalid_phone_and_value_error() -> None:
    assert issubclass(InvalidJid, InvalidPhone)
    assert issubclass(InvalidJid, ValueError)


def test_jid_to_e164() -> None:
    assert jid_to_e164("5511912345678@s.whatsapp.net") == "+5511912345678"
    assert jid_to_e164("5511912345678:12@s.whatsapp.net") == "+5511912345678"
    assert jid_to_e164("5511912345678@c.us") == "+5511912345678"
    # WhatsApp's 8-digit form maps to the canonical 9-digit number.
    assert jid_to_e164("551181234567@s.whatsapp.net") == "+5511981234567"
    assert jid_to_e164(parse_jid("16502530000@s.whatsapp.net")) == "+16502530000"


@pytest.mark.parametrize(
    "raw",
    ["123456789012345@lid", "120363012345678901@g.us", "status@broadcast", "1203631@newsletter"],
)
def test_jid_to_e164_refuses_non_user_jids(raw: str) -> None:
    with pytest.raises(InvalidJid, match="not a phone number"):
        jid_to_e164(raw)


def test_jid_to_e164_refuses_lid_even_if_it_looks_like_a_phone() -> None:
    with pytest.raises(InvalidJid, match="LID"):
        jid_to_e164("5511912345678@lid")


@pytest.mark.parametrize("raw", ["0@s.whatsapp.net", "123@s.whatsapp.net"])
def test_jid_to_e164_rejects_impossible_numbers(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        jid_to_e164(raw)


def test_e164_to_jid() -> None:
    assert e164_to_jid("+5511912345678") == "5511912345678@s.whatsapp.net"
    assert e164_to_jid("+551181234567") == "5511981234567@s.whatsapp.net"
    assert e164_to_jid("+16502530000") == "16502530000@s.whatsapp.net"
    with pytest.raises(InvalidPhone):
        e164_to_jid("not a phone")


# --------------------------------------------------------------------------- properties

ddds = st.sampled_from(DDDS)
mobile_subscribers = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("6789"),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
)
landline_subscribers = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("2345"),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
)


@phone_settings
@given(ddds, mobile_subscribers)
def test_prop_with_and_without_9_normalize_equal(ddd: int, sub: str) -> None:
    canonical = f"+55{ddd}9{sub}"
    spellings = [
        f"+55{ddd}{sub}",
        f"+55{ddd}9{sub}",
        f"55{ddd}{sub}",
        f"55{ddd}9{sub}",
        f"({ddd}) {sub[:4]}-{sub[4:]}",
        f"({ddd}) 9{sub[:4]}-{sub[4:]}",
        f"+55 {ddd} {sub[:4]}-{sub[4:]}",
    ]
    for raw in spellings:
        assert normalize_phone(raw) == canonical, raw
    assert jid_to_e164(f"55{ddd}{sub}@s.whatsapp.net") == canonical
    assert jid_to_e164(f"55{ddd}9{sub}:3@s.whatsapp.net") == canonical
    assert same_person(spellings[0], spellings[1])


@phone_settings
@given(ddds, mobile_subscribers, st.booleans())
def test_prop_normalize_is_idempotent(ddd: int, sub: str, with_9: bool) -> None:
    raw = f"+55{ddd}{'9' if with_9 else ''}{sub}"
    once = normalize_phone(raw)
    assert normalize_phone(once) == once
    assert normalize_phone(once, strict=False) == once


@phone_settings
@given(ddds, mobile_subscribers, st.booleans())
def test_prop_variants_canonical_first(ddd: int, sub: str, with_9: bool) -> None:
    canonical = normalize_phone(f"+55{ddd}{'9' if with_9 else ''}{sub}")
    variants = br_phone_variants(canonical)
    assert variants == (f"+55{ddd}9{sub}", f"+55{ddd}{sub}")
    assert variants[0] == canonical
    for variant in variants:
        assert normalize_phone(variant) == canonical
        assert br_phone_variants(variant) == variants


@phone_settings
@given(ddds, landline_subscribers)
def test_prop_landlines_untouched(ddd: int, sub: str) -> None:
    e164 = f"+55{ddd}{sub}"
    assert normalize_phone(e164) == e164
    assert normalize_phone(f"({ddd}) {sub[:4]}-{sub[4:]}") == e164
    assert br_phone_variants(e164) == (e164,)


@phone_settings
@given(ddds, mobile_subscribers, st.booleans(), st.one_of(st.none(), st.integers(0, 99)))
def test_prop_jid_round_trip(ddd: int, sub: str, with_9: bool, device: int | None) -> None:
    canonical = normalize_phone(f"+55{ddd}{'9' if with_9 else ''}{sub}")
    jid = e164_to_jid(canonical)
    parsed = parse_jid(jid)
    assert parsed.is_user
    assert parsed.device is None
    assert jid_to_e164(parsed) == canonical
    assert jid_to_e164(jid) == canonical
    with_device = WaJid(parsed.user, parsed.server, device)
    assert parse_jid(str(with_device)) == with_device
    assert jid_to_e164(str(with_device)) == canonical


phone_like_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789", min_size=8, max_size=16),
    st.text(alphabet="0123456789+ ()-.", max_size=24),
)


@phone_settings
@given(phone_like_text, st.booleans())
def test_prop_normalize_never_crashes_and_is_idempotent(raw: str, strict: bool) -> None:
    try:
        result = normalize_phone(raw, strict=strict)
    except InvalidPhone:
        return
    assert result.startswith("+")
    assert result[1:].isascii()
    assert result[1:].isdigit()
    assert normalize_phone(result, strict=strict) == result
    assert br_phone_variants(result)[0] == result


@phone_settings
@given(st.text(max_size=40))
def test_prop_parse_jid_never_crashes(raw: str) -> None:
    try:
        jid = parse_jid(raw)
    except InvalidJid:
        return
    assert parse_jid(str(jid)) == jid
