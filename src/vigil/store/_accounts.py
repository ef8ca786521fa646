"""Users and API tokens. Hashing is the caller's job: only hashes
arrive here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update

from vigil.core.errors import NotFoundError, ValidationError
from vigil.store import models
from vigil.store._base import StoreBase, check_enum, check_name, check_time, sqlite_time
from vigil.store.records import USER_ROLES, ApiToken, Role, User


class Accounts(StoreBase):
    # -- users ----------------------------------------------------------------------------------

    async def add_user(
        self, name: str, *, role: Role | str, password_hash: str, now: datetime
    ) -> User:
        """A new user; ``ValidationError`` on ``name`` if it is taken."""
        check_name("name", name)
        user_role = _user_role(role)
        check_name("password_hash", password_hash, max_length=255)
        check_time("now", now)
        table = models.users
        async with self._write("adding a user") as connection:
            taken = await connection.scalar(select(table.c.id).where(table.c.name == name))
            if taken is not None:
                raise ValidationError("name", f"a user named {name!r} already exists")
            row = (
                await connection.execute(
                    table.insert()
                    .values(
                        name=name, role=user_role.value, password_hash=password_hash, created_at=now
                    )
                    .returning(*table.c)
                )
            ).one()
        return _user(row)

    async def get_user(self, name: str) -> User:
        table = models.users
        async with self._read("reading a user") as connection:
            row = (await connection.execute(select(table).where(table.c.name == name))).first()
        if row is None:
            raise NotFoundError("user", name)
        return _user(row)

    async def list_users(self) -> list[User]:
        table = models.users
        async with self._read("reading users") as connection:
            rows = (await connection.execute(select(table).order_by(table.c.name))).all()
        return [_user(row) for row in rows]

    async def update_user(
        self, name: str, *, role: Role | str | None = None, password_hash: str | None = None
    ) -> User:
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = _user_role(role).value
        if password_hash is not None:
            values["password_hash"] = check_name("password_hash", password_hash, max_length=255)
        table = models.users
        async with self._write("updating a user") as connection:
            statement = update(table).where(table.c.name == name)
            row = (
                await connection.execute(statement.values(values).returning(*table.c))
                if values
                else await connection.execute(select(table).where(table.c.name == name))
            ).first()
        if row is None:
            raise NotFoundError("user", name)
        return _user(row)

    async def delete_user(self, name: str) -> None:
        table = models.users
        async with self._write("deleting a user") as connection:
            result = await connection.execute(delete(table).where(table.c.name == name))
        if result.rowcount == 0:
            raise NotFoundError("user", name)

    # -- API tokens -----------------------------------------------------------------------------

    async def add_token(
        self,
        name: str,
        *,
        role: Role | str,
        token_hash: str,
        now: datetime,
        instance: str | None = None,
    ) -> ApiToken:
        """A new token. ``instance``: an ingest token that may push for that instance only."""
        check_name("name", name)
        token_role = check_enum(Role, "role", role)
        if instance is not None:
            check_name("instance", instance)
            if token_role is not Role.INGEST:
                raise ValidationError("instance", "only an ingest token is bound to an instance")
        check_name("token_hash", token_hash, max_length=255)
        check_time("now", now)
        table = models.api_tokens
        async with self._write("adding a token") as connection:
            taken = await connection.scalar(
                select(table.c.id).where(table.c.token_hash == token_hash)
            )
            if taken is not None:
                raise ValidationError("token_hash", "this token already exists")
            row = (
                await connection.execute(
                    table.insert()
                    .values(
                        name=name,
                        role=token_role,
                        token_hash=token_hash,
                        created_at=now,
                        instance=instance,
                    )
                    .returning(*table.c)
                )
            ).one()
        return _token(row)

    async def token_by_hash(self, token_hash: str, *, now: datetime | None = None) -> ApiToken:
        """The live (not revoked) token with this hash; records ``now`` as its last use.
        ``NotFoundError`` for an unknown or revoked token."""
        table = models.api_tokens
        live = (table.c.token_hash == token_hash, table.c.revoked_at.is_(None))
        if now is None and self._database is not None:
            # A SQLite file: on the store's reader, one hand-off to the driver's thread where
            # SQLAlchemy and its pool take six. A server in use asks about every second.
            found = list(await self._reader_fetch("reading a token", _TOKEN_SQLITE, (token_hash,)))
            if not found:
                raise NotFoundError("token", "(hash)")
            ident, name, role, created, used, instance = found[0]
            return ApiToken(
                id=ident,
                name=name,
                role=Role(role),
                created_at=sqlite_time(created),
                last_used_at=None if used is None else sqlite_time(used),
                revoked_at=None,
                instance=instance,
            )
        if now is None:
            async with self._read("reading a token") as connection:
                row = (await connection.execute(select(table).where(*live))).first()
        else:
            check_time("now", now)
            async with self._write("using a token") as connection:
                row = (
                    await connection.execute(
                        update(table).where(*live).values(last_used_at=now).returning(*table.c)
                    )
                ).first()
        if row is None:
            raise NotFoundError("token", "(hash)")
        return _token(row)

    async def list_tokens(self) -> list[ApiToken]:
        table = models.api_tokens
        async with self._read("reading tokens") as connection:
            rows = (await connection.execute(select(table).order_by(table.c.id))).all()
        return [_token(row) for row in rows]

    async def revoke_token(self, token_id: int, *, now: datetime) -> ApiToken:
        """Revoke a token; revoking it again keeps the first revocation time."""
        check_time("now", now)
        table = models.api_tokens
        async with self._write("revoking a token") as connection:
            await connection.execute(
                update(table)
                .where(table.c.id == token_id, table.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = (await connection.execute(select(table).where(table.c.id == token_id))).first()
        if row is None:
            raise NotFoundError("token", token_id)
        return _token(row)

    # -- signed-out sessions --------------------------------------------------------------------

    async def end_session(self, session_id: str, *, user_name: str, expires_at: datetime) -> None:
        """Remember that a session was signed out, until it would have expired (then cleanup
        forgets it). Ending it again changes nothing."""
        check_name("session_id", session_id, max_length=64)
        check_name("user_name", user_name)
        check_time("expires_at", expires_at)
        table = models.signed_out_sessions
        async with self._write("signing out a session") as connection:
            known = await connection.scalar(
                select(table.c.session_id).where(table.c.session_id == session_id)
            )
            if known is None:
                await connection.execute(
                    table.insert().values(
                        session_id=session_id, user_name=user_name, expires_at=expires_at
                    )
                )

    async def session_ended(self, session_id: str) -> bool:
        """Whether the session was signed out (expired ones are refused by their cookie)."""
        table = models.signed_out_sessions
        async with self._read("reading a session") as connection:
            found = await connection.scalar(
                select(table.c.session_id).where(table.c.session_id == session_id)
            )
        return found is not None


def _user_role(role: object) -> Role:
    checked = check_enum(Role, "role", role)
    if checked not in USER_ROLES:
        raise ValidationError("role", "a user is a viewer or an admin")
    return checked


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        password_hash=row.password_hash,
        created_at=row.created_at,
    )


# ``token_by_hash`` of a live token, in SQLite's words, for the store's reader connection.
_TOKEN_SQLITE = (
    "SELECT id, name, role, created_at, last_used_at, instance "
    "FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL"
)


def _token(row: Row[Any]) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        instance=row.instance,
    )
