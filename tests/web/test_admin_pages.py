"""The Channels and the Snoozes & Maintenance pages from the server side, without a browser:
what they show, the plain-form changes an admin makes (and the ones refused, shown again with
what was wrong), a channel's secret never sent back, and a viewer who sees but cannot act.
Every test runs against a real Vigil on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil.runtime.notifier import DeliveryPolicy
from vigil.store import OutboxStatus

from ..notify.receiver import serving
from .support import LATENCY, T0, Api, running_api, wait_until
from .test_pages import MEMORY, Node, facts, html, location, post_form, sign_in

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

SECRET_URL = "discord://1234567890/supersecrettoken"
EVERY_EVENT = {f"event_{on}": "on" for on in ("opened", "escalated", "acknowledged", "resolved")}


def stamp(moment: datetime) -> str:
    """A ``<time datetime=...>`` as the pages write it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_of(page: Node, element_id: str) -> str:
    return page.find(id=element_id).text


def spoken(node: Node) -> str:
    """A node's text as a screen reader joins it (``Node.text`` trims each child's)."""

    def raw(node: Node) -> str:
        return "".join(c if isinstance(c, str) else raw(c) for c in node.children)

    return " ".join(raw(node).split())


def invalid(node: Node) -> bool:
    return node.attrs.get("aria-invalid") == "true"


def changes_forms(page: Node) -> list[Node]:
    """Every form that changes something: all but the header's sign-out and those that only
    ask (method GET)."""
    return [
        form
        for form in page.find_all("form")
        if form.attrs.get("action") != "/logout" and form.attrs.get("method", "get") != "get"
    ]


# -- channels -------------------------------------------------------------------------------------


async def test_an_admin_adds_a_channel_whose_secret_the_page_never_shows(api: Api) -> None:
    csrf = await sign_in(api)
    page = html(await api.client.get("/channels"))
    nav = {a.text: a for a in page.find("nav", class_="nav").find_all("a")}
    assert nav["Channels"].attrs == {"href": "/channels", "aria-current": "page"}
    assert nav["Snoozes & Maintenance"].attrs == {"href": "/silences"}
    assert "No channel yet" in page.find(id="channels").text
    form = page.find(id="add-channel").find("form")
    assert form.attrs["action"] == "/channels"
    hidden = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input", type="hidden")}
    assert hidden == {"csrf_token": csrf, "next": "/channels"}

    added = await post_form(
        api,
        "/channels",
        {
            **hidden,
            "name": "ops",
            "url": SECRET_URL,
            "min_severity": "warning",
            **EVERY_EVENT,
            "renotify_minutes": "30",
            "enabled": "on",
        },
    )
    assert location(added) == "/channels?done=channel-added"

    stored = await api.vigil.store.get_channel("ops")
    channel = stored.channel
    assert channel.url == SECRET_URL  # the store keeps it whole, to send with
    assert (channel.min_severity.value, channel.renotify_minutes, channel.enabled) == (
        "warning",
        30,
        True,
    )
    response = await api.client.get(location(added))
    assert "supersecrettoken" not in response.text and "1234567890" not in response.text
    after = html(response)
    assert after.find(class_="flash").text == "✓ Channel added."
    row = after.find("tr", id="channel-ops")
    masked = row.find("td", data_label="Address").text
    assert masked == channel.redacted_url and masked.startswith("discord://")
    assert "***" in masked
    assert row.find(class_="rule-name").text == "ops" and "Discord" in row.find("th").text
    assert "every 30 min" in row.find("td", data_label="Reminders").text
    # the edit form shows the masked address, so saving it unchanged keeps the stored one
    assert after.find(id="edit-ops-url").attrs["value"] == masked
    assert after.find(id="edit-ops-renotify").attrs["value"] == "30"


