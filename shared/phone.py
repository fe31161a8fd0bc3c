"""Phone number normalization (E.164) and WhatsApp JID helpers.

Canonical form
--------------
Every phone number is stored as E.164 (``+5511912345678``). Brazilian mobile
numbers are canonicalized to the 9-digit subscriber form: a BR number with a
2-digit area code (DDD) and an 8-digit subscriber starting with 6, 7, 8 or 9
(the pre-2016 mobile form, e.g. ``+55 11 8123-4567``) becomes
``+55 11 98123-4567``. WhatsApp still reports many BR accounts without the 9th
digit (JID ``551181234567@s.whatsapp.net``); those normalize to the same
canonical number. Landlines (8-digit subscribers starting with 2-5) and
numbers of other countries are left untouched.

``br_phone_variants`` lists both spellings of a BR mobile, canonical first
(``+5511981234567``, ``+551181234567``), so that lookups can match whichever
form WhatsApp happens to use for an account; other numbers get a 1-tuple.

Parsing rules (``normalize_phone``)
-----------------------------------
Numbers without a ``+`` are read as national numbers of ``default_region``
(for BR a leading ``55`` country code, a ``0``/``0 + carrier`` trunk prefix and
``0055``-style international prefixes are recognized too). Only ASCII digits,
a leading ``+`` and common punctuation (spaces, ``()-./`` and dashes) are
accepted; letters, ``tel:`` URIs and extensions are rejected, as are numbers
that are too short/long or lack a BR area code.

With ``strict=True`` (the default) the number must also fall in a range that
phonenumbers' metadata knows to be assigned. Use ``strict=False`` for numbers
that are known to exist, so that stale metadata never refuses a real number;
``jid_to_e164``, ``e164_to_jid``, ``br_phone_variants``, ``same_person`` and
``format_phone_display`` all parse that way.

WhatsApp JIDs
-------------
``parse_jid`` understands user JIDs (``s.whatsapp.net`` and the legacy
``c.us``), optionally with a device suffix (``5511912345678:12@s.whatsapp.net``),
LIDs (``123456789012345@lid``), groups (``...@g.us``), broadcast lists and
status (``status@broadcast``) and newsletters/channels (``...@newsletter``).
A LID is an opaque WhatsApp identifier, NOT a phone number, so
``jid_to_e164`` refuses it (and groups, broadcasts, newsletters).

``e164_to_jid`` always builds the JID from the canonical digits, i.e. the
9-digit form for BR mobiles. WhatsApp may know an older BR account by the
8-digit form instead; callers that need the exact JID should resolve it with
WhatsApp or try every entry of ``br_phone_variants``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, ValidationResult

__all__ = [
    "BR_AREA_CODES",
    "InvalidJid",
    "InvalidPhone",
    "WaJid",
    "br_phone_variants",
    "e164_to_jid",
    "format_phone_display",
    "jid_to_e164",
    "normalize_phone",
    "parse_jid",
    "same_person",
]

# All Brazilian two-digit area codes (DDD) in use.
BR_AREA_CODES: frozenset[str] = frozenset(
    str(code)
    for code in (
        *range(11, 20),
        21,
        22,
        24,
        27,
        28,
        *range(31, 36),
        37,
        38,
        *range(41, 50),
        51,
        *range(53, 56),
        *range(61, 70),
        71,
        *range(73, 76),
        77,
        79,
        *range(81, 90),
        *range(91, 100),
    )
)

_BR_COUNTRY_CODE = 55
# First digit of an 8-digit subscriber number that marks an old-form BR mobile.
_BR_OLD_MOBILE_FIRST_DIGITS = frozenset("6789")

_ASCII_DIGITS = frozenset("0123456789")
# Formatting characters tolerated in raw input besides digits and a leading '+'.
_PHONE_PUNCTUATION = frozenset(" \t().-/\u00a0\u2010\u2011\u2012\u2013\u2014\u2015\u2212")

_USER_SERVERS = frozenset({"s.whatsapp.net", "c.us"})
_LID_SERVER = "lid"
_GROUP_SERVER = "g.us"
_BROADCAST_SERVER = "broadcast"
_NEWSLETTER_SERVER = "newsletter"
# Meta's business-scoped user ids (Cloud API users who hide their number): not a real
# WhatsApp server, zap's own spelling of a chat known only by "CC.digits".
_BSUID_SERVER = "bsuid"
_BSUID_USER = re.compile(r"[A-Z]{2}(?:\.ENT)?\.\d{1,40}")
_KNOWN_SERVERS = _USER_SERVERS | {
    _BSUID_SERVER,
    _LID_SERVER,
    _GROUP_SERVER,
    _BROADCAST_SERVER,
    _NEWSLETTER_SERVER,
}
_DEFAULT_USER_SERVER = "s.whatsapp.net"

_POSSIBILITY_REASONS = {
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "is missing the area code",
    ValidationResult.INVALID_COUNTRY_CODE: "has an unknown country code",
    ValidationResult.TOO_SHORT: "is too short",
    ValidationResult.TOO_LONG: "is too long",
    ValidationResult.INVALID_LENGTH: "has an impossible length",
}


class InvalidPhone(ValueError):
    """A value is not a usable phone number; the message says why."""


class InvalidJid(InvalidPhone):
    """A value is not a usable WhatsApp JID (or not one that carries a phone number)."""


@dataclass(frozen=True)
class WaJid:
    """A parsed WhatsApp JID: ``user[:device]@server``."""

    user: str
    server: str
    device: int | None = None

    @property
    def is_user(self) -> bool:
        """Return whether this is a phone-number user JID."""
        return self.server in _USER_SERVERS

    @property
    def is_lid(self) -> bool:
        """Return whether this is a LID (opaque id, not a phone number)."""
        return self.server == _LID_SERVER

    @property
    def is_bsuid(self) -> bool:
        """Return whether this is a Meta business-scoped user id (no phone number)."""
        return self.server == _BSUID_SERVER

    @property
    def is_group(self) -> bool:
        """Return whether this is a group JID."""
        return self.server == _GROUP_SERVER

    @property
    def is_broadcast(self) -> bool:
        """Return whether this is a broadcast list or status JID."""
        return self.server == _BROADCAST_SERVER

    @property
    def is_newsletter(self) -> bool:
        """Return whether this is a newsletter (channel) JID."""
        return self.server == _NEWSLETTER_SERVER

    def without_device(self) -> WaJid:
        """Return the same JID with the device suffix removed."""
        return WaJid(user=self.user, server=self.server, device=None)

    def __str__(self) -> str:
        device = "" if self.device is None else f":{self.device}"
        return f"{self.user}{device}@{self.server}"


# --------------------------------------------------------------------------- phones


def _check_characters(raw: str, text: str) -> None:
    body = text.removeprefix("+")
    if not body:
        raise InvalidPhone(f"invalid phone number {raw!r}: no digits")
    bad = sorted({ch for ch in body if ch not in _ASCII_DIGITS and ch not in _PHONE_PUNCTUATION})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise InvalidPhone(f"invalid phone number {raw!r}: unexpected characters ({shown})")
    if not any(ch in _ASCII_DIGITS for ch in body):
        raise InvalidPhone(f"invalid phone number {raw!r}: no digits")


def _canonicalize_br(num: PhoneNumber) -> PhoneNumber:
    """Add the 9th digit to an old-form Brazilian mobile number."""
    if num.country_code != _BR_COUNTRY_CODE:
        return num
    nsn = phonenumbers.national_significant_number(num)
    if len(nsn) == 10 and nsn[:2] in BR_AREA_CODES and nsn[2] in _BR_OLD_MOBILE_FIRST_DIGITS:
        return PhoneNumber(
            country_code=_BR_COUNTRY_CODE, national_number=int(f"{nsn[:2]}9{nsn[2:]}")
        )
    return num


def _parse_canonical(text: str, region: str | None) -> PhoneNumber:
    return _canonicalize_br(phonenumbers.parse(text, region))


def _parse_00_prefix(text: str) -> PhoneNumber | None:
    """Re-read ``00<country><number>`` as ``+<country><number>``.

    For the BR region phonenumbers treats ``00`` followed by a carrier code
    (e.g. ``0055``) as the international prefix, so ``0055 11 91234-5678`` would
    become a +1 number. This fallback is only used when the first reading is not
    a valid number and the second one is.
    """
    digits = "".join(ch for ch in text if ch in _ASCII_DIGITS)
    if not digits.startswith("00"):
        return None
    try:
        num = _parse_canonical("+" + digits[2:], None)
    except NumberParseException:
        return None
    return num if phonenumbers.is_valid_number(num) else None


def _parse_phone(raw: str, default_region: str, *, strict: bool) -> PhoneNumber:
    text = raw.strip()
    if not text:
        raise InvalidPhone("invalid phone number: empty")
    _check_characters(raw, text)
    try:
        num = _parse_canonical(text, default_region.upper())
    except NumberParseException as exc:
        raise InvalidPhone(f"invalid phone number {raw!r}: {exc._msg}") from exc

    if not phonenumbers.is_valid_number(num):
        alternative = _parse_00_prefix(text)
        if alternative is not None:
            num = alternative

    reason = phonenumbers.is_possible_number_with_reason(num)
    if reason != ValidationResult.IS_POSSIBLE:
        why = _POSSIBILITY_REASONS.get(reason, ValidationResult.to_string(reason))
        raise InvalidPhone(f"invalid phone number {raw!r}: {why}")
    valid = phonenumbers.is_valid_number(num)
    if not valid and num.italian_leading_zero:
        # Only a few countries (e.g. Italy) have national numbers starting with
        # 0, and their real numbers are valid; elsewhere it is a misread prefix.
        raise InvalidPhone(f"invalid phone number {raw!r}: national number starts with 0")
    if (
        not valid
        and num.country_code == _BR_COUNTRY_CODE
        and len(phonenumbers.national_significant_number(num)) < 10
    ):
        # BR geographic numbers always have 10 or 11 digits; short valid ones are
        # non-geographic services (e.g. 4004-xxxx), so anything else lacks the DDD.
        raise InvalidPhone(f"invalid phone number {raw!r}: is missing the area code (DDD)")
    if strict and not valid:
        raise InvalidPhone(f"invalid phone number {raw!r}: not an assigned number range")
    if not valid and not _round_trips(num):
        # e.g. "+55 90 801..." where phonenumbers would strip "90" (collect-call
        # prefix) when reading the E.164 back, giving a different number.
        raise InvalidPhone(f"invalid phone number {raw!r}: has no unambiguous E.164 form")
    return num


def _round_trips(num: PhoneNumber) -> bool:
    """Return whether reading the E.164 form back yields the same number."""
    e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    try:
        again = _parse_canonical(e164, None)
    except NumberParseException:
        return False
    return phonenumbers.format_number(again, PhoneNumberFormat.E164) == e164 and (
        again.italian_leading_zero == num.italian_leading_zero
    )


def normalize_phone(raw: str, default_region: str = "BR", *, strict: bool = True) -> str:
    """Parse a phone number and return its canonical E.164 form (see module docs)."""
    num = _parse_phone(raw, default_region, strict=strict)
    return phonenumbers.format_number(num, PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=4096)  # pure, and asked for every inbound message
def br_phone_variants(e164: str) -> tuple[str, ...]:
    """Return every E.164 spelling of a number (both forms for BR mobiles), canonical first."""
    num = _parse_phone(e164, "BR", strict=False)
    canonical = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    if num.country_code != _BR_COUNTRY_CODE:
        return (canonical,)
    nsn = phonenumbers.national_significant_number(num)
    if (
        len(nsn) == 11
        and nsn[:2] in BR_AREA_CODES
        and nsn[2] == "9"
        and nsn[3] in _BR_OLD_MOBILE_FIRST_DIGITS
    ):
        return (canonical, f"+{_BR_COUNTRY_CODE}{nsn[:2]}{nsn[3:]}")
    return (canonical,)


def same_person(a: str, b: str) -> bool:
    """Return whether two raw phone numbers normalize to the same canonical number."""
    try:
        return normalize_phone(a, strict=False) == normalize_phone(b, strict=False)
    except InvalidPhone:
        return False


def format_phone_display(e164: str) -> str:
    """Return a number in international display format, e.g. ``+55 11 91234-5678``."""
    num = _parse_phone(e164, "BR", strict=False)
    return phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)


# --------------------------------------------------------------------------- JIDs


def _is_digits(value: str) -> bool:
    # Only 0-9 are digits among ASCII characters (str.isdigit alone takes "²", "٣"...).
    return value.isascii() and value.isdigit()


def parse_jid(value: str) -> WaJid:
    """Parse a WhatsApp JID such as ``5511912345678:12@s.whatsapp.net``."""
    text = value.strip()
    user, sep, server = text.partition("@")
    if not sep:
        raise InvalidJid(f"invalid JID {value!r}: missing '@'")
    server = server.lower()
    if server not in _KNOWN_SERVERS:
        raise InvalidJid(f"invalid JID {value!r}: unknown server {server!r}")

    device: int | None = None
    if ":" in user:
        if server not in _USER_SERVERS and server != _LID_SERVER:
            raise InvalidJid(f"invalid JID {value!r}: device suffix on a {server!r} JID")
        user, _, device_text = user.partition(":")
        if not _is_digits(device_text):
            raise InvalidJid(f"invalid JID {value!r}: device must be a number")
        device = int(device_text)

    if not user:
        raise InvalidJid(f"invalid JID {value!r}: empty user part")
    if server == _GROUP_SERVER:
        # Modern ids are digits only; legacy ones are "<creator>-<timestamp>".
        creator, dash, stamp = user.partition("-")
        ok = _is_digits(creator) and (not dash or _is_digits(stamp))
    elif server == _BROADCAST_SERVER:
        ok = user == "status" or _is_digits(user)
    elif server == _BSUID_SERVER:
        ok = _BSUID_USER.fullmatch(user) is not None
    else:
        ok = _is_digits(user)
    if not ok:
        raise InvalidJid(f"invalid JID {value!r}: malformed user part {user!r}")
    return WaJid(user=user, server=server, device=device)


def jid_to_e164(jid: str | WaJid) -> str:
    """Return the canonical E.164 number of a user JID (LIDs and groups are refused)."""
    parsed = parse_jid(jid) if isinstance(jid, str) else jid
    if not parsed.is_user:
        kind = "a LID" if parsed.is_lid else f"a {parsed.server!r} JID"
        raise InvalidJid(f"JID {str(parsed)!r} is {kind}, not a phone number")
    return normalize_phone("+" + parsed.user, strict=False)


def e164_to_jid(e164: str) -> str:
    """Return the user JID built from a number's canonical E.164 digits (see module docs)."""
    canonical = normalize_phone(e164, strict=False)
    return f"{canonical.removeprefix('+')}@{_DEFAULT_USER_SERVER}"
