"""``vigil users``, run as an operator runs it, against both databases."""

from __future__ import annotations

import asyncio

from vigil.store import Role
from vigil.web.security import Passwords

from .support import stored, vigil


def test_users_add_list_passwd_remove(migrated_url: str) -> None:
    code, output = vigil(
        migrated_url,
        "users",
        "add",
        "root",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert code == 0 and "Added admin 'root'" in output
    code, output = vigil(
        migrated_url, "users", "add", "eve", "--role", "viewer", stdin="pass word 1\npass word 1\n"
    )
    assert code == 0, output  # asked twice on the terminal
    user = stored(migrated_url, lambda store: store.get_user("root"))
    assert user.role is Role.ADMIN and user.password_hash.startswith("$argon2id$")
    assert asyncio.run(Passwords().check(user.password_hash, "a long password"))

    code, output = vigil(migrated_url, "users", "list")
    assert code == 0 and "root" in output and "admin" in output and "eve" in output

    code, output = vigil(
        migrated_url, "users", "passwd", "root", "--password-stdin", stdin="another password\n"
    )
    assert code == 0, output
    user = stored(migrated_url, lambda store: store.get_user("root"))
    assert asyncio.run(Passwords().check(user.password_hash, "another password"))

    code, output = vigil(migrated_url, "users", "remove", "eve", "--yes")
    assert code == 0 and "Removed 'eve'" in output
    code, output = vigil(migrated_url, "users", "list")
    assert "eve" not in output


def test_user_commands_refuse_clearly(migrated_url: str) -> None:
    add = ("users", "add", "root", "--role", "admin", "--password-stdin")
    assert vigil(migrated_url, *add, stdin="long enough\n")[0] == 0
    code, output = vigil(migrated_url, *add, stdin="long enough\n")
    assert code == 1 and "already exists" in output
    code, output = vigil(
        migrated_url, "users", "add", "x", "--role", "admin", "--password-stdin", stdin="short\n"
    )
    assert code == 1 and "at least 8 characters" in output
    code, output = vigil(migrated_url, "users", "add", "x", "--role", "owner", "--password-stdin")
    assert code == 2  # not a role: a usage error
    code, output = vigil(migrated_url, "users", "remove", "nobody", "--yes")
    assert code == 1 and "not found" in output
    code, output = vigil(migrated_url, "users", "remove", "root", stdin="n\n")
    assert code == 1  # asked, declined
    assert "root" in vigil(migrated_url, "users", "list")[1]
