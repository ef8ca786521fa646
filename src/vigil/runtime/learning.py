"""Learning from the stored history: what the anomaly and forecast rules learned lives in the
evaluator's memory, so the monitor learns it again from the samples in the store

- when it starts or becomes the leader (``Learner.forget``: everything is learned again at
  the next cycle), so a restart or a failover does not wait ``min_history`` again;
- when a learning rule appears or changes what it learns from (its kind, metric, split or a
  forecast's lookback), so a new rule on a metric with history judges by it at once.

Only the window each rule needs is read (``vigil.core.learning.learning_window``: a week and
an hour for an anomaly rule by default, a forecast's lookback), in bounded chunks, replayed
through the evaluator as the monitor ran it (``vigil.preview.learn``), with the event loop
yielded between slices. It happens before the cycle's evaluation, so that cycle already judges
by what was learned.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from vigil.core import Evaluator, Rule
from vigil.core.learning import learning_window
from vigil.preview import SampleSource, learn

logger = logging.getLogger(__name__)


def _learns_from(rule: Rule) -> tuple[object, ...]:
    """What a rule's memory depends on: a change of it starts the memory afresh (see
    ``Evaluator.set_rule`` and ``core.evaluation._learn``)."""
    return (rule.kind, rule.metric, rule.split_by, rule.lookback)


class Learner:
    """Called by the leader's monitor before each evaluation (``catch_up``)."""

    def __init__(self, store: SampleSource, *, interval: float, own_instance: str | None) -> None:
        self.store = store
        self.interval = interval
        self.own_instance = own_instance
        self._learned: dict[str, tuple[object, ...]] | None = None  # None: nothing yet
        self._generation = -1  # the evaluator's rules as they were when last looked at

    def forget(self) -> None:
        """Learn every learning rule again at the next ``catch_up`` (a new leader's
        evaluator has not followed the series while another instance led)."""
        self._learned = None

    async def catch_up(self, evaluator: Evaluator, now: datetime) -> int:
        """Learn, from the samples stored before ``now``, the learning rules that are new
        or changed since the last call (all of them after ``forget``); how many series
        learned. A failure is logged and leaves those rules learning from their next reading:
        it never stops the monitor."""
        if self._learned is not None and evaluator.generation == self._generation:
            return 0  # the common cycle: no rule changed since the last
        self._generation = evaluator.generation
        learned = self._learned or {}
        current = {name: _learns_from(rule) for name, rule in evaluator.learning_rules().items()}
        due = {
            name: evaluator.rule(name)
            for name, key in current.items()
            if self._learned is None or learned.get(name) != key
        }
        self._learned = current
        if not due:
            return 0
        started = time.perf_counter()
        try:
            memories = await learn(
                self.store, due, now=now, interval=self.interval, own_instance=self.own_instance
            )
        except Exception:
            logger.exception("Vigil could not learn the anomaly and forecast rules' history")
            return 0
        taken = evaluator.adopt(memories)
        logger.info(
            "Vigil learned %d series of %d anomaly and forecast rules from up to %.0f h of "
            "stored samples in %.2f s",
            taken,
            len(due),
            max(learning_window(rule) for rule in due.values()) / 3600.0,
            time.perf_counter() - started,
        )
        return taken
