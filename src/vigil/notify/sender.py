"""Delivery of one message to one channel, without blocking the event loop.

``Apprise.async_notify`` runs each service's blocking send in apprise's own worker threads and
awaits it, so the loop stays free. A plain JSON webhook skips that: ``vigil.notify.webhook``
makes apprise's very request from the loop, on a ``Transport``'s session that keeps its
connections open (the dispatcher keeps one for as long as it runs). apprise's own retries are
off (its default, unless a channel URL sets ``retry=N``): retries, backoff and the outbox
belong to the dispatcher, which sends once per attempt.

Per message, apprise's URL options carry what a plain URL cannot:
- Discord: ``format=markdown`` makes apprise post an embed (title, description, one field per
  Markdown heading, coloured by the notification type) and ``href`` links its title to the
  incident;
- JSON/form/XML webhooks: an ``Idempotency-Key`` header, stable across retries.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import apprise

from vigil.logmask import mask
from vigil.notify.channels import Channel, apprise_url
from vigil.notify.errors import DeliveryError
from vigil.notify.format import Message, Tone, format_test
from vigil.notify.webhook import JsonWebhook, plan

IDEMPOTENCY_HEADER = "Idempotency-Key"
APP_ID = "Vigil"
PLANS_KEPT = 256  # channel URLs whose direct request is remembered (channels are few)
_HEADER_SCHEMAS = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
_NOTIFY_TYPES = {
    Tone.CRITICAL: apprise.NotifyType.FAILURE,
    Tone.WARNING: apprise.NotifyType.WARNING,
    Tone.INFO: apprise.NotifyType.INFO,
    Tone.RESOLVED: apprise.NotifyType.SUCCESS,
}


class Transport:
    """Sends messages, keeping what is worth keeping between them: one HTTP session whose
    connections stay open, and each JSON webhook URL's request as parsed once. ``aclose``
    (or ``async with``) closes the session; the transport can be used again afterwards."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._plans: OrderedDict[str, JsonWebhook | None] = OrderedDict()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(self, channel: Channel, message: Message) -> None:
        """Deliver ``message`` to ``channel`` once; raise ``DeliveryError`` saying why not.

        Does not look at ``channel.enabled`` or what it subscribes to: the dispatcher decides
        whom to tell (``wants``); this only delivers. Each service bounds its own network
        waits (apprise's connect and read timeouts, ``cto`` and ``rto``); a caller wanting a
        tighter bound wraps the call in ``asyncio.timeout``.
        """
        webhook = self._plan(channel)
        if webhook is None:
            await _send_with_apprise(channel, message)
            return
        body, _ = message.body_for(channel.service)
        data = webhook.payload(
            title=message.title_for(channel.service),
            body=body,
            notify_type=_NOTIFY_TYPES[message.tone].value,
        )
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        failed = await webhook.post(
            self._session,
            data,
            app_id=APP_ID,
            extra={IDEMPOTENCY_HEADER: message.idempotency_key},
        )
        if failed is not None:
            raise DeliveryError(channel.name, failed)

    def _plan(self, channel: Channel) -> JsonWebhook | None:
        if channel.service.schema not in ("json", "jsons"):
            return None
        url = channel.url
        if url in self._plans:
            self._plans.move_to_end(url)
            return self._plans[url]
        found = self._plans[url] = plan(url)
        if len(self._plans) > PLANS_KEPT:
            self._plans.popitem(last=False)
        return found


async def send(channel: Channel, message: Message) -> None:
    """Deliver ``message`` to ``channel`` once (``Transport.send``), on a session of its own;
    a caller sending many messages keeps a ``Transport`` instead."""
    async with Transport() as transport:
        await transport.send(channel, message)


async def _send_with_apprise(channel: Channel, message: Message) -> None:
    asset = _asset(message)
    service = _service(channel, message, asset)
    body, body_format = message.body_for(channel.service)
    notifier = apprise.Apprise(asset=asset)
    notifier.add(service)
    result = await notifier.async_notify(
        body=body,
        title=message.title_for(channel.service),
        notify_type=_NOTIFY_TYPES[message.tone],
        body_format=body_format.value,
    )
    try:
        if not result:
            raise DeliveryError(channel.name, _reason(result))
    finally:
        result.close()


async def send_test(
    channel: Channel,
    *,
    base_url: str | None = None,
    now: datetime | None = None,
) -> None:
    """Send the "is this channel working?" message, whether or not the channel is enabled."""
    message = format_test(channel, now=now or datetime.now(UTC), base_url=base_url)
    await send(channel, message)


def _asset(message: Message) -> apprise.AppriseAsset:
    """Vigil's name and colours for apprise (the Discord embed's author and colour)."""
    colours = {notify_type: f"#{tone.colour:06X}" for tone, notify_type in _NOTIFY_TYPES.items()}
    identity: dict[str, Any] = {"app_id": APP_ID, "app_desc": "Vigil alerts"}
    if message.base_url:
        identity["app_url"] = message.base_url  # else apprise's own project page
    return apprise.AppriseAsset(html_notify_map=colours, **identity)


def _service(channel: Channel, message: Message, asset: apprise.AppriseAsset) -> apprise.NotifyBase:
    options: dict[str, str] = {}
    schema = channel.service.schema
    if schema == "discord":
        options["format"] = "markdown"
        if message.link:
            options["href"] = message.link
    elif schema in _HEADER_SCHEMAS:
        options[f"+{IDEMPOTENCY_HEADER}"] = message.idempotency_key
    url = channel.url
    if options:
        # apprise's canonical form of the URL (also for https://discord.com/api/webhooks/...),
        # with our options appended; apprise reads the last value of a repeated option.
        plugin = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            raise DeliveryError(channel.name, "apprise no longer accepts the channel URL")
        canonical = apprise_url(plugin, privacy=False)
        separator = "&" if "?" in canonical else "?"
        url = canonical + separator + urlencode(options, quote_via=quote)
    plugin = apprise.Apprise.instantiate(url, asset=asset)
    if plugin is None:
        raise DeliveryError(channel.name, "apprise no longer accepts the channel URL")
    return plugin


def _reason(result: apprise.AppriseResult) -> str:
    messages = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
    if messages:
        # in order, without repeats; masked, as it is shown, stored and logged
        return mask(" ".join(dict.fromkeys(messages)))
    return f"apprise reported {result.status.name.lower()}"
