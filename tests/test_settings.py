"""Settings are checked as they are read: a wrong value is one line naming the variable and the
form it expects, for the host's ``Settings(...)``, for ``Settings.from_env()`` and for every CLI
command (never a traceback)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.settings import EXPECTED, Settings, SettingsError

BAD = [
    ("VIGIL_INTERVAL", "abc", "a number of seconds from 1 to 3600"),
    ("VIGIL_INTERVAL", "0", "a number of seconds from 1 to 3600"),
    ("VIGIL_PORT", "99999", "a whole number from 1 to 65535"),
    ("VIGIL_PORT", "http", "a whole number from 1 to 65535"),
    ("VIGIL_SECRET_KEY", "too-short", "at least 16 characters"),
    ("VIGIL_BASE_URL", "vigil.example.com", "an absolute http:// or https:// URL"),
    ("VIGIL_BASE_URL", "ftp://vigil.example.com", "an absolute http:// or https:// URL"),
    ("VIGIL_BASE_URL", "https://", "an absolute http:// or https:// URL"),
    ("VIGIL_BASE_URL", "https://vigil.example.com:99999", "an absolute http:// or https:// URL"),
    ("VIGIL_TRUSTED_PROXIES", "10.0.0.1,proxy.local", "IP addresses or networks"),
    ("VIGIL_MAX_CONNECTIONS", "5", "a whole number from 10"),
    ("VIGIL_HEADER_TIMEOUT", "-1", "a number of seconds above 0"),
    ("VIGIL_SIGNIN_ATTEMPTS", "many", "a whole number from 1 to 100"),
    ("VIGIL_FLAP_WINDOW", "2", "a whole number from 3 to 100"),
    ("VIGIL_FLAP_HIGH", "120", "a percentage above 0, at most 100"),
    ("VIGIL_FLAP_LOW", "30", "below VIGIL_FLAP_HIGH"),  # the default high is 20
    ("VIGIL_HOST", "not a host", "an address to listen on"),
    ("VIGIL_HOST", "-bad-.example", "an address to listen on"),
    ("VIGIL_DATABASE_URL", "garbage", "a database URL: sqlite+aiosqlite:///"),
    ("VIGIL_DATABASE_URL", "mysql://vigil@db/vigil", "postgresql+asyncpg://user@host/db"),
    ("VIGIL_DATABASE_URL", "sqlite:///vigil.db", "a database URL: sqlite+aiosqlite:///"),
    ("VIGIL_SAMPLE_RAW_HOURS", "0", "a whole number of hours from 1 to 8784"),
    ("VIGIL_SAMPLE_RAW_HOURS", "9000", "a whole number of hours from 1 to 8784"),
    ("VIGIL_SAMPLE_RAW_HOURS", "1.5", "a whole number of hours from 1 to 8784"),
]


@pytest.mark.parametrize(("variable", "value", "expected"), BAD)
def test_a_wrong_variable_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    message = str(raised.value)
    assert message.startswith((f"{variable}: must be", f"{variable}: is"))
    assert expected in message
    assert "\n" not in message
    assert raised.value.field == variable


def test_a_secret_key_is_never_repeated_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_SECRET_KEY", "hunter2-hunter")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    assert "hunter2" not in str(raised.value)
    assert "14 characters" in str(raised.value)


def test_the_host_gets_the_same_error_from_keyword_arguments() -> None:
    with pytest.raises(SettingsError, match=r"^VIGIL_INTERVAL: must be a number of seconds"):
        Settings(interval=0)
    with pytest.raises(SettingsError, match=r"^nonsense: is not a setting of Vigil"):
        Settings(nonsense=1)


def test_good_values_are_read_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TRUSTED_PROXIES", " 10.0.0.5, 10.1.2.0/24 ,::1")
    monkeypatch.setenv("VIGIL_BASE_URL", " https://vigil.example.com/ ")
    monkeypatch.setenv("VIGIL_SECRET_KEY", "x" * 16)
    settings = Settings.from_env()
    assert settings.trusted_proxies == ("10.0.0.5/32", "10.1.2.0/24", "::1/128")
    assert settings.public_url == "https://vigil.example.com"
    assert Settings(trusted_proxies="").trusted_proxies == ()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "vigil.internal", "bot-1.example."]
)
def test_addresses_and_host_names_are_listening_hosts(host: str) -> None:
    assert Settings(host=host).host == host


def test_every_setting_says_what_form_it_expects() -> None:
    assert set(EXPECTED) == set(Settings.model_fields)


@pytest.mark.parametrize(
    "command", [["rules", "list"], ["serve"], ["db", "current"], ["tokens", "list"]]
)
@pytest.mark.parametrize(("variable", "value", "expected"), BAD[:5] + BAD[6:7])
def test_every_command_refuses_a_wrong_setting_in_one_line(
    command: list[str], variable: str, value: str, expected: str, sqlite_url: str
) -> None:
    result = CliRunner().invoke(
        app, command, env={"VIGIL_DATABASE_URL": sqlite_url, variable: value, "COLUMNS": "60"}
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {variable}: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_flap_detection_is_on_by_default_and_can_be_turned_off() -> None:
    flap = Settings().flap
    assert flap is not None and (flap.window, flap.high, flap.low) == (21, 20.0, 5.0)
    assert Settings(flap_detection=False).flap is None


@pytest.mark.parametrize(
    ("interval", "batch", "effective"),
    [(1, 10, 10), (1, 3, 3), (2, 10, 5), (5, 10, 2), (30, 10, 1), (3600, 1000, 1), (1, 1000, 10)],
)
def test_the_own_samples_held_back_are_at_most_ten_seconds(
    interval: float, batch: int, effective: int
) -> None:
    settings = Settings(interval=interval, sample_batch=batch)
    assert settings.effective_sample_batch == effective
