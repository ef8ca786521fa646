"""``write_escalations``: which due steps of which incidents are written, to which channels."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from vigil.core import Incident, Severity, Status, ValidationError
from vigil.core.digest import Delivery
from vigil.core.escalation import EscalationPolicy, Notice, Step
from vigil.notify import Channel
from vigil.runtime.followups import write_escalations

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
POLICY = EscalationPolicy(
    name="latency",
    steps=(Step(channels=("ops",), wait_minutes=10), Step(channels=("lead",), wait_minutes=10)),
    rules=frozenset({"gateway_latency"}),
)


class Written:
    """The escalation store's write: what it was given."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    async def list_policies(self) -> list[EscalationPolicy]:
        return [POLICY]

    async def enqueue_escalations(self, notices: Sequence[Notice], *, now: datetime) -> int:
        self.notices += notices
        return len(notices)


def incident(rule: str, *, status: Status = Status.ACTIVE) -> Incident:
    return Incident(
        id=uuid.uuid4(),
        metric=rule,
        severity=Severity.CRITICAL,
        status=status,
        triggered_at=T0,
        threshold=100.0,
        value=150.0,
        peak_value=150.0,
        last_value=150.0,
        message=f"{rule} exceeded critical threshold",
    )


LEAD = Channel(name="lead", url="json://127.0.0.1:9/hook")


@pytest.mark.parametrize(
    ("rules", "status", "minutes", "channel", "written"),
    [
        # The second step is due after the first one's wait; the first was told with the
        # opening, in the transaction that stored it, so it is never written here.
        (["gateway_latency"], Status.ACTIVE, 10, LEAD, [("lead", 1)]),
        (["gateway_latency"], Status.ACTIVE, 9, LEAD, []),
        # An incident no policy names (by rule or severity) is left to its channels.
        (["error_rate"], Status.ACTIVE, 10, LEAD, []),
        (["error_rate", "gateway_latency"], Status.ACTIVE, 10, LEAD, [("lead", 1)]),
        (["gateway_latency"], Status.ACKNOWLEDGED, 10, LEAD, []),
        # Only an enabled realtime channel hears of a step; a digest channel reads it in its
        # digest, and a channel that is missing or no longer valid hears nothing.
        (["gateway_latency"], Status.ACTIVE, 10, dataclasses.replace(LEAD, enabled=False), []),
        (
            ["gateway_latency"],
            Status.ACTIVE,
            10,
            dataclasses.replace(LEAD, delivery=Delivery.DAILY),
            [],
        ),
        (["gateway_latency"], Status.ACTIVE, 10, ValidationError("url", "broken"), []),
        (["gateway_latency"], Status.ACTIVE, 10, None, []),
    ],
)
async def test_the_due_steps_written(
    rules: list[str],
    status: Status,
    minutes: int,
    channel: Channel | ValidationError | None,
    written: list[tuple[str, int]],
) -> None:
    store = Written()
    incidents = [incident(rule, status=status) for rule in rules]
    count = await write_escalations(
        store,
        policies=[POLICY],
        incidents=incidents,
        channels={} if channel is None else {"lead": channel},
        now=T0 + timedelta(minutes=minutes),
    )
    assert [(n.channel, n.step) for n in store.notices] == written
    assert count == len(written)
    under_policy = [i.id for i in incidents if i.rule == "gateway_latency"]
    assert all(n.incident_id in under_policy and n.policy == "latency" for n in store.notices)
