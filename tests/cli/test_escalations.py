"""``vigil escalations``, run as a user runs it, against both databases."""

from __future__ import annotations

import json

from vigil.store import Store

from .support import stored, vigil

HOOK = "json://127.0.0.1:9/hook"


def test_escalations_add_list_show_set_remove(migrated_url: str) -> None:
    for name in ("ops", "pager"):
        code, output = vigil(migrated_url, "channels", "add", name, HOOK)
        assert code == 0, output
    code, output = vigil(
        migrated_url,
        "escalations",
        "add",
        "night",
        "--step",
        "ops:10",
        "--step",
        "pager,ops:5",
        "--repeat-minutes",
        "30",
        "--severity",
        "critical",
    )
    assert code == 0, output
    assert "Added escalation policy night: ops (10 min) -> pager,ops (5 min)." in output
    code, output = vigil(migrated_url, "escalations", "list")
    assert code == 0 and "every 30 min" in output and "critical" in output

    code, output = vigil(
        migrated_url, "escalations", "set", "night", "--no-repeat", "--rule", "error_rate"
    )
    assert code == 0, output
    code, output = vigil(migrated_url, "escalations", "show", "night")
    assert code == 0
    assert json.loads(output) == {
        "name": "night",
        "description": "",
        "steps": [
            {"channels": ["ops"], "wait_minutes": 10},
            {"channels": ["pager", "ops"], "wait_minutes": 5},
        ],
        "repeat_minutes": None,
        "rules": ["error_rate"],
        "severities": ["critical"],
    }

    async def names(store: Store) -> list[str]:
        return [p.name for p in await store.list_policies()]

    assert stored(migrated_url, names) == ["night"]
    code, output = vigil(migrated_url, "escalations", "remove", "night")
    assert code == 0 and "Removed escalation policy night" in output
    code, output = vigil(migrated_url, "escalations", "list")
    assert "No escalation policies" in output
    code, output = vigil(migrated_url, "escalations", "remove", "night")
    assert code == 1 and "not found" in output


def test_bad_steps_are_refused_naming_the_field(migrated_url: str) -> None:
    code, output = vigil(migrated_url, "escalations", "add", "p", "--step", "nobody")
    assert code == 1 and "steps[0].channels[0]" in output and "no channel named" in output
    code, output = vigil(migrated_url, "escalations", "add", "p", "--step", "ops:soon")
    assert code == 1 and "steps[0].wait_minutes" in output
    code, output = vigil(migrated_url, "escalations", "add", "p")
    assert code == 1 and "steps" in output