async def test_a_refused_channel_is_explained_and_its_address_not_sent_back(api: Api) -> None:
    store = api.vigil.store
    await store.add_channel({"name": "taken", "url": "json://127.0.0.1:9/x"}, now=api.clock())
    csrf = await sign_in(api)
    valid = {
        "csrf_token": csrf,
        "next": "/channels",
        "name": "ops",
        "url": SECRET_URL,
        "min_severity": "critical",
        **EVERY_EVENT,
        "renotify_minutes": "15",
        "enabled": "on",
    }
    cases = (
        ({"url": "foo://bar/hunter2-secret"}, "url", "unsupported scheme foo://"),
        ({"name": "Ops Team!"}, "name", "name: "),
        ({key: "" for key in EVERY_EVENT}, "events", "events: "),
        ({"name": "taken"}, "name", "name: "),
    )
    for changed, field, says in cases:
        sent = {k: v for k, v in {**valid, **changed}.items() if v != "" or k == "url"}
        response = await post_form(api, "/channels", sent)
        assert response.status_code == 422, field
        assert SECRET_URL not in response.text and "supersecrettoken" not in response.text
        assert "hunter2-secret" not in response.text
        page = html(response)
        assert page.find_all("tr", id="channel-taken")[0].find_all("p", role="alert") == []
        section = page.find(id="add-channel")
        error = section.find("p", role="alert")
        assert error.attrs["id"] == "add-error" and says in error.text, (field, error.text)
        marked = [node for node in section.find_all() if invalid(node)]
        assert len(marked) == 1, field
        if field == "events":
            assert marked[0].tag == "fieldset"
        else:
            assert marked[0].attrs["name"] == field
        # the other values are kept, the address is left empty to type again
        assert section.find(id="add-name").attrs["value"] == sent["name"]
        assert section.find(id="add-url").attrs["value"] == ""
        assert section.find(id="add-renotify").attrs["value"] == "15"
        assert section.find("option", value="critical").attrs.get("selected") == ""
        ticked = [
            box.attrs["name"]
            for box in section.find_all("input", type="checkbox")
            if "checked" in box.attrs
        ]
        events = [] if field == "events" else sorted(EVERY_EVENT)
        assert sorted(ticked) == sorted([*events, "enabled"])
    assert [c.channel.name for c in await store.list_channels()] == ["taken"]


async def test_an_edit_keeps_the_masked_address_and_refuses_bad_minutes(api: Api) -> None:
    store = api.vigil.store
    await store.add_channel({"name": "ops", "url": SECRET_URL}, now=api.clock())
    csrf = await sign_in(api)
    page = html(await api.client.get("/channels"))
    row = page.find("tr", id="channel-ops")
    edit = row.find("details", class_="edit")
    assert "open" not in edit.attrs
    form = edit.find("form")
    assert form.attrs["action"] == "/channels/ops"
    masked = form.find("input", name="url").attrs["value"]
    fields = {
        "csrf_token": csrf,
        "next": "/channels#channel-ops",
        "url": masked,
        "min_severity": "critical",
        **EVERY_EVENT,
        "renotify_minutes": "",
    }  # "enabled" left out: the box unticked

    saved = await post_form(api, "/channels/ops", fields)
    assert location(saved) == "/channels?done=channel-saved#channel-ops"
    stored = await store.get_channel("ops")
    assert stored.channel.url == SECRET_URL
    assert (stored.channel.min_severity.value, stored.channel.enabled) == ("critical", False)
    row = html(await api.client.get("/channels")).find("tr", id="channel-ops")
    assert row.has_class("disabled")
    assert row.find("td", data_label="Enabled").text == "✗ No"
    assert "Critical" in row.find("td", data_label="Sends").text

    refused = await post_form(api, "/channels/ops", {**fields, "renotify_minutes": "abc"})
    assert refused.status_code == 422
    row = html(refused).find("tr", id="channel-ops")
    assert error_of(row, "channel-error-ops") == "✗ renotify_minutes: 'abc' is not a whole number"
    assert "open" in row.find("details", class_="edit").attrs
    minutes = row.find(id="edit-ops-renotify")
    assert minutes.attrs["value"] == "abc" and invalid(minutes)
    assert row.find(id="edit-ops-url").attrs["value"] == masked
    assert row.find("option", value="critical").attrs.get("selected") == ""
    assert await store.get_channel("ops") == stored


