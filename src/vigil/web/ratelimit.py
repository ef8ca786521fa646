"""How sign-in attempts are slowed: per user and client, per user, per address; in bounded
memory, decided before any password is checked.

The policy (docs/security.md says why):

- An attempt is *reserved* before its password is checked: it counts as a failure at once and
  is taken back only when the password proves right. Concurrent attempts therefore cannot all
  pass the check that the first of them has not yet failed: 60 at once for one user from one
  address check at most ``attempts`` passwords.
- Failures slow rather than lock: once a key has used its free attempts, each further attempt
  must wait ``2 ** (failures - free)`` seconds after the last one (1 s, 2 s, 4 s ...), at most
  ``max_delay``. A key is forgotten ``forget`` seconds after its last failure.
- Three keys. *One user from one client* (a browser holding a device cookie for that user,
  else the address): ``attempts`` free. *One user* from clients that never signed in as that
  user: ``account_attempts`` free. *One address* for users it never signed in as:
  ``address_attempts`` free.
- A client that signed in as a user before (a valid device cookie, or an address that
  succeeded within ``known_for``) is *known* for that user: an attacker guessing that user's
  password from elsewhere, or a crowd failing behind the same proxy, does not slow it, and its
  password checks go first (``urgent``).

Per process: with several instances behind a balancer each counts alone.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil.runtime.groupcommit import BufferFullError
from vigil.web.errors import RateLimitedError

BASE_DELAY = 1.0
KNOWN_FOR = 30 * 86_400.0


@dataclass(slots=True)
class _Strikes:
    count: int
    last: float


class Backoff:
    """Failures per key, and how long the key must wait before its next attempt: nothing for
    the first ``free``, then ``BASE_DELAY * 2 ** (failures - free)`` after the last failure,
    at most ``max_delay``. At most ``capacity`` keys (the one idle longest goes first)."""

    def __init__(self, *, free: int, max_delay: float, forget: float, capacity: int) -> None:
        self.free = free
        self.max_delay = max_delay
        self.forget = forget
        self.capacity = capacity
        self._keys: OrderedDict[str, _Strikes] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        strikes = self._keys.get(key)
        if strikes is None:
            return 0.0
        if now - strikes.last >= self.forget:
            del self._keys[key]
            return 0.0
        if strikes.count < self.free:
            return 0.0
        delay = min(self.max_delay, BASE_DELAY * 2.0 ** min(strikes.count - self.free, 64))
        return max(0.0, strikes.last + delay - now)

    def strike(self, key: str, now: float) -> None:
        strikes = self._keys.get(key)
        if strikes is None or now - strikes.last >= self.forget:
            self._keys[key] = _Strikes(1, now)
        else:
            strikes.count += 1
            strikes.last = now
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def take_back(self, key: str) -> None:
        """Undo one strike: the attempt it reserved did not fail."""
        strikes = self._keys.get(key)
        if strikes is not None:
            strikes.count -= 1
            if strikes.count <= 0:
                del self._keys[key]

    def clear(self, key: str) -> None:
        self._keys.pop(key, None)

    def count(self, key: str) -> int:
        strikes = self._keys.get(key)
        return strikes.count if strikes is not None else 0

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(slots=True)
class Attempt:
    """A reserved sign-in attempt: ``wait`` is 0 when it may go ahead (its strikes are then
    already counted), else the seconds to wait (and nothing was counted)."""

    name: str
    address: str
    device: str | None
    known: bool
    wait: float = 0.0
    keys: list[tuple[Backoff, str]] = field(default_factory=list)


class SignInLimiter:
    def __init__(
        self,
        *,
        attempts: int = 5,
        account_attempts: int = 10,
        address_attempts: int = 30,
        max_delay: float = 900.0,
        forget: float | None = None,
        capacity: int = 10_000,
        known_for: float = KNOWN_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        forget = forget if forget is not None else 2 * max_delay
        self.clients, self.accounts, self.addresses = (
            Backoff(free=free, max_delay=max_delay, forget=forget, capacity=capacity)
            for free in (attempts, account_attempts, address_attempts)
        )
        self.capacity = capacity
        self.known_for = known_for
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()  # -> until
        self._clock = clock

    def knows(self, name: str, address: str) -> bool:
        """Whether ``address`` signed in as ``name`` within ``known_for``."""
        key = (name.casefold(), address)
        until = self._known.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._known[key]
            return False
        return True

    def reserve(self, name: str, address: str, *, device: str | None = None) -> Attempt:
        """Reserve an attempt by ``name`` from ``address`` (``device``: the id of a valid
        device cookie for this name). Check ``Attempt.wait`` before checking a password."""
        folded = name.casefold()
        known = device is not None or self.knows(name, address)
        client = f"device\0{device}" if device is not None else f"{folded}\0{address}"
        keys = [(self.clients, client)]
        if not known:
            keys += [(self.accounts, folded), (self.addresses, address)]
        attempt = Attempt(name=folded, address=address, device=device, known=known)
        now = self._clock()
        wait = max(backoff.wait(key, now) for backoff, key in keys)
        if wait > 0:
            attempt.wait = wait
            return attempt
        for backoff, key in keys:
            backoff.strike(key, now)
        attempt.keys = keys
        return attempt

    def cancel(self, attempt: Attempt) -> None:
        """Take back a reservation whose password was never checked."""
        for backoff, key in attempt.keys:
            backoff.take_back(key)
        attempt.keys = []

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: this client starts afresh and is known for this user; the
        failures others caused for the user or the address stay."""
        for backoff, key in attempt.keys:
            if backoff is self.clients:
                backoff.clear(key)
            else:
                backoff.take_back(key)
        attempt.keys = []
        pair = (attempt.name, attempt.address)
        self._known[pair] = self._clock() + self.known_for
        self._known.move_to_end(pair)
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)


