"""Vigil's rule actions on real SQLite and PostgreSQL: each change is stored with its event,
published at once, and evaluated from the next cycle."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vigil.core import EventKind, Kind, NameTakenError, Rule, SplitBy, ValidationError
from vigil.runtime import Vigil

from .support import Clock, Script, Started, collect, cycle, settings

QUEUE = Rule(name="queue-high", metric="queue_depth", unit="jobs", critical=500)


async def test_rules_are_added_changed_and_deleted_through_vigil(migrated_url: str) -> None:
    script, clock = Script(), Clock()
    vigil = Vigil(settings(migrated_url), sources=[script], process_metrics=False, clock=clock)
    async with Started(vigil):
        stream = vigil.subscribe()
        added = await vigil.add_rule(QUEUE, by="ana")
        [created] = await collect(stream, 1)
        assert (created.kind, created.rule, added.updated_by) == (
            EventKind.RULE_CREATED,
            "queue-high",
            "ana",
        )
        with pytest.raises(NameTakenError):
            await vigil.add_rule(QUEUE, by="ana")
        # evaluated from the next cycle: a custom metric now opens an incident
        await cycle(vigil, clock, {"queue_depth": 800}, script)
        [opened] = [
            e
            for e in await cycle(vigil, clock, {"queue_depth": 800}, script)
            if e.rule == "queue-high"
        ]
        assert opened.kind is EventKind.INCIDENT_OPENED
        assert "queue-high" in vigil.view.rules

        changed = await vigil.update_rule("queue-high", {"critical": 1000}, by="ben")
        assert changed.critical == 1000
        replaced = await vigil.replace_rule(
            "queue-high", dataclasses.replace(QUEUE, warning=900, critical=1000), by="ben"
        )
        assert (replaced.warning, replaced.updated_by) == (900, "ben")
        await vigil.delete_rule("queue-high", by="cy")
        kinds = [e.kind for e in await collect(stream, 5)][1:]
        assert kinds == [
            EventKind.RULE_CHANGED,
            EventKind.RULE_CHANGED,
            EventKind.INCIDENT_RESOLVED,
            EventKind.RULE_DELETED,
        ]
        assert "queue-high" not in vigil.view.rules and vigil.view.active() == []
        assert "queue-high" not in vigil.monitor.evaluator.rules


async def test_an_incident_of_a_series_the_changed_rule_no_longer_has_resolves(
    migrated_url: str,
) -> None:
    """Split per instance, an unsplit rule's combined series is gone: its open incident is
    resolved by the next cycle (stored, with its event and note), not left open for ever."""
    script, clock = Script(), Clock()
    vigil = Vigil(settings(migrated_url), sources=[script], process_metrics=False, clock=clock)
    async with Started(vigil):
        await vigil.add_rule(QUEUE, by="ana")
        await cycle(vigil, clock, {"queue_depth": 800}, script)
        [opened] = [
            e
            for e in await cycle(vigil, clock, {"queue_depth": 800}, script)
            if e.rule == "queue-high"
        ]
        assert opened.incident is not None
        await vigil.update_rule("queue-high", {"split_by": SplitBy.INSTANCE}, by="ben")
        [resolved] = [
            e
            for e in await cycle(vigil, clock, {"queue_depth": 800}, script)
            if e.rule == "queue-high"
        ]
        assert resolved.kind is EventKind.INCIDENT_RESOLVED
        assert resolved.data == {"note": "rule changed"}
        stored = await vigil.store.get_incident(opened.incident.id)
        assert (stored.is_open, stored.resolution, stored.resolved_by) == (False, "auto", None)
        assert vigil.view.active() == []
    again = Vigil(settings(migrated_url), sources=[script], process_metrics=False, clock=clock)
    async with Started(again):  # nothing of the old series comes back after a restart
        assert "" not in again.monitor.evaluator.series("queue-high")
        assert all(i.instance for i in await again.store.active_incidents())


async def test_apply_rules_and_the_rule_limit(migrated_url: str, tmp_path: Path) -> None:
    script, clock = Script(), Clock()
    limited = settings(migrated_url).model_copy(update={"max_rules": 11})
    vigil = Vigil(limited, sources=[script], process_metrics=False, clock=clock)
    async with Started(vigil):
        current = await vigil.store.list_rules()
        split = Rule(
            name="by-shard", metric="gateway_latency", critical=1, split_by=SplitBy.INSTANCE
        )
        plan = await vigil.apply_rules([*current, QUEUE], by="ci", dry_run=True)
        assert [r.name for r in plan.added] == ["queue-high"] and plan.events == []
        plan = await vigil.apply_rules([*current, QUEUE], by="ci")
        assert [e.kind for e in plan.events] == [EventKind.RULE_CREATED]
        assert "queue-high" in vigil.monitor.evaluator.rules
        with pytest.raises(ValidationError, match="at most 11"):
            await vigil.add_rule(split, by="ci")


async def test_the_rules_file_is_applied_at_start(migrated_url: str, tmp_path: Path) -> None:
    from vigil.rulesfile import dump  # type: ignore[import-not-found,unused-ignore]

    path = tmp_path / "rules.yaml"
    composite = Rule(name="slow", kind=Kind.COMPOSITE, condition="error_rate >= 5")
    path.write_text(dump([QUEUE, composite]), encoding="utf-8")
    script, clock = Script(), Clock()
    configured = settings(migrated_url).model_copy(update={"rules_file": path})
    vigil = Vigil(configured, sources=[script], process_metrics=False, clock=clock)
    async with Started(vigil):
        rules = {rule.name: rule for rule in await vigil.store.list_rules()}
        assert {"queue-high", "slow", "gateway_latency"} <= set(rules)  # nothing pruned
        assert rules["slow"].updated_by == "rules file"
        assert "slow" in vigil.monitor.evaluator.rules