async def test_a_channel_named_add_is_not_confused_with_the_add_form(api: Api) -> None:
    store = api.vigil.store
    await store.add_channel(
        {"name": "add", "url": SECRET_URL, "min_severity": "critical", "events": ["opened"]},
        now=api.clock(),
    )
    stored = await store.get_channel("add")
    csrf = await sign_in(api)
    page = html(await api.client.get("/channels"))
    row = page.find("tr", id="channel-add")
    assert row.find("option", value="critical").attrs.get("selected") == ""
    ticked = [
        b.attrs["name"] for b in row.find_all("input", type="checkbox") if "checked" in b.attrs
    ]
    assert ticked == ["event_opened", "enabled"]  # its own values, not a new channel's
    assert row.find(id="edit-add-url").attrs["value"] == stored.channel.redacted_url

    refused = await post_form(api, "/channels", {"csrf_token": csrf, "name": "Bad!", **EVERY_EVENT})
    assert refused.status_code == 422
    page = html(refused)
    assert [p.attrs["id"] for p in page.find_all("p", role="alert")] == ["add-error"]
    row = page.find("tr", id="channel-add")
    assert "open" not in row.find("details").attrs
    assert row.find("option", value="critical").attrs.get("selected") == ""

    edit = {"csrf_token": csrf, "url": "", "event_opened": "on", "renotify_minutes": "x"}
    refused = await post_form(api, "/channels/add", edit)
    assert refused.status_code == 422
    page = html(refused)
    alerts = [p.attrs["id"] for p in page.find_all("p", role="alert")]
    assert alerts == ["channel-error-add"]
    assert page.find(id="add-renotify").attrs["value"] == ""
    assert await store.get_channel("add") == stored


async def test_odd_numbers_and_a_channel_gone_meanwhile_are_refused_not_crashed(
    api: Api,
) -> None:
    store = api.vigil.store
    await store.add_channel({"name": "ops", "url": SECRET_URL}, now=api.clock())
    stored = await store.get_channel("ops")
    csrf = await sign_in(api)
    edit = {"csrf_token": csrf, **EVERY_EVENT, "enabled": "on"}
    for minutes, says in (
        ("²", "'²' is not a whole number"),  # a digit to str.isdigit, not to int()
        ("-5", "'-5' is not a whole number"),
        ("<b>5</b>", "'<b>5</b>' is not a whole number"),  # shown as text, not markup
        ("9" * 5000, "is far too large"),  # past int()'s 4300 digits
        ("10081", "Input should be less than or equal to 10080"),  # the API's bound
    ):
        response = await post_form(api, "/channels/ops", {**edit, "renotify_minutes": minutes})
        assert response.status_code == 422, minutes
        assert "<b>" not in response.text
        assert error_of(html(response), "channel-error-ops") == f"✗ renotify_minutes: {says}"
    assert await store.get_channel("ops") == stored

    # another admin removed the channel while this one was editing it
    gone = await post_form(api, "/channels/gone", {**edit, "renotify_minutes": "abc"})
    assert gone.status_code == 404 and "Not found" in html(gone).find("h1").text

    snooze = {"csrf_token": csrf, "metric": LATENCY, "reason": "Deploy"}
    for minutes in ("²", "9" * 5000, "0", "ten"):
        response = await post_form(api, "/silences/snoozes", {**snooze, "minutes": minutes})
        assert response.status_code == 422, minutes
        error = html(response).find(id="snooze-error").text
        assert error.startswith("✗ minutes: "), error
    assert await store.active_snoozes() == []


async def test_send_test_reaches_the_receiver_or_says_why_not(api: Api) -> None:
    async with serving() as receiver:
        receiver.always_fail.add("/down")
        for name in ("hook", "down"):
            channel = {"name": name, "url": receiver.url(f"/{name}")}
            await api.vigil.store.add_channel(channel, now=api.clock())
        csrf = await sign_in(api)
        page = html(await api.client.get("/channels"))
        form = page.find("form", action="/channels/hook/test")
        assert spoken(form.find("button")) == "Send test to hook"
        hidden = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input", type="hidden")}
        assert hidden == {"csrf_token": csrf, "next": "/channels#channel-hook"}

        tested = await post_form(api, "/channels/hook/test", hidden)
        assert location(tested) == "/channels?done=channel-tested#channel-hook"
        [hit] = receiver.on("/hook")  # answered before the redirect
        assert hit.body["title"] == "Vigil test message" and "'hook'" in hit.body["message"]
        notice = html(await api.client.get(location(tested))).find(class_="flash")
        assert notice.text == "✓ Test message delivered."

        failed = await post_form(api, "/channels/down/test", {"csrf_token": csrf})
        assert failed.status_code == 502
        assert len(receiver.on("/down")) == 1
        page = html(failed)
        reason = error_of(page.find("tr", id="channel-down"), "channel-error-down")
        assert reason.startswith("✗ channel 'down': ") and "500" in reason, reason
        assert "open" not in page.find("tr", id="channel-down").find("details").attrs
        assert page.find("tr", id="channel-hook").find_all("p", role="alert") == []

        unknown = await post_form(api, "/channels/nobody/test", {"csrf_token": csrf})
        assert unknown.status_code == 404