# -- push ingestion ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    level: float
    at: float


class TokenBuckets:
    """One token bucket per key: ``rate`` a second, holding at most ``capacity``. At most
    ``keys`` keys are kept (the one idle longest goes first; a forgotten key starts full)."""

    def __init__(self, *, rate: float, capacity: float, keys: int = 10_000) -> None:
        self.rate = rate
        self.capacity = capacity
        self.keys = keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, amount: float, now: float) -> float:
        """Take ``amount`` from ``key``'s bucket: 0 if it held enough (and it is taken),
        else the seconds until it will (and nothing is taken)."""
        bucket = self._refill(key, now)
        if bucket.level >= amount:
            bucket.level -= amount
            return 0.0
        return (amount - bucket.level) / self.rate

    def spend(self, key: str, amount: float, now: float) -> float:
        """Take ``amount`` from ``key``'s bucket if it holds anything, even more than it
        holds (the debt is paid by waiting): 0 if taken, else the seconds until the bucket
        holds something again. The amount needs no checking first, so a refusal is cheap."""
        bucket = self._refill(key, now)
        if bucket.level <= 0:
            return (1 - bucket.level) / self.rate
        bucket.level -= amount
        return 0.0

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key``'s bucket holds one (0: it does now), taking nothing."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        level = min(self.capacity, bucket.level + (now - bucket.at) * self.rate)
        return 0.0 if level >= 1 else (1 - level) / self.rate

    def _refill(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
        bucket.level = min(self.capacity, bucket.level + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket
        while len(self._buckets) > self.keys:
            self._buckets.popitem(last=False)
        return bucket


class IngestLimiter:
    """What keeps push ingestion from starving the monitor, and one token from the others:

    - per token, ``rate`` requests a second (a burst of ten seconds' worth) and ``volume``
      samples a second (a burst of one full batch, or ten seconds' worth if more), both
      counted before the samples are validated, so a refusal costs little and invalid
      batches count too;
    - none at all while the monitor's last cycle took more than ``busy_share`` of its
      interval (evaluation goes first), or while the ingest buffer is full (the group
      commit's back-pressure, ``vigil.runtime.groupcommit``).

    Every refusal is a ``RateLimitedError`` (429 with ``Retry-After``), counted in ``shed``.
    """

    def __init__(
        self,
        *,
        rate: float,
        volume: float,
        batch: int,
        busy_share: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests = TokenBuckets(rate=rate, capacity=rate * 10)
        self.samples = TokenBuckets(rate=volume, capacity=max(float(batch), volume * 10))
        self.busy_share = busy_share
        self._clock = clock
        self.shed = 0

    def refusal(
        self,
        key: str,
        *,
        last_cycle_seconds: float | None,
        interval: float,
        buffer_full: bool = False,
    ) -> RateLimitedError | None:
        """The refusal a request from ``key`` would meet now, taking nothing: for turning a
        flood away before its body is even read."""
        now = self._clock()
        if last_cycle_seconds is not None and last_cycle_seconds > self.busy_share * interval:
            return self._shed("the monitor is behind: evaluation goes first", interval)
        if buffer_full:
            return self._shed("the ingest buffer is full (VIGIL_INGEST_BUFFER)", 1.0)
        wait = self.requests.wait(key, now)
        if wait > 0:
            return self._shed("this token sends too many ingest requests", wait)
        wait = self.samples.wait(key, now)
        if wait > 0:
            return self._shed("this token pushes too many samples", wait)
        return None

    def check_request(self, key: str) -> None:
        """One more request from ``key`` (before its body is validated)."""
        wait = self.requests.take(key, 1, self._clock())
        if wait > 0:
            raise self._shed("this token sends too many ingest requests", wait)

    def check_volume(self, key: str, samples: int) -> None:
        """``samples`` more from ``key``: refused while its bucket is empty (a batch larger
        than what is left is let through, and the bucket owes the rest)."""
        wait = self.samples.spend(key, samples, self._clock())
        if wait > 0:
            raise self._shed("this token pushes too many samples", wait)

    def check_monitor(self, last_cycle_seconds: float | None, interval: float) -> None:
        if last_cycle_seconds is not None and last_cycle_seconds > self.busy_share * interval:
            raise self._shed("the monitor is behind: evaluation goes first", interval)

    def buffer_full(self, error: BufferFullError) -> RateLimitedError:
        """The group commit refused a push for room: a shed request like the others."""
        return self._shed(str(error).partition(":")[0], error.retry_after)

    def _shed(self, reason: str, wait: float) -> RateLimitedError:
        self.shed += 1
        retry_after = max(1.0, wait)
        return RateLimitedError(
            f"{reason}: try again in {math.ceil(retry_after)} s", retry_after=retry_after
        )
