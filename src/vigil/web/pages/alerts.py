"""Alerts & Incidents (``/alerts``): the summary, the open incidents, the rules with their
current values (admins edit the thresholds inline), the history with its filters, the
auto-recoveries, the alert frequency and the noisiest rules; and the forms that acknowledge
every open incident and save a rule.

Hot data (open incidents, the summary, rules, current values) comes from the live view,
history from the database.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from vigil.core import Direction, NotFoundError, Rule, ValidationError
from vigil.web.auth import Principal, web_state
from vigil.web.pages.filters import FREQUENCY_DAYS, HistoryFilters
from vigil.web.pages.forms import AdminForm, back, checked, local_path, validated
from vigil.web.pages.groups import groups_section
from vigil.web.pages.incident import notes_of
from vigil.web.pages.overview import sample_age, stale_after_of
from vigil.web.pages.render import base_context, render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.sections import Context, Loader, Reads, load, section
from vigil.web.routes import alerts as alerts_api
from vigil.web.routes import metrics as metrics_api
from vigil.web.routes import rules as rules_api
from vigil.web.schemas import RuleUpdate

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HISTORY_PAGE_SIZE = 25
RECOVERIES_SHOWN = 10


async def summary_section(reads: Reads) -> Context:
    return {"summary": await alerts_api.summary(reads.request, reads.principal)}


async def active_section(reads: Reads) -> Context:
    return {"active": await alerts_api.active(reads.request, reads.principal)}


async def rules_section(reads: Reads) -> Context:
    # /api/metrics answers both: every rule with its current value and level.
    current = await metrics_api.current(reads.request, reads.principal)
    # Which rules are silenced now, from the monitor's own cache (reloaded when a snooze or
    # window changes anywhere): the same answer the monitor acts on, without a query.
    vigil = reads.vigil
    silences = vigil.silences
    await silences.load()
    now = vigil.clock()
    windows: dict[str, list[str]] = {}
    for window in silences.active_windows(now):
        for item in current:
            if window.applies_to(item.metric):
                windows.setdefault(item.metric, []).append(window.name)
    stale_after = stale_after_of(reads)
    ages = {item.metric: sample_age(item, now=now, stale_after=stale_after) for item in current}
    return {
        "rules": [item for item in current if item.rule is not None],
        # A value whose last sample is old is shown with its age, not with a level.
        "stale": {metric: age for metric, (_, age, stale) in ages.items() if stale},
        "snoozed": {snooze.metric: snooze for snooze in silences.active_snoozes(now)},
        "maintenance": windows,
    }


async def history_section(reads: Reads) -> Context:
    filters = reads.filters
    try:
        page = await alerts_api.history(
            reads.request,
            reads.principal,
            severity=filters.severity,
            status=filters.status,
            metric=filters.metric,
            rule=filters.rule,
            start=filters.start,
            end=filters.end,
            page=filters.page,
            page_size=HISTORY_PAGE_SIZE,
        )
    except ValidationError as exc:  # the filters' own checks leave nothing for the store
        return {"history": None, "history_error": str(exc)}
    return {"history": page, "history_error": None}


async def recoveries_section(reads: Reads) -> Context:
    found = await alerts_api.auto_recovery(reads.request, reads.principal, limit=RECOVERIES_SHOWN)
    return {"recoveries": found}


async def frequency_section(reads: Reads) -> Context:
    days = reads.filters.days
    counts = await alerts_api.stats(reads.request, reads.principal, days=days)
    totals = {
        "total": sum(day.total for day in counts),
        "critical": sum(day.critical for day in counts),
        "warning": sum(day.warning for day in counts),
        "info": sum(day.info for day in counts),
    }
    return {
        "frequency": counts,
        "frequency_json": [day.model_dump(mode="json") for day in counts],
        "frequency_totals": totals,
        "frequency_days": days,
    }


NOISIEST_SHOWN = 10


async def noisiest_section(reads: Reads) -> Context:
    days = reads.filters.days
    found = await rules_api.noisiest_rules(
        reads.request, reads.principal, days=days, limit=NOISIEST_SHOWN
    )
    return {"noisiest": found, "noisiest_days": days}


SECTIONS: dict[str, Loader] = {
    "summary": summary_section,
    "active": active_section,
    "rules": rules_section,
    "history": history_section,
    "recoveries": recoveries_section,
    "frequency": frequency_section,
    "groups": groups_section,
    "noisiest": noisiest_section,
}


def extras(
    filters: HistoryFilters,
    *,
    rule_error: tuple[str, ValidationError] | None = None,
    rule_form: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the page's sections need besides their reads: the filters, and a rule form sent
    without JavaScript that was refused (its values and what was wrong)."""
    return {
        "filters": filters,
        "frequency_choices": FREQUENCY_DAYS,
        "rule_error": rule_error,
        "rule_form": rule_form or {},
    }


