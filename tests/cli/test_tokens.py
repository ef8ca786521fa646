"""``vigil tokens`` (and ``vigil users`` beside a running server), run as an operator runs
them, against both databases."""

from __future__ import annotations

import asyncio

from vigil.web.security import token_hash

from ..web.support import Api, eventually, running_api
from .support import stored, vigil


def test_tokens_are_shown_once_stored_hashed_and_revocable(migrated_url: str) -> None:
    code, output = vigil(migrated_url, "tokens", "create", "prometheus", "--role", "viewer")
    assert code == 0
    secret = output.strip().splitlines()[-1]
    assert secret.startswith("vgl_") and len(secret) > 40
    record = stored(migrated_url, lambda store: store.token_by_hash(token_hash(secret)))
    assert (record.name, record.role) == ("prometheus", "viewer")

    code, listing = vigil(migrated_url, "tokens", "list")
    assert code == 0 and "prometheus" in listing and "never" in listing
    assert secret not in listing

    code, output = vigil(migrated_url, "tokens", "revoke", str(record.id))
    assert code == 0 and "Revoked" in output
    revoked = stored(migrated_url, lambda store: store.list_tokens())
    assert revoked[0].revoked_at is not None
    code, output = vigil(migrated_url, "tokens", "revoke", "999")
    assert code == 1 and "not found" in output
    code, output = vigil(migrated_url, "tokens", "create", "x", "--role", "root")
    assert code == 2


async def test_the_commands_work_beside_a_running_server(migrated_url: str) -> None:
    async with running_api(migrated_url) as api:  # the monitor owns the SQLite file
        code, output = await asyncio.to_thread(
            vigil, migrated_url, "tokens", "create", "late", "--role", "admin"
        )
        assert code == 0, output
        secret = output.strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {secret}"}
        assert (await api.client.get("/api/alerts/active", headers=headers)).status_code == 200
        [record] = [t for t in await api.vigil.store.list_tokens() if t.name == "late"]
        code, output = await asyncio.to_thread(
            vigil, migrated_url, "tokens", "revoke", str(record.id)
        )
        assert code == 0, output

        async def refused() -> bool:
            response = await api.client.get("/api/alerts/active", headers=headers)
            return response.status_code == 401

        await eventually(refused)
        code, output = await asyncio.to_thread(
            vigil,
            migrated_url,
            "users",
            "add",
            "kim",
            "--role",
            "viewer",
            "--password-stdin",
            stdin="kims password\n",
        )
        assert code == 0, output
        await api_sign_in(api, "kim", "kims password")


async def api_sign_in(api: Api, name: str, password: str) -> None:
    response = await api.client.post("/api/auth/login", json={"name": name, "password": password})
    assert response.status_code == 200, response.text


def test_an_ingest_token_can_be_bound_to_one_instance(migrated_url: str) -> None:
    code, output = vigil(
        migrated_url, "tokens", "create", "shard0", "--role", "ingest", "--instance", "shard-0"
    )
    assert code == 0 and "instance 'shard-0' only" in output
    secret = output.strip().splitlines()[-1]
    record = stored(migrated_url, lambda store: store.token_by_hash(token_hash(secret)))
    assert (record.role, record.instance) == ("ingest", "shard-0")
    code, listing = vigil(migrated_url, "tokens", "list")
    assert code == 0 and "shard-0" in listing
    code, output = vigil(
        migrated_url, "tokens", "create", "x", "--role", "viewer", "--instance", "shard-0"
    )
    assert code == 1 and "instance" in output
