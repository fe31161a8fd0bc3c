"""Sealed credentials: round trip, bound to their key name and to the state dir's key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shared.protocol.sessions import MASK
from zapd.secretbox import KEY_FILENAME, SecretBox, SecretError, is_sealed


def test_seal_and_unseal_only_credentials(tmp_path: Path) -> None:
    box = SecretBox.from_state_dir(tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILENAME).stat().st_mode) == 0o600
    config = {
        "phone_number_id": "106540352242922",
        "access_token": "EAAG-very-secret",
        "app_secret": "app-secret",
        "verify_token": "verify-me",
        "api_version": "v26.0",
    }
    sealed = box.seal(config)
    assert sealed["phone_number_id"] == "106540352242922" and sealed["api_version"] == "v26.0"
    for key in ("access_token", "app_secret", "verify_token"):
        assert is_sealed(sealed[key]) and config[key] not in sealed[key]
    assert box.seal(sealed) == sealed  # sealing twice changes nothing
    assert box.unseal(sealed) == config
    assert box.unseal(config) == config  # plain values (older rows) pass through
    assert box.seal({"access_token": MASK}) == {"access_token": MASK}
    # Two seals of one value differ (random nonce): equal secrets do not show as equal.
    assert box.seal(config)["access_token"] != sealed["access_token"]


def test_another_key_file_or_key_name_cannot_open(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    box = SecretBox.from_state_dir(tmp_path / "a")
    other = SecretBox.from_state_dir(tmp_path / "b")
    sealed = box.seal_value("access_token", "EAAG-x")
    with pytest.raises(SecretError, match="access_token"):
        other.open_value("access_token", sealed)
    with pytest.raises(SecretError):  # moved under another key: refused
        box.open_value("app_secret", sealed)
    with pytest.raises(SecretError):
        box.open_value("access_token", sealed[:-4] + "AAAA")
    assert SecretBox.from_state_dir(tmp_path / "a").open_value("access_token", sealed) == "EAAG-x"