async def test_a_removed_channel_is_gone(api: Api) -> None:
    await api.vigil.store.add_channel({"name": "ops", "url": SECRET_URL}, now=api.clock())
    csrf = await sign_in(api)
    page = html(await api.client.get("/channels"))
    assert page.find("h2", id="channels-h").text == "Where incidents are sent (1)"
    form = page.find("form", action="/channels/ops/remove")
    assert spoken(form.find("button")) == "Remove ops"

    removed = await post_form(
        api, "/channels/ops/remove", {"csrf_token": csrf, "next": "/channels"}
    )
    assert location(removed) == "/channels?done=channel-removed"
    after = html(await api.client.get(location(removed)))
    assert after.find(class_="flash").text == "✓ Channel removed."
    assert after.find_all("tr", id="channel-ops") == []
    assert "No channel yet" in after.find(id="channels").text
    assert await api.vigil.store.list_channels() == []
    again = await post_form(api, "/channels/ops/remove", {"csrf_token": csrf})
    assert again.status_code == 404


async def test_a_delivery_given_up_on_is_listed_with_its_error(migrated_url: str) -> None:
    policy = DeliveryPolicy(max_attempts=1)  # the first failure is final
    async with serving() as receiver, running_api(migrated_url, delivery=policy) as api:
        receiver.always_fail.add("/down")
        store = api.vigil.store
        for name in ("down", "up"):
            channel = {"name": name, "url": receiver.url(f"/{name}")}
            await store.add_channel(channel, now=api.clock())
        [opened] = await api.breach(LATENCY, 250)
        assert opened.incident is not None
        await wait_until(lambda: api.vigil.notifier.status().failed == 1)
        await wait_until(lambda: api.vigil.notifier.status().sent == 1)
        [given_up] = await store.list_notifications(status=OutboxStatus.FAILED)
        assert given_up.last_error is not None and "500" in given_up.last_error

        await sign_in(api, "vic")  # a viewer sees the deliveries too
        deliveries = html(await api.client.get("/channels")).find(id="deliveries")
        counts = facts(deliveries)
        assert (counts["Waiting"], counts["Delivered"], counts["Failed"]) == ("0", "1", "✗ 1")
        assert counts["Delivering here"] == "Yes, this instance leads"
        assert counts["Last failed attempt"].startswith(f"down: {given_up.last_error}")
        assert deliveries.find("h3").text == "Given up on (latest 1)"
        [row] = deliveries.find("table", class_="compact failed").find("tbody").find_all("tr")
        cells = row.find_all("td")
        ident = str(opened.incident.id)
        assert [cell.text for cell in cells[1:]] == ["down", ident[:8], "1", given_up.last_error]
        assert cells[2].find("a").attrs["href"] == f"/incidents/{ident}"
        assert cells[0].find("time").attrs["datetime"] == stamp(opened.at)

        health = html(await api.client.get("/")).find(id="health")
        link = health.find("a", href="/channels#deliveries")
        assert link.text == "✗ 1 failed"  # the Overview points at what failed


# -- snoozes --------------------------------------------------------------------------------------


def silence_notes(page: Node, metric: str) -> list[str]:
    """What the Alerts page says under a rule about its being silenced."""
    row = page.find("tr", id=f"rule-{metric}")
    return [note.text for note in row.find_all("span", class_="rule-silenced")]


