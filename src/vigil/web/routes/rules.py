"""``/api/alerts/rules``: the rules, by name, of every kind: list, create, read, replace,
change some fields, delete.

Reads come from the live view (the monitor's own rules); every change goes through ``Vigil``,
which validates it in the core, stores it with its ``rule.*`` event in one transaction and
publishes the event to the live stream. The older ``/api/alerts/config/{metric}`` routes
(``vigil.web.routes.alerts``) reach the rule named after a metric.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.core import NotFoundError, Rule
from vigil.web.auth import Admin, Viewer, web_state
from vigil.web.errors import responses
from vigil.web.schemas import RuleIn, RuleOut, RulePatch, RuleReplace

router = APIRouter(prefix="/api/alerts/rules", tags=["rules"])

READ = responses(401, 403, 503)
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
    rule = await vigil.add_rule(body.rule(), by=principal.name)
    response.headers["Location"] = str(request.url_for("get_rule_by_name", name=rule.name))
    return RuleOut.of(rule)


@router.get("/{name}", responses=ONE, summary="One rule", name="get_rule_by_name")
async def get_rule(request: Request, name: str, _: Viewer) -> RuleOut:
    return RuleOut.of(rule_named(request, name))


@router.put(
    "/{name}",
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
    "/{name}",
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
    "/{name}",
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
