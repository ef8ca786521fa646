"""Creating users and API tokens: what the CLI does, and what an admin page would do."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from vigil.core import ValidationError
from vigil.store import ApiToken, Role, Store, User
from vigil.web.schemas import INSTANCE_REGEX
from vigil.web.security import Passwords, new_token, token_hash

MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationError("password", f"must be at most {MAX_PASSWORD} characters")
    if "\x00" in password:
        raise ValidationError("password", "must not contain NUL characters")
    return password


async def add_user(
    store: Store,
    name: str,
    *,
    role: Role | str,
    password: str,
    passwords: Passwords | None = None,
    now: datetime | None = None,
) -> User:
    """A new viewer or admin with an argon2 hash of ``password``."""
    hashed = (passwords or Passwords()).hash(check_password(password))
    return await store.add_user(name, role=role, password_hash=hashed, now=now or _now())


async def set_password(
    store: Store, name: str, *, password: str, passwords: Passwords | None = None
) -> User:
    """Change a password; every session of that user ends (within the auth cache time)."""
    hashed = (passwords or Passwords()).hash(check_password(password))
    return await store.update_user(name, password_hash=hashed)


async def create_token(
    store: Store,
    name: str,
    *,
    role: Role | str,
    now: datetime | None = None,
    instance: str | None = None,
) -> tuple[ApiToken, str]:
    """A new API token: its record, and the secret, which exists only in this return value.
    ``instance``: an ingest token that may push samples for that instance name only."""
    if instance is not None and not re.fullmatch(INSTANCE_REGEX, instance):
        raise ValidationError(
            "instance",
            f"{instance!r} is not an instance name (1-100 letters, digits and . _ : @ / -)",
        )
    secret = new_token()
    record = await store.add_token(
        name, role=role, token_hash=token_hash(secret), now=now or _now(), instance=instance
    )
    return record, secret


def _now() -> datetime:
    return datetime.now(UTC)
