"""Engine credentials at rest: sealed with a state-dir key, so a dump alone reveals nothing.

Invariants:
- A sealed value is `enc:v1:<base64url(nonce ‖ AES-256-GCM ciphertext)>`; the config key
  it belongs to is the associated data, so a value moved to another key does not open.
- The key is derived (HKDF-SHA256) from `<state_dir>/secrets.key`, a random file created
  0600 on first use. Losing it loses the sealed credentials (re-enter them); every node
  sharing one PostgreSQL database needs the same file.
- Only config keys that `shared.protocol.sessions.is_secret_key` calls credentials are
  sealed; `seal` leaves sealed values and the mask alone, `unseal` leaves plain values
  (written before sealing existed) as they are, so both directions are idempotent.
- Nothing here logs; an unreadable sealed value raises `SecretError` naming the key only.

Why a key file and not the OS keyring: zapd runs headless under systemd with no
Secret Service session to unlock a keyring, several nodes on one PostgreSQL must read the
same credentials, and the file travels with the state dir's backups the same way the JWT
secret does.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.protocol.sessions import MASK, is_secret_key
from zapd.security import ensure_secret_file

KEY_FILENAME = "secrets.key"
PREFIX = "enc:v1:"
_NONCE = 12


class SecretError(ValueError):
    """A sealed value cannot be opened (another key file, or tampered)."""


class SecretBox:
    """Seals and opens credential values of session configs."""

    def __init__(self, secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"zap session secrets v1"
        ).derive(secret.encode())
        self._aead = AESGCM(key)

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> SecretBox:
        """Open (creating on first use) the state dir's key file."""
        return cls(ensure_secret_file(state_dir / KEY_FILENAME))

    def seal_value(self, name: str, value: str) -> str:
        """Return the sealed form of one credential."""
        if value.startswith(PREFIX):
            return value
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, value.encode(), name.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open_value(self, name: str, value: str) -> str:
        """Return the plain form of one credential (plain values pass through)."""
        if not value.startswith(PREFIX):
            return value
        raw = value[len(PREFIX) :]
        try:
            blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], name.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretError(
                f"config.{name} cannot be decrypted with this state dir's {KEY_FILENAME}"
            ) from exc

    def seal(self, config: dict[str, Any]) -> dict[str, Any]:
        """Return `config` with every credential sealed."""
        return {
            k: self.seal_value(k, v)
            if is_secret_key(k) and isinstance(v, str) and v and v != MASK
            else v
            for k, v in config.items()
        }

    def unseal(self, config: dict[str, Any]) -> dict[str, Any]:
        """Return `config` with every sealed credential opened."""
        return {
            k: self.open_value(k, v) if isinstance(v, str) and v.startswith(PREFIX) else v
            for k, v in config.items()
        }


def is_sealed(value: Any) -> bool:
    """Tell whether a stored value is sealed."""
    return isinstance(value, str) and value.startswith(PREFIX)
