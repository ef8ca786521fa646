"""The Escalations page: who hears of an unacknowledged incident, and when.

Each policy is listed with what it applies to (rules, and the severities it is the default
for), its steps (their channels, and when each is reached if nobody acknowledges) and what
happens after the last step. Viewers read; admins add, edit and remove policies with plain forms
that redirect back, through the API's own route functions (so every change is checked as the
API checks it and logged as ``escalation.*``). A refused form is shown again with what was wrong
and the values sent; nothing stored changes.

A form has a fixed number of step rows (the policy's steps and a blank one, at least three):
the blank rows after the last filled one are left out. Channels and rules are ticked boxes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from vigil.core import NotFoundError, Severity, ValidationError
from vigil.core.escalation import MAX_STEPS
from vigil.web.auth import Principal
from vigil.web.pages.forms import AdminForm, back, checked, validated, whole_number
from vigil.web.pages.render import base_context, render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.sections import Context, Loader, Reads, section
from vigil.web.routes import channels as channels_api
from vigil.web.routes import escalations as escalations_api

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ADD_FORM = "+add"  # the add form's key among the policies' forms: no policy can be named so
MIN_STEP_ROWS = 3
_STEP_CHANNEL = re.compile(r"step(\d+)_channel_(.+)")

Problem = tuple[str, ValidationError]


async def list_section(
    reads: Reads,
    *,
    problem: Problem | None = None,
    sent: Mapping[str, str] | None = None,
) -> Context:
    """The policies, and their forms' values; with ``problem`` (the form it concerns, and the
    error), that form gets the values ``sent`` back and what was wrong."""
    policies = await escalations_api.list_policies(reads.request, reads.principal)
    channels = await channels_api.list_channels(reads.request, reads.principal)
    values = {policy.name: _shown(policy) for policy in policies}
    values[ADD_FORM] = _shown(None)
    if problem is not None and sent is not None:
        if problem[0] not in values:  # an edit refused of a policy removed meanwhile
            raise NotFoundError("escalation policy", problem[0])
        values[problem[0]] = _sent_back(sent)
    named_rules = {rule for policy in policies for rule in policy.rules}
    named_channels = {c for policy in policies for step in policy.steps for c in step.channels}
    for shown in values.values():
        named_rules.update(shown["rules"])
        named_channels.update(c for step in shown["steps"] for c in step["channels"])
    return {
        "policies": policies,
        "values": values,
        "step_rows": {key: _step_rows(shown) for key, shown in values.items()},
        "problem": problem,
        "error_field": problem[1].field if problem is not None else "",
        # Every rule and channel, and any a policy names that is gone: unticked by nobody.
        "rule_choices": sorted(set(reads.vigil.view.rules) | named_rules),
        "channel_choices": sorted({c.name for c in channels} | named_channels),
        "severities": list(Severity),
        "add_form": ADD_FORM,
    }


SECTIONS: dict[str, Loader] = {"list": list_section}


async def escalations_page(
    request: Request,
    principal: Principal,
    *,
    problem: Problem | None = None,
    sent: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = base_context(request, principal, "escalations", "Escalations")
    context.update(await list_section(Reads(request, principal), problem=problem, sent=sent))
    return render(request, "escalations.html", context, status_code=status_code)


@router.get("/escalations", response_class=HTMLResponse, name="escalations")
async def escalations(request: Request, principal: Reader) -> HTMLResponse:
    return await escalations_page(request, principal)


@router.get("/sections/escalations/{name}", response_class=HTMLResponse)
async def escalations_section(request: Request, name: str, principal: Reader) -> HTMLResponse:
    return await section(Reads(request, principal), SECTIONS, page="escalations", name=name)


@router.post("/escalations", response_class=HTMLResponse)
async def add_policy(request: Request, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    try:
        data = {"name": fields.get("name", "").strip(), **policy_fields(fields)}
        policy = validated(escalations_api.PolicyIn, data)
        await escalations_api.add_policy(request, policy, principal)
    except ValidationError as exc:
        return await escalations_page(
            request, principal, problem=(ADD_FORM, exc), sent=fields, status_code=422
        )
    return back(request, fields, done="escalation-added", default="/escalations")


@router.post("/escalations/{name}", response_class=HTMLResponse)
async def update_policy(request: Request, name: str, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    try:
        changes = validated(escalations_api.PolicyUpdate, policy_fields(fields))
        await escalations_api.update_policy(request, name, changes, principal)
    except ValidationError as exc:
        return await escalations_page(
            request, principal, problem=(name, exc), sent=fields, status_code=422
        )
    return back(request, fields, done="escalation-saved", default="/escalations")


@router.post("/escalations/{name}/remove")
async def remove_policy(request: Request, name: str, form: AdminForm) -> Response:
    await escalations_api.delete_policy(request, name, form.principal)
    return back(request, form.fields, done="escalation-removed", default="/escalations")


def policy_fields(form: Mapping[str, str]) -> dict[str, Any]:
    """What a policy form says, in the API's terms (every field but the name). Step rows
    after the last one with a channel ticked are left out; an empty row before it is refused,
    naming it. An empty wait is the API's default; an empty repeat stops after the last step."""
    ticked: dict[int, list[str]] = {}
    for key in form:
        match = _STEP_CHANNEL.fullmatch(key)
        if match and checked(form, key) and int(match.group(1)) < MAX_STEPS:
            ticked.setdefault(int(match.group(1)), []).append(match.group(2))
    waits = {
        n: _minutes(form, f"step{n}_wait", f"steps[{n}].wait_minutes") for n in range(MAX_STEPS)
    }
    used = [n for n in range(MAX_STEPS) if n in ticked or waits[n] is not None]
    steps: list[dict[str, Any]] = []
    for n in range(used[-1] + 1 if used else 0):
        if n not in ticked:
            raise ValidationError(
                f"steps[{n}].channels",
                "tick at least one channel for this step (or leave it and the steps after "
                "it empty)",
            )
        step: dict[str, Any] = {"channels": ticked[n]}
        if waits[n] is not None:
            step["wait_minutes"] = waits[n]
        steps.append(step)
    if not steps:
        raise ValidationError("steps[0].channels", "tick at least one channel for the first step")
    return {
        "description": form.get("description", "").strip(),
        "steps": steps,
        "repeat_minutes": _minutes(form, "repeat_minutes", "repeat_minutes"),
        "rules": _ticked_rules(form),
        "severities": [s.value for s in Severity if checked(form, f"severity_{s.value}")],
    }


