"""The Rules page (``/rules``): every rule of every kind with what it watches, its current
value(s) and level per series, and where it stands (streaks, open incident).

Admins also add a rule, edit every field of one (``/rules/{name}``), switch it on or off and
delete it (after a confirmation page), with plain forms that go through the API's own route
functions and redirect back; a refused form is shown again with the API's message beside the
field it names (a condition's message says the position). No script is needed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from vigil.core import Aggregate, Direction, Incident, Level, Rule, ValidationError
from vigil.core.rules import Kind, NoData, SplitBy
from vigil.core.samples import combine
from vigil.rulesfile import parse_duration
from vigil.web.auth import Principal, web_state
from vigil.web.pages.forms import AdminForm, back, checked, validated
from vigil.web.pages.incident import band_points
from vigil.web.pages.render import base_context, render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.sections import Context, Loader, Reads, load, section
from vigil.web.routes import metrics as metrics_api
from vigil.web.routes import rules as rules_api
from vigil.web.schemas import (
    MetricHistoryOut,
    RuleIn,
    RuleOut,
    RulePatch,
    RulePreviewIn,
    RulePreviewOut,
    RuleReplace,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

NOTICES = {
    "rule-added": "Rule added.",
    "rule-saved": "Rule saved.",
    "rule-enabled": "Rule enabled.",
    "rule-disabled": "Rule disabled: it keeps its history and opens nothing.",
    "rule-deleted": "Rule deleted; its open incidents were resolved.",
}

# What each kind uses besides the fields every rule has (vigil.core.rules): the form sends
# every field, and only the chosen kind's reach the API, so a value left in a field of
# another kind is not an error.
COMMON = ("display_name", "description", "split_by", "breaches_required", "recoveries_required")
KIND_FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.THRESHOLD: (
        "metric",
        "unit",
        "warning",
        "critical",
        "direction",
        "recovery",
        "aggregate",
        "no_data",
        "stale_after",
    ),
    Kind.ABSENT: ("metric", "unit", "absent_for", "severity"),
    Kind.COMPOSITE: ("condition", "severity", "aggregate", "no_data", "stale_after"),
    Kind.ANOMALY: (
        "metric",
        "unit",
        "sensitivity",
        "min_history",
        "severity",
        "aggregate",
        "no_data",
        "stale_after",
    ),
    Kind.FORECAST: (
        "metric",
        "unit",
        "warning",
        "critical",
        "direction",
        "recovery",
        "horizon",
        "lookback",
        "min_history",
        "aggregate",
        "no_data",
        "stale_after",
    ),
}
NUMBERS = frozenset({"warning", "critical", "recovery", "sensitivity"})
COUNTS = frozenset({"breaches_required", "recoveries_required"})
DURATIONS = frozenset({"absent_for", "stale_after", "horizon", "lookback", "min_history"})
OPTIONAL_TEXT = frozenset({"display_name", "description", "unit"})  # empty is meaningful

CHOICES = {
    "kinds_choices": [
        (Kind.THRESHOLD.value, "threshold: a metric past a warning or critical value"),
        (Kind.ABSENT.value, "absent: a metric with no sample for a while"),
        (Kind.COMPOSITE.value, "composite: a condition over several metrics"),
        (Kind.ANOMALY.value, "anomaly: a metric outside its usual range for the hour"),
        (Kind.FORECAST.value, "forecast: a metric's trend crossing a threshold soon"),
    ],
    "directions": [
        (Direction.ABOVE.value, "above (higher is worse)"),
        (Direction.BELOW.value, "below (lower is worse)"),
    ],
    "severities": [("critical", "critical"), ("warning", "warning")],
    "splits": [
        (SplitBy.NONE.value, "one series: instances combined"),
        (SplitBy.INSTANCE.value, "one series per instance"),
    ],
    "aggregates": [(a.value, a.value) for a in Aggregate],
    "no_data_choices": [
        (NoData.KEEP.value, "keep: changes nothing"),
        (NoData.OK.value, "ok: counts as normal"),
        (NoData.ALERTING.value, "alerting: counts as a breach"),
    ],
}


def form_values(rule: Rule | RuleOut | None) -> defaultdict[str, str]:
    """A rule as the form's text fields; a new rule's defaults when ``rule`` is None."""
    values: defaultdict[str, str] = defaultdict(str)
    values.update(
        kind=Kind.THRESHOLD.value,
        direction=Direction.ABOVE.value,
        severity="critical",
        split_by=SplitBy.NONE.value,
        aggregate=Aggregate.MAX.value,
        no_data=NoData.KEEP.value,
        breaches_required="2",
        recoveries_required="3",
        enabled="on",
    )
    if rule is None:
        return values
    data = rule.to_dict() if isinstance(rule, Rule) else rule.model_dump(mode="json")
    for key, value in data.items():
        if value is None:
            values[key] = "" if key != "severity" else "critical"
        elif isinstance(value, bool):
            values[key] = "on" if value else ""
        elif isinstance(value, float) and value.is_integer():
            values[key] = str(int(value))
        else:
            values[key] = str(value)
    return values


def rule_fields(form: dict[str, str], *, adding: bool) -> dict[str, Any]:
    """What a rule form says, in the API's terms: the common fields and the chosen kind's,
    each as its type (an empty number or duration is null: cleared, or the default)."""
    text = form.get("kind", "").strip()
    try:
        kind = Kind(text)
    except ValueError:
        raise ValidationError(
            "kind", "choose threshold, absent, composite, anomaly or forecast"
        ) from None
    fields: dict[str, Any] = {"kind": kind.value, "enabled": checked(form, "enabled")}
    if adding:
        fields["name"] = form.get("name", "").strip()
    for name in (*COMMON, *KIND_FIELDS[kind]):
        raw = form.get(name, "").strip()
        if name in NUMBERS:
            fields[name] = _number(name, raw)
        elif name in COUNTS:
            fields[name] = _count(name, raw)
        elif name in DURATIONS:
            fields[name] = _seconds(name, raw)
        elif raw or name in OPTIONAL_TEXT:
            fields[name] = raw
        elif name in ("metric", "condition"):
            fields[name] = None  # required by its kind: the rule's check says so
    if not fields.get("display_name"):
        fields.pop("display_name", None)  # derived from the name
    return fields


def _number(name: str, raw: str) -> float | None:
    if not raw:
        return None
    try:
        return float(raw.replace(",", "."))
    except ValueError:
        raise ValidationError(name, f"{raw[:40]!r} is not a number") from None


def _count(name: str, raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4:
        raise ValidationError(name, f"{raw[:20]!r} is not a whole number from 1 to 100")
    return int(raw)


def _seconds(name: str, raw: str) -> float | None:
    if not raw:
        return None
    try:
        value = parse_duration(raw)
    except ValueError as exc:
        raise ValidationError(name, str(exc)) from None
    assert isinstance(value, int | float)
    return float(value)


# -- reads ------------------------------------------------------------------------------------


STALE_INTERVALS = 2  # a rule without stale_after: a value older than two intervals is stale


@dataclass(frozen=True, slots=True)
class SeriesNow:
    """One series' current reading as the page shows it (for a composite rule, one term;
    for an absent rule, the age of the newest sample)."""

    instance: str | None
    label: str | None  # a composite's term metric
    value: float | None
    level: Level | None
    stale: bool = False
    age: float | None = None  # seconds since the sample


@dataclass(frozen=True, slots=True)
class SeriesState:
    """Where one series of a rule stands."""

    instance: str | None
    breach_streak: int
    normal_streak: int
    incident: Incident | None
    flapping: bool = False  # vigil.core.flapping: its incident held open


Readings = Mapping[str, Mapping[str, tuple[float, datetime]]]


def series_now(rule: Rule, readings: Readings, *, now: datetime, limit: float) -> list[SeriesNow]:
    """What a rule reads now, per series, from the last cycle's per-instance readings: fresh
    values with the level this rule gives them; a value older than ``limit`` seconds stale."""
    if rule.kind is Kind.ABSENT:
        assert rule.metric is not None
        by_instance = readings.get(rule.metric) or {}
        if rule.split_by is SplitBy.NONE and by_instance:
            newest = max(at for _, at in by_instance.values())
            by_instance = {"": (0.0, newest)}
        return [
            SeriesNow(instance or None, None, None, None, age=(now - at).total_seconds())
            for instance, (_, at) in sorted(by_instance.items())
        ]
    metrics = rule.metrics
    if rule.split_by is SplitBy.INSTANCE:
        instances = sorted({i for m in metrics for i in readings.get(m) or {}})
        groups = [
            (i, {m: _one((readings.get(m) or {}).get(i), now, limit) for m in metrics})
            for i in instances
        ]
    else:
        groups = [("", {m: _combined(readings.get(m) or {}, rule, now, limit) for m in metrics})]
    shown: list[SeriesNow] = []
    for instance, values in groups:
        for metric, (value, stale) in values.items():
            if value is None:
                continue
            level = None
            if rule.kind is Kind.THRESHOLD and not stale:
                level = rule.level(value)
            label = metric if rule.kind is Kind.COMPOSITE else None
            shown.append(SeriesNow(instance or None, label, value, level, stale))
    return shown


def _one(
    reading: tuple[float, datetime] | None, now: datetime, limit: float
) -> tuple[float | None, bool]:
    if reading is None:
        return None, False
    value, at = reading
    return value, (now - at).total_seconds() > limit


def _combined(
    by_instance: Mapping[str, tuple[float, datetime]], rule: Rule, now: datetime, limit: float
) -> tuple[float | None, bool]:
    fresh = [v for v, at in by_instance.values() if (now - at).total_seconds() <= limit]
    if fresh:
        return combine(fresh, rule.aggregate), False
    if not by_instance:
        return None, False
    newest = max(by_instance.values(), key=lambda reading: reading[1])
    return newest[0], True


async def rules_section(reads: Reads) -> Context:
    rules = await rules_api.list_rules(reads.request, reads.principal)
    vigil = reads.vigil
    states: dict[str, list[SeriesState]] = {}
    for key, state in sorted((await vigil.store.load_states()).items()):
        name, _, series = key.partition("/")  # core.evaluation.series_key
        states.setdefault(name, []).append(
            SeriesState(
                series or None,
                state.breach_streak,
                state.normal_streak,
                state.incident,
                flapping=state.flapping,
            )
        )
    now, interval = vigil.clock(), vigil.settings.interval
    current: dict[str, list[SeriesNow]] = {}
    for rule in vigil.view.rules.values():
        limit = rule.stale_after if rule.stale_after is not None else STALE_INTERVALS * interval
        current[rule.name] = series_now(rule, vigil.view.readings, now=now, limit=limit)
    return {"rules": rules, "current": current, "states": states}


SECTIONS: dict[str, Loader] = {"list": rules_section}


def _context(request: Request, principal: Principal, title: str) -> dict[str, Any]:
    context = base_context(request, principal, "rules", title)
    done = request.query_params.get("done")
    if done in NOTICES:
        context["notice"] = NOTICES[done]
    context.update(CHOICES)
    return context


async def rules_page(
    request: Request,
    principal: Principal,
    *,
    problem: ValidationError | None = None,
    sent: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The list and the Add form; with ``problem`` the Add form is shown again with the
    values ``sent`` and the message beside the field it names."""
    context = _context(request, principal, "Rules")
    context.update(await load(SECTIONS.values(), Reads(request, principal)))
    values = form_values(None)
    if sent is not None:
        values = defaultdict(str, sent)
    context.update(problem=problem, values=values)
    return render(request, "rules.html", context, status_code=status_code)