async def alerts_page(
    request: Request,
    principal: Principal,
    filters: HistoryFilters,
    *,
    rule_error: tuple[str, ValidationError] | None = None,
    rule_form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The whole page; with ``rule_error``, a rule form sent without JavaScript is shown again
    with its values and what was wrong."""
    context = base_context(request, principal, "alerts", "Alerts & Incidents")
    context.update(extras(filters, rule_error=rule_error, rule_form=rule_form))
    context.update(await load(SECTIONS.values(), Reads(request, principal, filters)))
    return render(request, "alerts.html", context, status_code=status_code)


@router.get("/alerts", response_class=HTMLResponse, name="alerts")
async def alerts(request: Request, principal: Reader) -> HTMLResponse:
    return await alerts_page(request, principal, HistoryFilters.parse(request.query_params))


@router.get("/sections/alerts/{name}", response_class=HTMLResponse)
async def alerts_section(request: Request, name: str, principal: Reader) -> HTMLResponse:
    filters = HistoryFilters.parse(request.query_params)
    reads = Reads(request, principal, filters)
    return await section(reads, SECTIONS, page="alerts", name=name, extras=extras(filters))


# -- actions ----------------------------------------------------------------------------------


@router.post("/alerts/incidents/acknowledge-all")
async def acknowledge_all(request: Request, form: AdminForm) -> Response:
    await alerts_api.acknowledge_all(request, form.principal, notes_of(form.fields))
    return back(request, form.fields, done="acknowledged-all", default="/alerts")


def rule_changes(rule: Rule, form: dict[str, str]) -> dict[str, Any]:
    """What a rule row's form changes: only fields that differ from the rule. An empty
    threshold clears it; an unchecked box is ``enabled: false``."""
    wanted: dict[str, Any] = {}
    for name in ("warning", "critical"):
        text = form.get(name, "").strip().replace(",", ".") if name in form else None
        if text is None:
            continue
        if text == "":
            wanted[name] = None
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValidationError(name, f"{text[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise ValidationError(name, "must be a finite number")
        wanted[name] = value
    if "direction" in form:
        try:
            wanted["direction"] = Direction(form["direction"])
        except ValueError:
            raise ValidationError("direction", "must be 'above' or 'below'") from None
    wanted["enabled"] = checked(form, "enabled")
    return {name: value for name, value in wanted.items() if getattr(rule, name) != value}


@router.post("/alerts/rules/{metric}", response_class=HTMLResponse)
async def update_rule(request: Request, metric: str, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    rule = web_state(request).vigil.view.rules.get(metric)
    if rule is None:
        raise NotFoundError("rule", metric)
    try:
        changes = rule_changes(rule, fields)
        if not changes:
            return back(request, fields, done="unchanged", default="/alerts")
        update = validated(RuleUpdate, changes)
        await alerts_api.update_rule(request, metric, update, principal)
    except ValidationError as exc:
        next_path = local_path(fields.get("next"), default="/alerts")
        filters = HistoryFilters.parse(dict(parse_qsl(urlsplit(next_path).query)))
        return await alerts_page(
            request,
            principal,
            filters,
            rule_error=(metric, exc),
            rule_form=fields,
            status_code=422,
        )
    return back(request, fields, done="saved", default="/alerts")