def _ticked_rules(form: Mapping[str, str]) -> list[str]:
    return sorted(
        key[len("rule_") :] for key in form if key.startswith("rule_") and checked(form, key)
    )


def _minutes(form: Mapping[str, str], name: str, field: str) -> int | None:
    try:
        return whole_number(form, name)
    except ValidationError as exc:
        raise ValidationError(field, exc.message) from None


def _shown(policy: escalations_api.PolicyOut | None) -> dict[str, Any]:
    """A policy form's values: the policy's, or a new one's (empty)."""
    if policy is None:
        return {
            "name": "",
            "description": "",
            "steps": [],
            "repeat_minutes": "",
            "rules": [],
            "severities": [],
        }
    return {
        "name": policy.name,
        "description": policy.description,
        "steps": [
            {"channels": list(step.channels), "wait": str(step.wait_minutes)}
            for step in policy.steps
        ],
        "repeat_minutes": "" if policy.repeat_minutes is None else str(policy.repeat_minutes),
        "rules": list(policy.rules),
        "severities": [s.value for s in policy.severities],
    }


def _sent_back(form: Mapping[str, str]) -> dict[str, Any]:
    """A refused form's values as they were sent, step rows and ticks included."""
    rows: dict[int, dict[str, Any]] = {}
    for key in form:
        match = _STEP_CHANNEL.fullmatch(key)
        if match and checked(form, key) and int(match.group(1)) < MAX_STEPS:
            row = rows.setdefault(int(match.group(1)), {"channels": [], "wait": ""})
            row["channels"].append(match.group(2))
    for n in range(MAX_STEPS):
        wait = form.get(f"step{n}_wait", "")
        if wait:
            rows.setdefault(n, {"channels": [], "wait": ""})["wait"] = wait
    last = max(rows, default=-1)
    return {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "steps": [rows.get(n, {"channels": [], "wait": ""}) for n in range(last + 1)],
        "repeat_minutes": form.get("repeat_minutes", ""),
        "rules": _ticked_rules(form),
        "severities": [s.value for s in Severity if checked(form, f"severity_{s.value}")],
    }


def _step_rows(shown: Mapping[str, Any]) -> Sequence[dict[str, Any]]:
    """The form's step rows: the steps shown, then blank ones (one at least, three in all at
    least, never more than a policy may have)."""
    steps: list[dict[str, Any]] = list(shown["steps"])
    count = min(MAX_STEPS, max(MIN_STEP_ROWS, len(steps) + 1))
    return steps + [{"channels": [], "wait": ""} for _ in range(count - len(steps))]
