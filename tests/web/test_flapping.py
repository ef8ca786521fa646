"""Flap detection end to end: a real server, a local receiver, an oscillating trace. With flap
detection: one incident, held open and marked flapping, and one "flapping" message; without:
an incident and two messages per oscillation."""

from __future__ import annotations

import httpx
import pytest

from ..notify.receiver import serving
from .support import LATENCY, running_api, served, wait_until

# Jitter around the threshold (four changes: flapping from the fifth reading, with the
# incident opened at the second), then bouncing: 250 250 50 50 50 opens and resolves an
# incident each time under the seeded rule (2 breaches, 3 recoveries).
TRACE = [250.0, 250.0, 50.0, 250.0, 50.0] + [250.0, 250.0, 50.0, 50.0, 50.0] * 8


@pytest.mark.parametrize("flap_detection", [True, False], ids=["flap-on", "flap-off"])
async def test_an_oscillating_trace_is_one_incident_and_one_flapping_message(
    migrated_url: str, flap_detection: bool
) -> None:
    # Grouping off: this counts flap detection's messages alone, and a group's follow-up waits
    # for its window on the test's clock, which stands still while the messages go out.
    changes = {"flap_detection": flap_detection, "group_window": 0}
    async with serving() as receiver, running_api(migrated_url, settings_changes=changes) as api:
        await api.vigil.store.add_channel(
            {"name": "hook", "url": receiver.url("/hook")}, now=api.clock()
        )
        async with served(api.app) as (base, _), httpx.AsyncClient(base_url=base) as client:
            for value in TRACE:
                await api.cycle({LATENCY: value})
            history = await client.get("/api/alerts/incidents", headers=api.auth("viewer"))
            assert history.status_code == 200
            incidents = history.json()["items"]
            kinds = [e.kind.value for e in await api.vigil.store.events_after(0)]
            expected = 2 if flap_detection else 2 * 8  # opened + flapping; or opened + resolved
            await wait_until(lambda: api.vigil.notifier.status().sent == expected)
            titles = [hit.body["title"] for hit in receiver.on("/hook")]
            flapping_titles = [t for t in titles if t.endswith(": flapping")]

            if flap_detection:
                assert len(incidents) == 1
                [incident] = incidents
                assert incident["flapping"] is True and incident["status"] == "active"
                assert kinds.count("incident.flapping") == 1
                assert kinds.count("incident.resolved") == 0
                assert flapping_titles == ["[CRITICAL] Gateway Latency: flapping"]
                assert len(titles) == 2
                active = await client.get("/api/alerts/active", headers=api.auth("viewer"))
                assert [i["flapping"] for i in active.json()] == [True]
                # shown: the incident page and the Rules page
                await api.sign_in()
                page = await api.client.get(f"/incidents/{incident['id']}")
                assert 'class="badge flapping"' in page.text
                assert "Started flapping" in page.text
                rules = await api.client.get("/rules")
                assert 'class="badge flapping"' in rules.text
            else:
                assert len(incidents) == 8
                assert not any(i["flapping"] for i in incidents)
                assert "incident.flapping" not in kinds
                assert flapping_titles == []
                assert len(titles) == 16