async def edit_page(
    request: Request,
    principal: Principal,
    name: str,
    *,
    problem: ValidationError | None = None,
    sent: dict[str, str] | None = None,
    status_code: int = 200,
    preview: dict[str, Any] | None = None,
) -> HTMLResponse:
    rule = await rules_api.get_rule(request, name, principal)
    context = _context(request, principal, f"Rule {rule.display_name}")
    values = form_values(rule) if sent is None else defaultdict(str, sent)
    history = await rules_api.rule_events(request, name, principal, limit=200)
    changes = [e for e in history if e.kind.startswith("rule.")][:CHANGES_SHOWN]
    context.update(
        rule=rule,
        problem=problem,
        values=values,
        preview=preview,
        periods=PERIODS,
        changes=changes,
    )
    if rule.kind is Kind.THRESHOLD:
        context.update(await _suggestion(request, principal, name, values))
    return render(request, "rule.html", context, status_code=status_code)


PERIODS = [("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days")]
CHART_POINTS = 300
CHANGES_SHOWN = 20  # the rule's latest changes on its page; all of them in the API


async def _previewed(
    request: Request, principal: Principal, name: str, fields: dict[str, str]
) -> dict[str, Any]:
    """The edit form's rule replayed over the period it names (``preview_since``), beside the
    saved rule, with the metric's chart: the *Preview* part of the rule's page."""
    since = fields.get("preview_since") or "24h"
    body = validated(
        RulePreviewIn, {**rule_fields(fields, adding=False), "name": name, "since": since}
    )
    result = await rules_api.preview_rule(request, body, principal)
    proposed = body.rule()
    saved = web_state(request).vigil.view.rules.get(name)
    chart = None
    if proposed.metric:
        history = await metrics_api.history(
            request,
            principal,
            metric=proposed.metric,
            start=result.start,
            end=result.end,
            max_points=CHART_POINTS,
        )
        chart = preview_chart(proposed, saved, result, history)
    period = dict(PERIODS).get(since, since)
    return {
        "since": since,
        "period": period,
        "result": result,
        "proposed": proposed,
        "chart": chart,
    }