async def test_an_admin_snoozes_a_rule_and_ends_it(api: Api) -> None:
    csrf = await sign_in(api)
    page = html(await api.client.get("/silences"))
    nav = {a.text: a for a in page.find("nav", class_="nav").find_all("a")}
    assert nav["Snoozes & Maintenance"].attrs.get("aria-current") == "page"
    assert "No rule is snoozed" in page.find("section", data_section="snoozes").text
    form = page.find(id="snooze").find("form")
    assert form.attrs["action"] == "/silences/snoozes"
    rules = [o.attrs["value"] for o in form.find("select", name="metric").find_all("option")]
    assert "" in rules and LATENCY in rules and MEMORY in rules
    fields = {"csrf_token": csrf, "next": "/silences", "metric": LATENCY, "minutes": "120"}

    snoozed = await post_form(api, "/silences/snoozes", {**fields, "reason": "Deploying shard 3"})
    assert location(snoozed) == "/silences?done=snoozed"
    until = T0 + timedelta(hours=2)
    [stored] = await api.vigil.store.active_snoozes()
    assert (stored.metric, stored.until, stored.by) == (LATENCY, until, "ana")

    after = html(await api.client.get(location(snoozed)))
    assert after.find(class_="flash").text == "✓ Rule snoozed."
    section = after.find("section", data_section="snoozes")
    assert section.find("h2").text == "Snoozed rules (1)"
    row = section.find("tr", id=f"snooze-{LATENCY}")
    assert row.find("th").text == f"Gateway Latency {LATENCY}"
    assert row.find("td", data_label="Until").find("time").attrs["datetime"] == stamp(until)
    assert row.find("td", data_label="By").text.startswith("ana ")
    assert row.find("td", data_label="Why").text == "Deploying shard 3"

    alerts = html(await api.client.get("/alerts"))
    [note] = silence_notes(alerts, LATENCY)
    row = alerts.find("tr", id=f"rule-{LATENCY}")
    shown_until = row.find("span", class_="rule-silenced").find("time")
    assert shown_until.attrs["datetime"] == stamp(until)
    assert note == f"‖ Snoozed until {shown_until.text} by ana: Deploying shard 3"
    assert silence_notes(alerts, MEMORY) == []

    end = after.find("form", action=f"/silences/snoozes/{LATENCY}/end")
    assert spoken(end.find("button")) == f"End now for {LATENCY}"
    ended = await post_form(api, f"/silences/snoozes/{LATENCY}/end", {"csrf_token": csrf})
    assert location(ended) == "/silences?done=snooze-ended"
    assert await api.vigil.store.active_snoozes() == []
    resumed = html(await api.client.get(location(ended)))
    assert resumed.find(class_="flash").text == "✓ Snooze ended: the rule is watched again."
    assert resumed.find_all("tr", id=f"snooze-{LATENCY}") == []
    assert silence_notes(html(await api.client.get("/alerts")), LATENCY) == []


async def test_a_refused_snooze_is_explained_with_its_values_kept(api: Api) -> None:
    csrf = await sign_in(api)
    fields = {"csrf_token": csrf, "next": "/silences", "metric": LATENCY, "minutes": "240"}

    no_reason = await post_form(api, "/silences/snoozes", {**fields, "reason": "  "})
    assert no_reason.status_code == 422
    form = html(no_reason).find(id="snooze")
    assert form.find("p", role="alert").text.startswith("✗ reason: ")
    reason = form.find(id="snooze-reason")
    assert invalid(reason)
    assert form.find("option", value=LATENCY).attrs.get("selected") == ""
    assert form.find("option", value="240").attrs.get("selected") == ""
    assert "selected" not in form.find("option", value="60").attrs

    no_rule = await post_form(
        api, "/silences/snoozes", {**fields, "metric": "", "reason": "Deploying shard 3"}
    )
    assert no_rule.status_code == 422
    form = html(no_rule).find(id="snooze")
    assert form.find(id="snooze-error").text == "✗ metric: choose the rule to snooze"
    assert invalid(form.find(id="snooze-metric")) and not invalid(form.find(id="snooze-reason"))
    assert form.find(id="snooze-reason").attrs["value"] == "Deploying shard 3"
    chosen = form.find(id="snooze-metric").find_all("option")
    assert [o.attrs["value"] for o in chosen if "selected" in o.attrs] == []  # "Choose…"
    assert await api.vigil.store.active_snoozes() == []


# -- maintenance windows --------------------------------------------------------------------------


def window_row(page: Node, name: str) -> dict[str, Node]:
    row = page.find("section", data_section="windows").find("tr", id=f"window-{name}")
    return {
        "name": row.find("th"),
        **{td.attrs.get("data-label", "actions"): td for td in row.find_all("td")},
    }


