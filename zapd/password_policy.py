"""Which passwords zap accepts: long enough, and not common or trivially guessable.

Invariants:
- Strength is zxcvbn's estimate (dictionaries of common passwords, names, words,
  keyboard patterns, repeats, sequences, dates); a score below `MIN_SCORE` (0-4 scale)
  is refused with `ERR_WEAK_PASSWORD` and a message that says why, in zxcvbn's words.
  So `12345678`, `password`, `password1` and eight spaces are refused.
- The account's own e-mail and name count as guessable words for it.
- Only the first `MAX_CHECKED` characters are estimated (zxcvbn's cost grows with
  length; a longer password is not weak for what comes after).
- Checked where a password is set (user creation, reset, self change, `zapctl init`),
  never at login: existing passwords keep working.
"""

from __future__ import annotations

from zxcvbn import zxcvbn

from shared.errors import ErrorCode
from zapd.errors import ValidationFailed

MIN_SCORE = 2
MAX_CHECKED = 72


def password_weakness(password: str, *user_inputs: str | None) -> str | None:
    """Return why a password is too weak, or None when it is strong enough."""
    words = [w for w in user_inputs if w]
    for w in list(words):
        words.extend(part for part in w.replace("@", " ").replace(".", " ").split() if part)
    result = zxcvbn(password[:MAX_CHECKED], user_inputs=words)
    if int(result["score"]) >= MIN_SCORE:
        return None
    feedback = result.get("feedback") or {}
    reasons = [str(feedback.get("warning") or "").strip()]
    reasons += [str(s).strip() for s in feedback.get("suggestions") or []]
    why = " ".join(r for r in reasons if r) or "It is easy to guess."
    return f"password is too weak: {why}"


def check_password_strength(password: str, *user_inputs: str | None) -> None:
    """Raise ValidationFailed(ERR_WEAK_PASSWORD) when the password is too weak."""
    weakness = password_weakness(password, *user_inputs)
    if weakness is not None:
        raise ValidationFailed(weakness, code=ErrorCode.WEAK_PASSWORD)
