"""The web side's parts on their own: signing, the read cache, error field names."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher

from vigil.web.cache import ReadCache
from vigil.web.errors import field_name
from vigil.web.security import (
    Keys,
    Passwords,
    Session,
    looks_like_token,
    new_token,
    token_hash,
)

NOW = 1_800_000_000


def session(**changes: object) -> Session:
    fields: dict[str, object] = {
        "name": "ana",
        "session_id": "s1",
        "issued_at": NOW - 10,
        "expires_at": NOW + 3600,
        "password_mark": "m",
    }
    fields.update(changes)
    return Session(**fields)  # type: ignore[arg-type]


def test_a_session_cookie_opens_only_unchanged_unexpired_and_with_its_key() -> None:
    keys = Keys(b"k" * 32)
    cookie = keys.sign(session())
    assert keys.open(cookie, now=NOW) == session()
    payload, _, signature = cookie.partition(".")
    assert keys.open(cookie, now=NOW + 3600) is None  # expired
    assert Keys(b"other key, same length!!").open(cookie, now=NOW) is None
    assert keys.open(payload + "." + signature[::-1], now=NOW) is None
    forged, _, _ = keys.sign(session(name="root")).partition(".")
    assert keys.open(f"{forged}.{signature}", now=NOW) is None  # another payload, old signature
    for junk in ("", ".", "x.y", "." + signature, "a" * 5000):
        assert keys.open(junk, now=NOW) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    keys = Keys(b"k" * 32)
    token = keys.csrf_token("s1")
    assert keys.check_csrf("s1", token)
    assert not keys.check_csrf("s2", token)
    assert not keys.check_csrf("s1", None)
    assert not Keys(b"j" * 32).check_csrf("s1", token)


def test_a_short_secret_is_refused_and_no_secret_means_a_random_one() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Keys(b"short")
    one, two = Keys.from_setting(None), Keys.from_setting(None)
    assert one.sign(session()) != two.sign(session())
    assert Keys.from_setting("s" * 20).sign(session()) == Keys(b"s" * 20).sign(session())


def test_tokens_are_random_and_only_their_hash_is_kept() -> None:
    first, second = new_token(), new_token()
    assert first != second and looks_like_token(first)
    assert len(token_hash(first)) == 64 and token_hash(first) != token_hash(second)
    assert not looks_like_token("vgl_short") and not looks_like_token("x" * 50)


async def test_passwords_check_and_an_unknown_user_costs_a_check_too() -> None:
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    hashed = passwords.hash("right one")
    assert await passwords.check(hashed, "right one")
    assert not await passwords.check(hashed, "wrong one")
    assert not await passwords.check(None, "right one")
    assert not await passwords.check("not a hash", "right one")
    assert passwords.needs_rehash(hashed) is False
    assert Passwords().needs_rehash(hashed)  # weaker than the default parameters


# -- the read cache ---------------------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self) -> int:
        self.calls += 1
        await self.gate.wait()
        return self.calls


async def test_the_cache_answers_until_the_generation_moves() -> None:
    generation = [0]
    cache = ReadCache(lambda: generation[0], ttl=3600)
    counter = Counter()
    assert await cache.get("k", counter.load) == 1
    assert await cache.get("k", counter.load) == 1
    assert await cache.get("other", counter.load) == 2
    generation[0] += 1
    assert await cache.get("k", counter.load) == 3
    assert (cache.hits, cache.misses) == (1, 3)


async def test_the_cache_forgets_after_its_ttl_and_beyond_its_capacity() -> None:
    now = [0.0]
    cache = ReadCache(lambda: 0, ttl=10, capacity=2, clock=lambda: now[0])
    counter = Counter()
    await cache.get("a", counter.load)
    now[0] = 11
    assert await cache.get("a", counter.load) == 2
    await cache.get("b", counter.load)
    await cache.get("c", counter.load)  # "a" is the least recently used: dropped
    assert await cache.get("a", counter.load) == 5


async def test_concurrent_misses_share_one_load_and_its_error() -> None:
    cache = ReadCache(lambda: 0)
    counter = Counter()
    counter.gate.clear()
    waiting = [asyncio.create_task(cache.get("k", counter.load)) for _ in range(5)]
    await asyncio.sleep(0)
    counter.gate.set()
    assert await asyncio.gather(*waiting) == [1] * 5
    assert counter.calls == 1

    async def broken() -> int:
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    failing = [asyncio.create_task(cache.get("x", broken)) for _ in range(3)]
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get("x", counter.load) == 2  # an error is not cached


async def test_a_cancelled_load_lets_the_waiters_load_themselves() -> None:
    cache = ReadCache(lambda: 0)
    counter = Counter()
    counter.gate.clear()
    first = asyncio.create_task(cache.get("k", counter.load))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get("k", counter.load))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    counter.gate.set()
    assert await asyncio.wait_for(second, 10) == 2
    with pytest.raises(asyncio.CancelledError):
        await first


# -- error field names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "name"),
    [
        (("body", "samples", 3, "value"), "samples[3].value"),
        (("query", "page_size"), "page_size"),
        (("body",), "body"),
        (("body", 0), "[0]"),
        (("header", "Last-Event-ID"), "Last-Event-ID"),
        ((), None),
    ],
)
def test_field_names_point_at_the_input(location: tuple[object, ...], name: str | None) -> None:
    assert field_name(location) == name
