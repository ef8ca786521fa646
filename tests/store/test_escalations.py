"""Escalation policies in the store: kept, validated against the channels and each other, and
their share of the outbox (the opening to the first step only; later steps once each)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.escalation import Notice, due_notices
from vigil.core.incidents import Severity, Status
from vigil.store import Store

from .conftest import T0, add_channel, make_incident, open_incident

POLICY = {
    "name": "night",
    "description": "ops first, then the pager",
    "steps": [
        {"channels": ["ops"], "wait_minutes": 10},
        {"channels": ["pager"], "wait_minutes": 30},
    ],
    "repeat_minutes": 15,
    "severities": ["critical"],
}


async def channels(store: Store) -> None:
    for name in ("ops", "pager", "bystander"):
        await add_channel(store, name)


async def test_policies_are_kept_changed_and_removed(store: Store) -> None:
    await channels(store)
    added = await store.add_policy(POLICY, now=T0, by="ana")
    assert added.to_dict() == {**POLICY, "rules": []}
    assert [p.name for p in await store.list_policies()] == ["night"]
    changed = await store.update_policy(
        "night", {"repeat_minutes": None, "rules": ["error_rate"]}, now=T0, by="ana"
    )
    assert changed.repeat_minutes is None and changed.rules == {"error_rate"}
    assert await store.get_policy("night") == changed
    await store.delete_policy("night", now=T0, by="bo")
    assert await store.list_policies() == []
    with pytest.raises(NotFoundError):
        await store.delete_policy("night", now=T0)
    # Every change is in the event log: who, and the policy as it then was.
    logged = [e for e in await store.events_after(0) if e.kind.value.startswith("escalation.")]
    assert [(e.kind.value, e.by) for e in logged] == [
        ("escalation.added", "ana"),
        ("escalation.changed", "ana"),
        ("escalation.removed", "bo"),
    ]
    assert logged[0].data["policy"] == added.to_dict()
    assert logged[1].data["changes"] == ["repeat_minutes", "rules"]
    assert logged[2].data["policy"] == changed.to_dict()
    with pytest.raises(NotFoundError):
        await store.update_policy("night", {}, now=T0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "n2", "steps": [{"channels": ["nobody"]}]}, "steps[0].channels[0]"),
        ({"name": "night"}, "name"),  # taken
        ({"name": "other"}, "severities"),  # critical already defaults to night
        ({"name": "other", "severities": [], "rules": ["error_rate"]}, "rules"),
    ],
)
async def test_bad_policies_are_refused_naming_the_field(
    store: Store, change: dict[str, object], field: str
) -> None:
    await channels(store)
    await store.add_policy({**POLICY, "rules": ["error_rate"]}, now=T0)
    with pytest.raises(ValidationError) as raised:
        await store.add_policy({**POLICY, **change}, now=T0)
    assert raised.value.field == field
    assert [p.name for p in await store.list_policies()] == ["night"]


async def test_an_opening_under_a_policy_goes_to_its_first_step_only(store: Store) -> None:
    await channels(store)
    await store.add_policy(POLICY, now=T0)
    warning = await open_incident(store)  # no policy for warnings: every channel, as before
    critical = await open_incident(
        store, make_incident(metric="error_rate", severity=Severity.CRITICAL)
    )
    rows = await store.list_notifications()
    assert sorted(r.channel for r in rows if r.incident_id == warning.id) == [
        "bystander",
        "ops",
        "pager",
    ]
    assert sorted(r.channel for r in rows if r.incident_id == critical.id) == ["bystander", "ops"]


async def test_later_steps_are_written_once_each(store: Store) -> None:
    await channels(store)
    policy = await store.add_policy(POLICY, now=T0)
    incident = await open_incident(
        store, make_incident(metric="error_rate", severity=Severity.CRITICAL)
    )

    def notices(minutes: int) -> list[Notice]:
        return [
            n
            for n in due_notices(
                policy,
                incident_id=incident.id,
                triggered_at=incident.triggered_at,
                status=Status.ACTIVE,
                now=T0 + timedelta(minutes=minutes),
            )
            if (n.step, n.repeat) != (0, 0)
        ]

    assert await store.enqueue_escalations(notices(5), now=T0 + timedelta(minutes=5)) == 0
    assert await store.enqueue_escalations(notices(10), now=T0 + timedelta(minutes=10)) == 1
    assert await store.enqueue_escalations(notices(11), now=T0 + timedelta(minutes=11)) == 0
    assert await store.enqueue_escalations(notices(40), now=T0 + timedelta(minutes=40)) == 1
    assert await store.enqueue_escalations(notices(41), now=T0 + timedelta(minutes=41)) == 0
    pager = [r for r in await store.list_notifications() if r.channel == "pager"]
    assert [r.repeat for r in pager] == [2, 1]  # newest first: the repeat, then step 2
    assert len({r.idempotency_key for r in pager}) == 2

    # Acknowledged by ops after step 2 reached pager: both hear of it.
    _, stored = await store.acknowledge_incident(
        incident.id, by="ana", now=T0 + timedelta(minutes=42)
    )
    told = sorted(r.channel for r in await store.list_notifications() if r.event_id == stored.id)
    assert told == ["bystander", "ops", "pager"]


async def test_an_acknowledgement_before_a_step_is_reached_skips_its_channels(
    store: Store,
) -> None:
    await channels(store)
    await store.add_policy(POLICY, now=T0)
    incident = await open_incident(
        store, make_incident(metric="error_rate", severity=Severity.CRITICAL)
    )
    _, stored = await store.acknowledge_incident(
        incident.id, by="ana", now=T0 + timedelta(minutes=3)
    )
    told = sorted(r.channel for r in await store.list_notifications() if r.event_id == stored.id)
    assert told == ["bystander", "ops"]