def preview_chart(
    proposed: Rule, saved: Rule | None, result: RulePreviewOut, history: MetricHistoryOut
) -> dict[str, Any]:
    """What ``charts.js`` draws: the metric's readings, both versions' thresholds, and the
    incidents the new version would have opened, shaded."""
    lines = [("This version", proposed, "solid")]
    if saved is not None and saved.kind is Kind.THRESHOLD:
        lines.append(("Saved", saved, "dashed"))
    thresholds = [
        {"label": f"{label}: {level}", "value": value, "level": level, "style": style}
        for label, rule, style in lines
        if rule.kind is Kind.THRESHOLD
        for level, value in (("warning", rule.warning), ("critical", rule.critical))
        if value is not None
    ]
    return {
        "label": proposed.display_name,
        "unit": proposed.unit,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "points": [{"t": p.time.isoformat(), "mean": p.mean} for p in history.points],
        "thresholds": thresholds,
        "band": band_points(result.proposed.band) if result.proposed.band else None,
        "windows": [
            {
                "from": i.opened_at.isoformat(),
                "to": (i.resolved_at or result.end).isoformat(),
            }
            for i in result.proposed.incidents
        ],
    }


async def _suggestion(
    request: Request, principal: Principal, name: str, values: dict[str, str]
) -> dict[str, Any]:
    """The *Suggested thresholds* part of a threshold rule's page: asked for with
    ``?suggest=PERIOD``; ``&apply=1`` puts the levels into the form's values (not saved)."""
    since = request.query_params.get("suggest")
    context: dict[str, Any] = {
        "suggest_since": since or "30d",
        "suggestion": None,
        "suggest_problem": None,
        "applied": False,
    }
    if since is None:
        return context
    try:
        found = await rules_api.suggest_thresholds(request, name, principal, since=since)
    except ValidationError as exc:
        context["suggest_problem"] = exc
        return context
    context["suggestion"] = found
    if request.query_params.get("apply") == "1" and found.warning is not None:
        assert found.critical is not None
        values.update(warning=f"{found.warning:g}", critical=f"{found.critical:g}")
        context["applied"] = True
    return context


