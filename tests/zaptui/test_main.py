"""`zaptui` command line: flags over the environment, bad values refused in one line."""

from __future__ import annotations

import pytest

from zaptui.main import parse


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAP_SERVER", "http://10.0.0.5:8765")
    monkeypatch.setenv("ZAP_LANG", "en")
    assert parse([]).server == "http://10.0.0.5:8765"
    s = parse(["--server", "http://127.0.0.1:9000", "--lang", "pt_BR", "--no-bell"])
    assert (s.server, s.lang, s.bell) == ("http://127.0.0.1:9000", "pt_BR", False)


def test_a_bad_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZAP_PAGE_SIZE", "3")
    with pytest.raises(SystemExit) as exc:
        parse([])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("zaptui: bad setting page_size") and err.count("\n") == 1
    assert "Traceback" not in err


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(["--theme", "purple"])
    assert exc.value.code == 2