async def test_windows_are_added_listed_shown_on_their_rules_and_removed(api: Api) -> None:
    csrf = await sign_in(api)
    page = html(await api.client.get("/silences"))
    form = page.find(id="add-window").find("form")
    assert form.attrs["action"] == "/silences/windows"
    assert form.find(id="window-timezone").attrs["value"] == "UTC"
    base = {"csrf_token": csrf, "next": "/silences", "timezone": "Europe/Berlin"}

    # Fridays 22:00 to 02:00 the next morning, Berlin time; T0 is a Friday, 11:00 in Berlin.
    weekly = {
        **base,
        "name": "nightly-backup",
        "kind": "weekly",
        "day_fri": "on",
        "start_time": "22:00",
        "end_time": "02:00",
        "reason": "Backups",
    }
    added = await post_form(api, "/silences/windows", weekly)
    assert location(added) == "/silences?done=window-added"
    # A one-off for the latency rule, from half an hour before the clock to an hour after.
    once = {
        **base,
        "name": "db-upgrade",
        "kind": "once",
        "start": "2026-11-27T10:30",
        "end": "2026-11-27T12:00",
        f"rule_{LATENCY}": "on",
        "reason": "Database upgrade",
    }
    assert location(await post_form(api, "/silences/windows", once)).endswith("window-added")
    upgrade = await api.vigil.store.get_window("db-upgrade")
    assert (upgrade.start, upgrade.end, upgrade.metrics, upgrade.by) == (
        T0 - timedelta(minutes=30),
        T0 + timedelta(hours=1),
        frozenset({LATENCY}),
        "ana",
    )

    after = html(await api.client.get("/silences?done=window-added"))
    assert after.find(class_="flash").text == "✓ Maintenance window added."
    assert after.find(id="windows-h").text == "Maintenance windows (2)"
    row = window_row(after, "db-upgrade")
    assert row["name"].text == "db-upgrade by ana"
    assert [t.attrs["datetime"] for t in row["When"].find_all("time")] == [
        "2026-11-27T09:30:00Z",
        "2026-11-27T11:00:00Z",
    ]
    assert (row["Rules"].text, row["Now"].text, row["Why"].text) == (
        "Gateway Latency",
        "‖ Active",
        "Database upgrade",
    )
    assert row["Next change"].text.startswith("ends ")
    assert row["Next change"].find("time").attrs["datetime"] == "2026-11-27T11:00:00Z"
    row = window_row(after, "nightly-backup")
    assert row["When"].text == "Every fri, 22:00\u201302:00 Europe/Berlin"  # an en dash
    assert (row["Rules"].text, row["Now"].text) == ("All rules", "Not active")
    assert row["Next change"].text.startswith("starts ")
    assert row["Next change"].find("time").attrs["datetime"] == "2026-11-27T21:00:00Z"

    alerts = html(await api.client.get("/alerts"))
    assert silence_notes(alerts, LATENCY) == ["‖ In maintenance: db-upgrade"]
    link = alerts.find("tr", id=f"rule-{LATENCY}").find("span", class_="rule-silenced").find("a")
    assert link.attrs["href"] == "/silences#window-db-upgrade"
    assert silence_notes(alerts, MEMORY) == []

    # Half past midnight in Berlin, Saturday: the weekly window runs over into the next day.
    api.clock.now = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    late = html(await api.client.get("/silences"))
    row = window_row(late, "nightly-backup")
    assert row["Now"].text == "‖ Active"
    assert row["Next change"].find("time").attrs["datetime"] == "2026-11-28T01:00:00Z"
    row = window_row(late, "db-upgrade")
    assert (row["Now"].text, row["Next change"].text) == ("Not active", "never (over)")
    alerts = html(await api.client.get("/alerts"))
    assert silence_notes(alerts, LATENCY) == silence_notes(alerts, MEMORY)
    assert silence_notes(alerts, MEMORY) == ["‖ In maintenance: nightly-backup"]

    remove = late.find("form", action="/silences/windows/nightly-backup/remove")
    assert spoken(remove.find("button")) == "Remove nightly-backup"
    removed = await post_form(
        api, "/silences/windows/nightly-backup/remove", {"csrf_token": csrf, "next": "/silences"}
    )
    assert location(removed) == "/silences?done=window-removed"
    gone = html(await api.client.get(location(removed)))
    assert gone.find(class_="flash").text == "✓ Maintenance window removed."
    assert gone.find_all("tr", id="window-nightly-backup") == []
    assert [w.name for w in await api.vigil.store.list_windows()] == ["db-upgrade"]
    assert silence_notes(html(await api.client.get("/alerts")), MEMORY) == []