@router.get("/rules", response_class=HTMLResponse, name="rules")
async def rules(request: Request, principal: Reader) -> HTMLResponse:
    return await rules_page(request, principal)


@router.get("/sections/rules/{name}", response_class=HTMLResponse)
async def rules_sections(request: Request, name: str, principal: Reader) -> HTMLResponse:
    return await section(Reads(request, principal), SECTIONS, page="rules", name=name)


@router.get("/rules/{name}", response_class=HTMLResponse)
async def rule(request: Request, name: str, principal: Reader) -> HTMLResponse:
    return await edit_page(request, principal, name)


# -- actions ----------------------------------------------------------------------------------


@router.post("/rules", response_class=HTMLResponse)
async def add_rule(request: Request, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    try:
        body = validated(RuleIn, rule_fields(fields, adding=True))
        await rules_api.create_rule(request, body, principal, Response())
    except ValidationError as exc:
        return await rules_page(request, principal, problem=exc, sent=fields, status_code=422)
    return back(request, fields, done="rule-added", default="/rules")


@router.post("/rules/{name}", response_class=HTMLResponse)
async def save_rule(request: Request, name: str, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    try:
        body = validated(RuleReplace, rule_fields(fields, adding=False))
        await rules_api.replace_rule(request, name, body, principal)
    except ValidationError as exc:
        return await edit_page(request, principal, name, problem=exc, sent=fields, status_code=422)
    return back(request, fields, done="rule-saved", default="/rules")


@router.post("/rules/{name}/preview", response_class=HTMLResponse)
async def preview_edit(request: Request, name: str, form: AdminForm) -> Response:
    """The edit form sent with *Preview*: the page again, the form as typed, and what that
    version would have done. Nothing is saved."""
    fields, principal = form.fields, form.principal
    try:
        previewed = await _previewed(request, principal, name, fields)
    except ValidationError as exc:
        return await edit_page(request, principal, name, problem=exc, sent=fields, status_code=422)
    return await edit_page(request, principal, name, sent=fields, preview=previewed)


@router.post("/rules/{name}/enable")
async def enable_rule(request: Request, name: str, form: AdminForm) -> Response:
    await rules_api.update_rule(request, name, RulePatch(enabled=True), form.principal)
    return back(request, form.fields, done="rule-enabled", default="/rules")


@router.post("/rules/{name}/disable")
async def disable_rule(request: Request, name: str, form: AdminForm) -> Response:
    await rules_api.update_rule(request, name, RulePatch(enabled=False), form.principal)
    return back(request, form.fields, done="rule-disabled", default="/rules")


@router.get("/rules/{name}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, name: str, principal: Reader) -> HTMLResponse:
    """The confirmation a delete needs, as a page of its own: it works without a script."""
    rule = await rules_api.get_rule(request, name, principal)
    context = _context(request, principal, f"Delete rule {rule.display_name}?")
    context.update(rule=rule)
    return render(request, "rule_delete.html", context)


@router.post("/rules/{name}/delete")
async def delete_rule(request: Request, name: str, form: AdminForm) -> Response:
    await rules_api.delete_rule(request, name, form.principal)
    return back(request, {}, done="rule-deleted", default="/rules")
