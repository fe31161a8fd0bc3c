"""zapd settings: CLI overrides > ZAP_* env > TOML file > defaults; XDG and systemd paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import ConfigFileError
from zapd import config


def test_defaults_follow_xdg(clean_env: Path) -> None:
    s = config.load()
    assert s.host == "127.0.0.1" and s.port == 8765
    assert s.state_dir == clean_env / ".local/state/zap"
    assert s.db_url == f"sqlite+aiosqlite:///{clean_env}/.local/state/zap/zap.db"
    assert s.auto_migrate is True


def test_xdg_state_home(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xs"))
    assert config.load().state_dir == tmp_path / "xs" / "zap"


def test_systemd_state_directory_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xs"))
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/var-lib-zap:{tmp_path}/other")
    assert config.load().state_dir == tmp_path / "var-lib-zap"


def test_precedence(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "zapd.toml"
    cfg.write_text('host = "0.0.0.0"\nport = 9001\ndatabase_url = "postgresql://db/zap"\n')
    monkeypatch.setenv("ZAP_CONFIG", str(cfg))
    s = config.load()
    assert (s.host, s.port, s.db_url) == ("0.0.0.0", 9001, "postgresql://db/zap")
    monkeypatch.setenv("ZAP_PORT", "9002")
    assert config.load().port == 9002  # env beats the file
    assert config.load(port=9003).port == 9003  # the command line beats env
    assert config.load(port=None).port == 9002  # an absent flag overrides nothing


def test_default_config_file_is_optional_and_read(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.load().port == 8765  # no file: defaults
    path = clean_env / ".config/zap/zapd.toml"
    path.parent.mkdir(parents=True)
    path.write_text("port = 9100\n")
    assert config.load().port == 9100


def test_explicit_missing_config_file_is_an_error(clean_env: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="not found"):
        config.load(config_file=tmp_path / "nope.toml")


def test_bad_values_are_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAP_PORT", "99999")
    with pytest.raises(ValidationError):
        config.load()


def test_jwt_secret_from_env_is_secret(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAP_JWT_SECRET", "s" * 40)
    s = config.load()
    assert s.jwt_secret is not None and s.jwt_secret.get_secret_value() == "s" * 40
    assert "sss" not in repr(s)