async def test_a_refused_window_points_at_the_field_and_stores_nothing(api: Api) -> None:
    csrf = await sign_in(api)
    once = {
        "csrf_token": csrf,
        "next": "/silences",
        "name": "db-upgrade",
        "kind": "once",
        "timezone": "Europe/Berlin",
        "start": "2026-12-01T22:00",
        "end": "2026-12-01T21:00",
        f"rule_{LATENCY}": "on",
        "reason": "Database upgrade",
    }
    weekly = {
        "csrf_token": csrf,
        "name": "nightly-backup",
        "kind": "weekly",
        "timezone": "Europe/Berlin",
        "start_time": "22:00",
        "end_time": "02:00",
    }
    cases = (
        (once, "end", "window-end", "✗ end: must be after start"),
        ({**once, "end": "2026-12-02T01:00", "timezone": "Mars/Olympus"}, "timezone", None, ""),
        (weekly, "weekdays", None, "✗ weekdays: "),
    )
    for sent, field, element_id, says in cases:
        response = await post_form(api, "/silences/windows", sent)
        assert response.status_code == 422, field
        form = html(response).find(id="add-window")
        error = form.find(id="window-error")
        assert error.attrs["role"] == "alert" and error.text.startswith(says or f"✗ {field}: ")
        marked = [node for node in form.find_all() if invalid(node)]
        assert len(marked) == 1, (field, marked)
        if field == "weekdays":
            assert marked[0].tag == "fieldset" and "Or every week" in marked[0].text
        else:
            assert marked[0].attrs["name"] == field
            assert element_id is None or marked[0].attrs["id"] == element_id
        # what was typed stays
        assert form.find(id="window-name").attrs["value"] == sent["name"]
        assert form.find(id="window-timezone").attrs["value"] == sent["timezone"]
        kind = [r for r in form.find_all("input", type="radio") if "checked" in r.attrs]
        assert [r.attrs["value"] for r in kind] == [sent["kind"]]
        if sent["kind"] == "once":
            assert form.find(id="window-start").attrs["value"] == sent["start"]
            assert form.find(id="window-end").attrs["value"] == sent["end"]
            assert "checked" in form.find("input", name=f"rule_{LATENCY}").attrs
            assert "checked" not in form.find("input", name=f"rule_{MEMORY}").attrs
        else:
            assert form.find(id="window-from").attrs["value"] == "22:00"
    assert await api.vigil.store.list_windows() == []


# -- who may do what ------------------------------------------------------------------------------


async def test_a_viewer_sees_both_pages_read_only_and_cannot_change_anything(api: Api) -> None:
    store = api.vigil.store
    await store.add_channel({"name": "ops", "url": SECRET_URL}, now=api.clock())
    await api.vigil.snooze(LATENCY, duration=timedelta(hours=1), reason="Deploy", by="ana")
    window = {
        "name": "db-upgrade",
        "kind": "once",
        "start": T0 - timedelta(minutes=5),
        "end": T0 + timedelta(hours=1),
        "by": "ana",
    }
    await api.vigil.add_maintenance(window)
    before = (await store.list_channels(), await store.active_snoozes(), await store.list_windows())

    csrf = await sign_in(api, "vic")
    channels = await api.client.get("/channels")
    assert "supersecrettoken" not in channels.text
    page = html(channels)
    assert changes_forms(page) == []
    assert page.find_all("details") == []
    assert page.find_all(id="add-channel") == []
    assert "Read-only: only admins change channels." in page.find(id="channels").text
    row = page.find("tr", id="channel-ops")
    assert row.find("td", data_label="Address").text == before[0][0].channel.redacted_url
    silences = html(await api.client.get("/silences"))
    assert changes_forms(silences) == []
    assert silences.find_all(id="snooze") == [] and silences.find_all(id="add-window") == []
    assert "Read-only: only admins change these." in silences.find("main").text
    assert silences.find("tr", id=f"snooze-{LATENCY}").find_all("button") == []
    assert window_row(silences, "db-upgrade")["Now"].text == "‖ Active"

    channel = {"name": "new", "url": SECRET_URL, **EVERY_EVENT, "min_severity": "info"}
    for path, fields in (
        ("/channels", channel),
        ("/channels/ops", {**channel, "url": "", "enabled": "on"}),
        ("/channels/ops/test", {}),
        ("/channels/ops/remove", {}),
        ("/silences/snoozes", {"metric": MEMORY, "minutes": "60", "reason": "mine"}),
        (f"/silences/snoozes/{LATENCY}/end", {}),
        ("/silences/windows", {"name": "w", "kind": "weekly", "day_mon": "on"}),
        ("/silences/windows/db-upgrade/remove", {}),
    ):
        response = await post_form(api, path, {**fields, "csrf_token": csrf})
        assert response.status_code == 403, path
        assert "this needs the admin role" in html(response).find(class_="error").text, path
    after = (await store.list_channels(), await store.active_snoozes(), await store.list_windows())
    assert after == before


