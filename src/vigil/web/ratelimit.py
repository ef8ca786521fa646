"""Failed sign-ins, counted per user name and per client address, in bounded memory."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureWindow:
    """At most ``limit`` failures per key within ``window`` seconds. Remembers at most
    ``capacity`` keys: when full, the key idle the longest is forgotten."""

    def __init__(self, *, limit: int, window: float, capacity: int) -> None:
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        times = self._failures.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window - now

    def fail(self, key: str, now: float) -> None:
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.limit)
        self._failures.move_to_end(key)
        times.append(now)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)


class SignInLimiter:
    """Slows password guessing: after ``per_name`` failures for one user name, or
    ``per_address`` from one client address, within ``window`` seconds, further attempts
    are refused (even with the right password) until the oldest failure ages out.

    Per process and in memory: with several instances behind a balancer each counts alone.
    """

    def __init__(
        self,
        *,
        per_name: int = 5,
        per_address: int = 20,
        window: float = 900.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.names = FailureWindow(limit=per_name, window=window, capacity=capacity)
        self.addresses = FailureWindow(limit=per_address, window=window, capacity=capacity)
        self._clock = clock

    def retry_after(self, name: str, address: str) -> float:
        now = self._clock()
        return max(
            self.names.retry_after(name.casefold(), now),
            self.addresses.retry_after(address, now),
        )

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        self.names.fail(name.casefold(), now)
        self.addresses.fail(address, now)

    def succeeded(self, name: str) -> None:
        self.names.clear(name.casefold())
