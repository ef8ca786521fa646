"""The e-mail's plain-text part (what a text-only mail client shows, made by apprise from the
HTML) carries the incident's address, not just the words "Open incident"."""

from __future__ import annotations

from vigil.notify import Channel, format_event, send

from .receiver import MailReceiver
from .support import INCIDENT_ID, RULE, lifecycle

BASE_URL = "https://vigil.example.com"


async def test_the_plain_text_part_of_an_email_has_the_incident_address(
    smtp: MailReceiver,
) -> None:
    channel = Channel(name="oncall-mail", url=smtp.url())
    await send(channel, format_event(lifecycle()["opened"], channel, base_url=BASE_URL, rule=RULE))
    _, mail = await smtp.next()
    address = f"{BASE_URL}/incidents/{INCIDENT_ID}"
    plain = mail.get_body(preferencelist=("plain",))
    assert plain is not None
    assert address in plain.get_content()
    html = mail.get_body(preferencelist=("html",))
    assert html is not None
    assert f'<a href="{address}">{address}</a>' in html.get_content()  # still a link


async def test_without_a_base_url_no_address_is_made_up(smtp: MailReceiver) -> None:
    channel = Channel(name="oncall-mail", url=smtp.url())
    await send(channel, format_event(lifecycle()["opened"], channel, rule=RULE))
    _, mail = await smtp.next()
    plain = mail.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "Open incident" not in plain.get_content() and "/incidents/" not in plain.get_content()
