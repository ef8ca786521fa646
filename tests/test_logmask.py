"""Secrets are masked in log records whatever logs them (``vigil.logmask``)."""

from __future__ import annotations

import logging
import sys

import pytest

from vigil.logmask import SecretMask, mask, remember, secret_pieces

SLACK = "slack://T1234/B5678/MyRealToken123!!"


def test_the_pieces_of_a_channel_url_are_its_secrets() -> None:
    assert secret_pieces(SLACK) >= {"MyRealToken123!!"}
    assert secret_pieces("discord://123456789012/Secr3tTokenABC") >= {
        "123456789012",
        "Secr3tTokenABC",
    }
    json_url = "json://user:hunter2@10.1.2.3:8080/hooks/abcdefgh?token=qwertyuiop"
    assert secret_pieces(json_url) == {"hunter2", "abcdefgh", "qwertyuiop"}  # not the host
    assert secret_pieces("mailto://me:p%40ss@example.com") >= {"p@ss", "p%40ss"}


def test_a_remembered_secret_is_masked_wherever_it_appears() -> None:
    remember(SLACK)
    said = "An invalid Slack (third) Token (MyRealToken123!!) was specified."
    assert mask(said) == "An invalid Slack (third) Token (***) was specified."


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Unparseable URL tgram://123:ABCdef/456", "Unparseable URL tgram://***"),
        (
            "Discord POST URL: https://discord.com/api/webhooks/1/x (cert_verify=True)",
            "Discord POST URL: https://discord.com/*** (cert_verify=True)",
        ),
        ("GET https://a:b@example.com/ ok", "GET https://a:***@example.com/ ok"),
        (
            "connecting to postgresql+asyncpg://vigil:s3cret@db:5432/vigil",
            "connecting to postgresql+asyncpg://vigil:***@db:5432/vigil",
        ),
        (
            "('ana', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', 'admin')",
            "('ana', '$argon2id$***', 'admin')",
        ),
        ("nothing to hide at http://127.0.0.1:8000", "nothing to hide at http://127.0.0.1:8000"),
    ],
)
def test_urls_and_hashes_are_masked_by_their_form(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_the_filter_masks_messages_arguments_and_tracebacks() -> None:
    record = logging.LogRecord(
        "sqlalchemy.engine.Engine",
        logging.INFO,
        __file__,
        1,
        "[generated in %s] %r",
        ("0.1s", ("ops", "discord://1/tok")),
        None,
    )
    try:
        raise ValueError("bad url discord://1/tok")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert SecretMask().filter(record)  # never dropped
    assert record.getMessage() == "[generated in 0.1s] ('ops', 'discord://***')"
    assert record.exc_text is not None and "discord://***" in record.exc_text
    assert "tok" not in record.exc_text.rpartition("ValueError")[2]