async def test_an_admins_form_without_its_csrf_token_is_refused(api: Api) -> None:
    store = api.vigil.store
    await store.add_channel({"name": "ops", "url": SECRET_URL}, now=api.clock())
    await sign_in(api)
    channel = {"name": "new", "url": SECRET_URL, **EVERY_EVENT, "min_severity": "info"}
    for path, fields in (
        ("/channels", channel),
        ("/channels/ops/remove", {}),
        ("/silences/snoozes", {"metric": LATENCY, "minutes": "60", "reason": "Deploy"}),
        ("/silences/windows", {"name": "w", "kind": "weekly", "day_mon": "on"}),
    ):
        for token in ({}, {"csrf_token": "forged"}):
            response = await post_form(api, path, {**fields, **token, "next": "/silences"})
            assert response.status_code == 403, (path, token)
    assert [c.channel.name for c in await store.list_channels()] == ["ops"]
    assert await store.active_snoozes() == [] and await store.list_windows() == []


async def test_the_silences_sections_render_alone_for_live_updates(api: Api) -> None:
    await api.vigil.snooze(LATENCY, duration=timedelta(minutes=30), reason="Deploy", by="ana")
    await sign_in(api, "vic")
    for name, row in (("snoozes", f"snooze-{LATENCY}"), ("windows", None)):
        response = await api.client.get(f"/sections/silences/{name}")
        assert response.status_code == 200, name
        assert "<html" not in response.text
        [section] = [n for n in html(response).children if isinstance(n, Node)]
        assert section.attrs["data-section"] == name
        if row is not None:
            assert section.find("tr", id=row).find("td", data_label="Why").text == "Deploy"
    windows = html(await api.client.get("/sections/silences/windows"))
    assert windows.find(class_="empty").text == "No maintenance window."
    missing = await api.client.get("/sections/silences/nothing")
    assert missing.status_code == 404 and "Not found" in html(missing).find("h1").text


async def test_the_channels_sections_render_alone_for_live_updates(api: Api) -> None:
    await api.vigil.add_channel({"name": "ops", "url": "json://127.0.0.1:9/hook"}, by="ana")
    await sign_in(api, "vic")
    for name in ("list", "deliveries"):
        response = await api.client.get(f"/sections/channels/{name}")
        assert response.status_code == 200, name
        assert "<html" not in response.text
        [section] = [n for n in html(response).children if isinstance(n, Node)]
        assert section.attrs["data-section"] == name
    listing = html(await api.client.get("/sections/channels/list"))
    row = listing.find("tr", id="channel-ops")
    assert row.attrs["data-key"] == "channel-ops"  # kept as it is while someone edits it
    assert row.find("td", data_label="Address").text == "json://127.0.0.1:9/***"
    missing = await api.client.get("/sections/channels/nothing")
    assert missing.status_code == 404 and "Not found" in html(missing).find("h1").text


async def test_an_admin_makes_a_channel_a_daily_digest(api: Api) -> None:
    csrf = await sign_in(api)
    hidden = {"csrf_token": csrf, "next": "/channels"}
    form = {**hidden, "name": "ops", "url": SECRET_URL, **EVERY_EVENT, "enabled": "on"}
    assert location(await post_form(api, "/channels", form)) == "/channels?done=channel-added"
    page = html(await api.client.get("/channels"))
    options = page.find(id="edit-ops-delivery").find_all("option")
    assert [o.attrs["value"] for o in options if "selected" in o.attrs] == ["realtime"]
    daily = {
        **form,
        "delivery": "daily",
        "digest_at": "08:30",
        "timezone": "Europe/Berlin",
        "url": "",
    }
    saved = await post_form(api, "/channels/ops", daily)
    assert location(saved) == "/channels?done=channel-saved"
    channel = (await api.vigil.store.get_channel("ops")).channel
    assert (channel.delivery, channel.digest_at, channel.timezone) == (
        "daily",
        "08:30",
        "Europe/Berlin",
    )
    page = html(await api.client.get("/channels"))
    shown = page.find("tr", id="channel-ops").find("td", data_label="Reminders").text
    assert "daily digest at 08:30" in shown and "Europe/Berlin" in shown

    refused = await post_form(api, "/channels/ops", {**daily, "timezone": "Mars/Olympus"})
    assert refused.status_code == 422
    page = html(refused)
    assert invalid(page.find(id="edit-ops-timezone"))
    assert (await api.vigil.store.get_channel("ops")).channel.timezone == "Europe/Berlin"
