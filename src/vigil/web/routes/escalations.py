"""``/api/escalations``: escalation policies, who hears of an unacknowledged incident and when.

A policy's steps name channels; the first step is told when the incident opens, each next one
when the incident is still unacknowledged ``wait_minutes`` after the step before; after the last
step it stops, or repeats every ``repeat_minutes``. It applies to the incidents of the rules it
names and, for other rules, to the severities it is the default for. Reads are for viewers;
changes for admins. Bad input is a 422 naming the field (``steps[1].channels[0]``...).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from vigil.core import Severity
from vigil.core.escalation import (
    MAX_CHANNELS,
    MAX_DESCRIPTION,
    MAX_MINUTES,
    MAX_STEPS,
    EscalationPolicy,
)
from vigil.web.auth import Admin, Viewer, web_state
from vigil.web.errors import responses
from vigil.web.schemas import NAME_REGEX, RULE_NAME_REGEX, Changes, Text, optional

router = APIRouter(tags=["escalations"])

Minutes = Annotated[StrictInt, Field(ge=1, le=MAX_MINUTES)]
ChannelName = Annotated[str, Field(pattern=NAME_REGEX)]
RuleName = Annotated[str, Field(pattern=RULE_NAME_REGEX)]


class StepModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[ChannelName] = Field(
        min_length=1, max_length=MAX_CHANNELS, description="Told when the step is reached."
    )
    wait_minutes: Minutes = Field(
        15,
        description="Minutes unacknowledged before the next step (for the last step: before "
        "its first repeat, when the policy repeats).",
    )


class PolicyOut(BaseModel):
    name: str
    description: str
    steps: list[StepModel]
    repeat_minutes: int | None = Field(
        description="After the last step, tell its channels again this often; null: stop."
    )
    rules: list[str] = Field(description="The rules whose incidents follow this policy.")
    severities: list[Severity] = Field(
        description="The default policy for incidents of these severities (of rules no "
        "policy names)."
    )

    @classmethod
    def of(cls, policy: EscalationPolicy) -> PolicyOut:
        return cls.model_validate(policy.to_dict())


class PolicyIn(BaseModel):
    """A new policy. Its steps must name existing channels; a rule, or a severity, follows at
    most one policy."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_REGEX)
    description: Text = Field("", max_length=MAX_DESCRIPTION)
    steps: list[StepModel] = Field(min_length=1, max_length=MAX_STEPS)
    repeat_minutes: Minutes | None = None
    rules: list[RuleName] = Field(default_factory=list)
    severities: list[Severity] = Field(default_factory=list)


class PolicyUpdate(Changes):
    """Fields to change; a field left out keeps its value. ``repeat_minutes: null`` stops the
    policy after its last step."""

    model_config = ConfigDict(extra="forbid")

    description: Text = optional(max_length=MAX_DESCRIPTION)
    steps: list[StepModel] = optional(min_length=1, max_length=MAX_STEPS)
    repeat_minutes: Minutes | None = None
    rules: list[RuleName] = optional()
    severities: list[Severity] = optional()


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    if "steps" in data:
        data["steps"] = [
            step.model_dump() if isinstance(step, StepModel) else step for step in data["steps"]
        ]
    return data


@router.get("/api/escalations", responses=responses(401, 403, 503), summary="Every policy")
async def list_policies(request: Request, _: Viewer) -> list[PolicyOut]:
    policies = await web_state(request).vigil.store.list_policies()
    return [PolicyOut.of(policy) for policy in policies]


@router.get(
    "/api/escalations/{name}", responses=responses(401, 403, 404, 503), summary="One policy"
)
async def get_policy(request: Request, name: str, _: Viewer) -> PolicyOut:
    return PolicyOut.of(await web_state(request).vigil.store.get_policy(name))


@router.post(
    "/api/escalations",
    status_code=201,
    responses=responses(401, 403, 422, 503),
    summary="Add a policy",
    description="A name already taken, a step naming an unknown channel, or a rule or "
    "severity that already follows another policy is a 422 naming the field.",
)
async def add_policy(request: Request, policy: PolicyIn, principal: Admin) -> PolicyOut:
    vigil = web_state(request).vigil
    added = await vigil.store.add_policy(
        _plain(policy.model_dump()), now=vigil.clock(), by=principal.name
    )
    return PolicyOut.of(added)


@router.patch(
    "/api/escalations/{name}",
    responses=responses(401, 403, 404, 422, 503),
    summary="Change a policy",
    description="Fields left out keep their value. The name cannot change. Incidents already "
    "open follow the changed steps from their trigger time.",
)
async def update_policy(
    request: Request, name: str, changes: PolicyUpdate, principal: Admin
) -> PolicyOut:
    vigil = web_state(request).vigil
    updated = await vigil.store.update_policy(
        name, _plain(changes.changes()), now=vigil.clock(), by=principal.name
    )
    return PolicyOut.of(updated)


@router.delete(
    "/api/escalations/{name}",
    status_code=204,
    responses=responses(401, 403, 404, 503),
    summary="Remove a policy",
    description="Its incidents are notified as their channels say from then on.",
)
async def delete_policy(request: Request, name: str, principal: Admin) -> Response:
    vigil = web_state(request).vigil
    await vigil.store.delete_policy(name, now=vigil.clock(), by=principal.name)
    return Response(status_code=204)
