"""``/api/alerts/rules``: the rules, by name, of every kind: list, create, read, replace,
change some fields, delete.

Reads come from the live view (the monitor's own rules); every change goes through ``Vigil``,
which validates it in the core, stores it with its ``rule.*`` event in one transaction and
publishes the event to the live stream. The older ``/api/alerts/config/{metric}`` routes
(``vigil.web.routes.alerts``) reach the rule named after a metric.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.convertors import Convertor, register_url_convertor

from vigil.backtest import BandStep, Outcome
from vigil.core import NotFoundError, Rule, ValidationError
from vigil.core.suggest import Suggestion, hour_name
from vigil.preview import Replayed, parse_since, preview, suggest
from vigil.web.auth import Admin, Viewer, web_state
from vigil.web.errors import responses
from vigil.web.schemas import (
    BandStepOut,
    EventOut,
    PreviewIncidentOut,
    PreviewRunOut,
    RuleIn,
    RuleOut,
    RulePatch,
    RulePreviewIn,
    RulePreviewOut,
    RuleReplace,
    RuleStatsOut,
    RuleSuggestionOut,
)

router = APIRouter(prefix="/api/alerts/rules", tags=["rules"])
PREVIEW = "preview"  # the preview route's segment: not a rule the API can name
STATS = "stats"  # the noisiest rules' segment: not a rule the API can name either
RESERVED = (PREVIEW, STATS)


class RuleNameConvertor(Convertor[str]):
    """A rule's name in a path, never ``preview`` or ``stats``: ``/api/alerts/rules/preview``
    is the preview route alone (so a GET there is a 405 naming POST, not a rule's 404), and
    ``/api/alerts/rules/stats`` the noisiest rules."""

    regex = f"(?!(?:{'|'.join(RESERVED)})(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("rule_name", RuleNameConvertor())

READ = responses(401, 403, 503)
DEFAULT_STATS_DAYS = 30  # 7, 30 or 90: the store names `days` when it is none of them
MAX_NOISIEST = 100
ONE = responses(401, 403, 404, 503)
CHANGE = responses(401, 403, 404, 422, 503)


def rule_named(request: Request, name: str) -> Rule:
    rule = web_state(request).vigil.view.rules.get(name)
    if rule is None:
        raise NotFoundError("rule", name)
    return rule


@router.get("", responses=READ, summary="Every rule, by name")
async def list_rules(request: Request, _: Viewer) -> list[RuleOut]:
    rules = web_state(request).vigil.view.rules
    return [RuleOut.of(rules[name]) for name in sorted(rules)]


@router.post(
    "",
    status_code=201,
    responses=responses(401, 403, 409, 422, 503),
    summary="Create a rule",
    description="`name` is required; a field left out takes its default (`kind` threshold, "
    "`severity` critical, `breaches_required` 2, `recoveries_required` 3...). A field its kind "
    "does not use, or a condition that does not parse, is a 422 naming the field (and the "
    "condition's `position`); a name already taken is a 409. Recorded as a `rule.created` "
    "event.",
)
async def create_rule(
    request: Request, body: RuleIn, principal: Admin, response: Response
) -> RuleOut:
    vigil = web_state(request).vigil
    rule = body.rule()
    if rule.name in RESERVED:
        raise ValidationError("name", f"{rule.name!r} is reserved (a route's path)")
    rule = await vigil.add_rule(rule, by=principal.name)
    response.headers["Location"] = str(request.url_for("get_rule_by_name", name=rule.name))
    return RuleOut.of(rule)


@router.post(
    f"/{PREVIEW}",
    responses=responses(401, 403, 422, 503),
    summary="What a rule would have done over the stored history",
    description="The body is a rule as `POST /api/alerts/rules` takes it, plus `since` (`24h` "
    "by default; `30m`, `7d`, `2w`... or an ISO-8601 start). Nothing is saved: the rule is "
    "replayed through the monitor's evaluator over the samples stored since then, and so is "
    "the saved rule of that name (`saved`, null when there is none). Each lists the incidents "
    "it would have opened, escalated and resolved, the notifications it would have sent (one "
    "per event, and with the server's incident grouping window, as `vigil backtest` counts "
    "them) and its time in incident. A bad rule is a 422 naming the field, as when creating one.",
)
async def preview_rule(request: Request, body: RulePreviewIn, _: Viewer) -> RulePreviewOut:
    vigil = web_state(request).vigil
    rule = body.rule()
    end = vigil.clock()
    start = parse_since(body.since, end)
    saved = vigil.view.rules.get(rule.name)
    result = await preview(
        vigil.store,
        {rule.name: rule},
        saved={rule.name: saved} if saved is not None else None,
        start=start,
        end=end,
        interval=vigil.settings.interval,
        own_instance=vigil.settings.instance,
        flap=vigil.settings.flap,
        group_window=vigil.settings.effective_group_window,
    )
    return RulePreviewOut(
        start=result.start,
        end=result.end,
        samples=result.samples,
        proposed=_run_out(result.proposed),
        saved=_run_out(result.saved) if result.saved is not None else None,
    )


def _run_out(run: Replayed) -> PreviewRunOut:
    outcomes = run.report.outcomes
    bands = list(run.bands.values())  # a preview replays one rule
    return PreviewRunOut(
        band=band_out(bands[0]) if len(bands) == 1 else None,
        incidents=[_incident_out(o) for o in outcomes],
        opened=len(outcomes),
        escalated=sum(o.escalated_at is not None for o in outcomes),
        resolved=sum(o.resolved_at is not None for o in outcomes),
        notifications=run.notifications,
        grouped_notifications=run.grouped_notifications,
        group_window=run.group_window,
        groups=run.groups,
        seconds_in_incident=sum(o.duration_s for o in outcomes),
        cycles=run.report.cycles,
    )


def band_out(steps: list[BandStep]) -> list[BandStepOut]:
    return [
        BandStepOut(time=at, low=None, baseline=None, high=None)
        if edges is None
        else BandStepOut(time=at, low=edges[0], baseline=edges[1], high=edges[2])
        for at, edges in steps
    ]


def _incident_out(o: Outcome) -> PreviewIncidentOut:
    def moment(label: str | None) -> datetime | None:
        return datetime.fromisoformat(label) if label is not None else None

    return PreviewIncidentOut(
        rule=o.rule,
        metric=o.metric,
        instance=o.instance,
        severity=o.severity,
        opened_at=datetime.fromisoformat(o.opened_at),
        escalated_at=moment(o.escalated_at),
        resolved_at=moment(o.resolved_at),
        threshold=o.threshold,
        value=o.value,
        peak_value=o.peak_value,
        duration_s=o.duration_s,
    )


@router.get(
    "/{name:rule_name}/suggestion",
    responses=CHANGE,
    summary="Thresholds suggested from the metric's history",
    description="For a threshold rule: warning and critical levels learned from its metric's "
    "samples stored since `since` (`30d` by default) with robust statistics (median and "
    "median absolute deviation, the far percentiles without past outliers, per hour of the "
    "week where the history has a weekly shape), explained in words, with a preview of the "
    "rule with them beside the rule as saved. Nothing is saved. With too little history (or "
    "a metric that never changed) `warning` and `critical` are null and `reason` says why. "
    "A rule of another kind is a 422 naming `kind`.",
)
async def suggest_thresholds(
    request: Request, name: str, _: Viewer, since: str = "30d"
) -> RuleSuggestionOut:
    vigil = web_state(request).vigil
    rule = rule_named(request, name)
    end = vigil.clock()
    result = await suggest(
        vigil.store,
        rule,
        start=parse_since(since, end),
        end=end,
        interval=vigil.settings.interval,
        own_instance=vigil.settings.instance,
        flap=vigil.settings.flap,
    )
    found = result.suggestion
    preview_of = result.preview
    learned = found if isinstance(found, Suggestion) else None
    return RuleSuggestionOut(
        start=result.start,
        end=result.end,
        readings=found.readings,
        warning=learned.warning if learned else None,
        critical=learned.critical if learned else None,
        direction=rule.direction,
        median=learned.median if learned else None,
        spread=learned.spread if learned else None,
        weekly_shape=bool(learned and learned.weekly),
        busiest_hour=(
            hour_name(learned.busiest_hour)
            if learned and learned.busiest_hour is not None
            else None
        ),
        reason=None if isinstance(found, Suggestion) else found.reason,
        explanation=result.explanation(),
        proposed=_run_out(preview_of.proposed) if preview_of else None,
        saved=_run_out(preview_of.saved) if preview_of and preview_of.saved else None,
    )


@router.get(
    f"/{STATS}",
    responses=responses(401, 403, 422, 503),
    summary="The noisiest rules",
    description="The rules with anything to show over the last `days` UTC days (7, 30 or "
    "90; today included): most incidents first, then most notifications sent, most time in "
    "incident, most flaps. At most `limit` (1..100, default 10). The figures are those of "
    "`GET /api/alerts/rules/{name}/stats`.",
)
async def noisiest_rules(
    request: Request,
    _: Viewer,
    days: int = DEFAULT_STATS_DAYS,
    limit: Annotated[int, Query(ge=1, le=MAX_NOISIEST)] = 10,
) -> list[RuleStatsOut]:
    vigil = web_state(request).vigil
    found = await vigil.store.noisiest_rules(
        days=days, now=vigil.clock(), limit=limit, open_incidents=vigil.view.active()
    )
    rules = vigil.view.rules
    return [
        RuleStatsOut.of_rule(
            stats, display_name=rules[stats.rule].display_name if stats.rule in rules else ""
        )
        for stats in found
    ]


@router.get(
    f"/{{name:rule_name}}/{STATS}",
    responses=responses(401, 403, 404, 422, 503),
    summary="A rule's noise",
    description="Over the last `days` UTC days (7, 30 or 90, default 30; today included): "
    "incidents opened and per day, time in incident (every series; the open incidents up to "
    "now), mean time to acknowledge and to resolve, the share resolved on their own, flaps and "
    "notifications sent. Incidents, acknowledgements, resolutions, flaps and notifications "
    "count on the day they happened. Read from per-day counters kept as incidents change, "
    "never by scanning the incident history. Another `days` is a 422 naming `days`.",
)
async def rule_stats(
    request: Request, name: str, _: Viewer, days: int = DEFAULT_STATS_DAYS
) -> RuleStatsOut:
    vigil = web_state(request).vigil
    rule = rule_named(request, name)
    # The open incidents from the live view: the counters are the one query.
    stats = await vigil.store.rule_stats(
        rule.name, days=days, now=vigil.clock(), open_incidents=vigil.view.active()
    )
    return RuleStatsOut.of_rule(stats, display_name=rule.display_name)


@router.get(
    "/{name:rule_name}/events",
    responses=responses(401, 403, 404, 422, 503),
    summary="A rule's history",
    description="Newest first: the rule's changes (`rule.created`, `rule.changed` with each "
    "changed field's `[old, new]` in `data.changes`, who made them and when) and its "
    "incidents' events. `limit`: 1 to 1,000 (default 100).",
)
async def rule_events(
    request: Request,
    name: str,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    rule = rule_named(request, name)
    events = await web_state(request).vigil.store.rule_events(rule.name, limit=limit)
    return [EventOut.of(event) for event in events]


@router.get("/{name:rule_name}", responses=ONE, summary="One rule", name="get_rule_by_name")
async def get_rule(request: Request, name: str, _: Viewer) -> RuleOut:
    return RuleOut.of(rule_named(request, name))


@router.put(
    "/{name:rule_name}",
    responses=CHANGE,
    summary="Replace a rule",
    description="The body is the whole rule: a field left out takes its default, not its "
    "current value (use PATCH to change some fields). A `name` in the body must be the "
    "path's. Recorded as a `rule.changed` event listing what changed.",
)
async def replace_rule(request: Request, name: str, body: RuleReplace, principal: Admin) -> RuleOut:
    vigil = web_state(request).vigil
    rule_named(request, name)  # 404 before the body's own problems
    rule = await vigil.replace_rule(name, body.rule(name=name), by=principal.name)
    return RuleOut.of(rule)


@router.patch(
    "/{name:rule_name}",
    responses=CHANGE,
    summary="Change some fields of a rule",
    description="Fields left out keep their value; an explicit `null` clears a field "
    "(`warning`, `critical`, `recovery`, `stale_after`...). The result is validated whole, "
    "as its kind requires. Recorded as a `rule.changed` event listing what changed.",
)
async def update_rule(request: Request, name: str, body: RulePatch, principal: Admin) -> RuleOut:
    vigil = web_state(request).vigil
    rule_named(request, name)
    rule = await vigil.update_rule(name, body.changes(), by=principal.name)
    return RuleOut.of(rule)


@router.delete(
    "/{name:rule_name}",
    status_code=204,
    responses=ONE,
    summary="Delete a rule",
    description='Its open incidents are resolved (manual, by the caller, note "rule '
    'deleted") in the same transaction; its history stays readable. Recorded as a '
    "`rule.deleted` event.",
)
async def delete_rule(request: Request, name: str, principal: Admin) -> Response:
    vigil = web_state(request).vigil
    rule_named(request, name)
    await vigil.delete_rule(name, by=principal.name)
    return Response(status_code=204)
