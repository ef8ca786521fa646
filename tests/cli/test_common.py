"""What every command shares: who a change is recorded under."""

from __future__ import annotations

import getpass

import pytest

from vigil.cli._common import default_actor


def test_a_change_from_the_shell_is_recorded_under_the_os_user() -> None:
    assert default_actor() == f"{getpass.getuser()} (cli)"


@pytest.mark.parametrize("error", [KeyError("uid 1234"), OSError("no login name")])
def test_without_an_os_user_name_it_is_recorded_as_the_cli(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def nobody() -> str:
        raise error

    monkeypatch.setattr(getpass, "getuser", nobody)
    assert default_actor() == "cli"
