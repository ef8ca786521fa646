"""What the leader's dispatcher writes on its own schedule besides reminders: the due steps
of escalation policies, and the digests of digest channels.

Both are written through keys (a step notice's, a (channel, period) digest's), so the rounds
of one dispatcher, a restarted process and a new leader write each one once. The timing is
the core's (``vigil.core.escalation``, ``vigil.core.digest``); this module reads and writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from datetime import datetime

from vigil.core import Incident, ValidationError
from vigil.core.digest import period_end, period_start
from vigil.core.escalation import EscalationPolicy, Notice, due_notices, policy_for
from vigil.notify import Channel
from vigil.runtime.ports import DigestStore, EscalationStore
from vigil.store import StoredChannel


async def write_escalations(
    store: EscalationStore,
    *,
    policies: list[EscalationPolicy],
    incidents: Iterable[Incident],
    channels: Mapping[str, Channel | ValidationError],
    now: datetime,
) -> int:
    """Write the step notices due by ``now`` for the open, unacknowledged ``incidents`` under
    a policy, to enabled realtime channels (a digest channel hears of it in its digest; the
    first step was told with the opening, in the transaction that stored it). Returns how
    many were new."""
    notices: list[Notice] = []
    for incident in incidents:
        policy = policy_for(incident, policies)
        if policy is None:
            continue
        for notice in due_notices(
            policy,
            incident_id=incident.id,
            triggered_at=incident.triggered_at,
            status=incident.status,
            now=now,
        ):
            channel = channels.get(notice.channel)
            first = notice.step == 0 and notice.repeat == 0
            if not first and isinstance(channel, Channel) and channel.enabled and channel.realtime:
                notices.append(notice)
    return await store.enqueue_escalations(notices, now=now)


async def write_digests(
    store: DigestStore,
    *,
    channels: Iterable[StoredChannel],
    known: MutableMapping[str, datetime],
    now: datetime,
) -> int:
    """Write the digest of each enabled digest channel's last finished period, unless it is
    written. ``known`` holds, per channel, the last period this process knows is written (so
    it asks the database once a period). A period that ended before the channel was last
    changed (made a digest channel, say) is not sent. Returns how many were written."""
    written = 0
    for item in channels:
        channel = item.channel
        if channel.realtime or not channel.enabled:
            continue
        end = period_end(channel.schedule, now)
        if end <= item.updated_at or known.get(channel.name) == end:
            continue
        if not await store.digest_written(channel.name, end):
            start = period_start(channel.schedule, end)
            if await store.enqueue_digest(channel, start=start, end=end, now=now) is not None:
                written += 1
        known[channel.name] = end
    return written
