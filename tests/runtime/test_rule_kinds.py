"""The monitor with rules of every kind, per instance, on pushed and local readings."""

from __future__ import annotations

from vigil.core import EventKind, Kind, Rule, Sample, SplitBy

from .support import Runtime

LATENCY = "gateway_latency"
BY_SHARD = Rule(
    name="latency-by-shard",
    display_name="Gateway Latency",
    metric=LATENCY,
    unit="ms",
    warning=100,
    critical=200,
    split_by=SplitBy.INSTANCE,
)


async def _add(runtime: Runtime, rule: Rule) -> None:
    """As ``Vigil.add_rule`` does: stored, then told everyone."""
    _, event = await runtime.store.add_rule(rule, by="ana", now=runtime.clock())
    runtime.publish(event)


async def _push(runtime: Runtime, metric: str, **values: float) -> None:
    """Samples from other instances (pushers), taken now."""
    await runtime.store.add_samples(
        [Sample(instance, metric, runtime.clock(), value) for instance, value in values.items()]
    )


async def test_a_split_rule_opens_one_incident_for_the_one_shard_that_breaches() -> None:
    async with Runtime() as runtime:
        await _add(runtime, BY_SHARD)
        opened = []
        for _ in range(3):
            runtime.clock.advance(runtime.interval)
            await _push(runtime, LATENCY, **{"shard-0": 40.0, "shard-1": 231.4})
            opened += [
                e.incident
                for e in await runtime.monitor.cycle()
                if e.kind is EventKind.INCIDENT_OPENED and e.incident is not None
            ]
        split = [i for i in opened if i.rule == BY_SHARD.name]
        assert [(i.instance, i.severity.value) for i in split] == [("shard-1", "critical")]
        assert split[0].message == (
            "Gateway Latency exceeded critical threshold on shard-1: 231.40 ms >= 200.00 ms"
        )
        # the unsplit default rule on the same metric combines the shards (max): one incident
        assert [i.rule for i in opened if i.rule == LATENCY] == [LATENCY]
        assert runtime.monitor.evaluator.series(BY_SHARD.name) == ["shard-1"]


async def test_an_absent_rule_opens_when_the_pusher_stops_and_resolves_when_it_returns() -> None:
    beat = Rule(name="cron-beat", kind=Kind.ABSENT, metric="cron.beat", absent_for=60)
    async with Runtime() as runtime:
        await _add(runtime, beat)
        kinds = []
        for pushing in [True, True, False, False, False, False, True, True, True]:
            runtime.clock.advance(runtime.interval)
            if pushing:
                await _push(runtime, "cron.beat", cron=1.0)
            events = await runtime.monitor.cycle()
            kinds.append([e.kind.value for e in events if e.rule == "cron-beat"])
        # last sample at cycle 2; absent for 60 s at cycle 4, second breach at cycle 5
        assert kinds[:5] == [[], [], [], [], ["incident.opened"]]
        assert kinds[5:] == [[], [], [], ["incident.resolved"]]
        [opened] = await runtime.logged(EventKind.INCIDENT_OPENED)
        assert opened.incident is not None
        assert opened.incident.message == "Cron Beat has had no sample for 90 s"


async def test_a_composite_rule_reads_several_local_metrics() -> None:
    slow = Rule(
        name="slow_and_failing",
        kind=Kind.COMPOSITE,
        condition="command_p95_latency >= 500 and error_rate >= 5",
    )
    async with Runtime() as runtime:
        await _add(runtime, slow)
        for _ in range(2):
            events = await runtime.cycle({"command_p95_latency": 612.0, "error_rate": 7.5})
        [opened] = [e for e in events if e.rule == slow.name]
        assert opened.incident is not None
        assert opened.incident.values == {"command_p95_latency": 612.0, "error_rate": 7.5}


async def test_current_values_carry_their_sample_time_and_go_stale() -> None:
    async with Runtime() as runtime:
        await _push(runtime, "queue_depth", worker=12.0)
        sampled = runtime.clock()
        await runtime.cycle({LATENCY: 150.0})
        current = runtime.view.current
        assert (current["queue_depth"].value, current["queue_depth"].sampled_at) == (12.0, sampled)
        assert current[LATENCY].sampled_at == runtime.clock() and not current[LATENCY].stale
        await runtime.cycle({LATENCY: 150.0})
        await runtime.cycle({LATENCY: 150.0})  # 90 s after the sample: older than 2 intervals
        stale = runtime.view.current["queue_depth"]
        assert (stale.stale, stale.level, stale.value, stale.sampled_at) == (
            True,
            None,
            12.0,
            sampled,
        )
        assert runtime.view.current[LATENCY].level == "warning"


async def test_missing_data_under_alerting_opens_an_incident_that_says_so() -> None:
    async with Runtime() as runtime:
        await runtime.store.update_rule(
            LATENCY, {"no_data": "alerting"}, by="ana", now=runtime.clock()
        )
        kinds = await runtime.kinds("error_rate", 0, 0)
        assert kinds == [EventKind.INCIDENT_OPENED]
        [incident] = runtime.view.active()
        assert (incident.rule, incident.no_data) == (LATENCY, True)


async def test_a_split_rule_beyond_its_series_limit_reports_the_overflow() -> None:
    async with Runtime(max_series=2) as runtime:
        await _add(runtime, BY_SHARD)
        runtime.clock.advance(runtime.interval)
        await _push(runtime, LATENCY, a=250.0, b=250.0, c=250.0, d=250.0)
        await runtime.monitor.cycle()
        assert runtime.monitor.status().series_overflow == {BY_SHARD.name: 2}
        assert len(runtime.monitor.evaluator.series(BY_SHARD.name)) == 2


async def test_a_deleted_rule_stops_being_evaluated_and_its_incident_is_resolved() -> None:
    async with Runtime() as runtime:
        await runtime.kinds(LATENCY, 150, 150)
        [incident] = runtime.view.active()
        events = await runtime.store.delete_rule(LATENCY, by="ana", now=runtime.clock())
        runtime.publish(*events)
        assert runtime.view.active() == [] and LATENCY not in runtime.view.rules
        assert LATENCY not in runtime.monitor.evaluator.rules
        assert await runtime.kinds(LATENCY, 250, 250, 250) == []
        resolved = await runtime.store.get_incident(incident.id)
        assert (resolved.notes, resolved.resolved_by) == ("rule deleted", "ana")


async def test_a_local_metric_no_longer_read_keeps_its_level_until_stale() -> None:
    async with Runtime() as runtime:
        await runtime.cycle({"memory_usage": 300.0})
        sampled = runtime.clock()
        await runtime.cycle({LATENCY: 50.0})
        await runtime.cycle({LATENCY: 50.0})  # 60 s old: two intervals, still current
        memory = runtime.view.current["memory_usage"]
        assert (memory.level, memory.stale, memory.sampled_at) == ("normal", False, sampled)
        await runtime.cycle({LATENCY: 50.0})  # 90 s old: stale, no level
        memory = runtime.view.current["memory_usage"]
        assert (memory.level, memory.stale, memory.value) == (None, True, 300.0)
