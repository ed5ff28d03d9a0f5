"""The Beacon query budget: how many queries one caller may ask in a sliding window.

A beacon answers a membership-inference attack one query at a time (docs/reidentification.md), so
the number of queries is itself a defence. Each query is charged to counters keyed by who asks:

- an anonymous caller: its IP address, against ``beacon_budget_anonymous`` (the tightest);
- an authenticated caller: its user id, against ``beacon_budget_user``;
- and every caller, whoever it is: its IP address, against ``beacon_budget_ip`` (so many
  accounts behind one address share a ceiling).

A query is charged to all of its counters or to none: when one of them is spent the query is
refused (429) with the seconds until that counter has room again (``Retry-After``), and nothing
is charged. The window slides in ``BUCKETS`` steps: a counter holds a count per step, and a
step leaves the window whole, so the budget is exact to ``window / BUCKETS`` and a counter's memory
is bounded whatever its limit. Counters idle for a whole window are dropped.

The counters live in the gateway process: with several gateway replicas each keeps its own, so
a caller spread over ``n`` replicas gets up to ``n`` budgets (put the replicas behind a load
balancer with client affinity, or count ``n`` in the limits).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

BUCKETS = 60


@dataclass(frozen=True)
class Charge:
    """One counter a query is charged to: its key (``("user", id)``, ``("ip", addr)``, ...) and its limit."""

    key: tuple[str, str]
    limit: int


@dataclass(frozen=True)
class Spent:
    """A query refused: the counter that is spent, and the seconds until it has room for one more."""

    charge: Charge
    wait_s: float


@dataclass
class _Counter:
    steps: dict[int, int] = field(default_factory=dict)
    """Step number (``floor(time / step)``) → queries charged in it, for the steps still in the window."""

    def used(self, oldest: int) -> int:
        for step in [s for s in self.steps if s < oldest]:
            del self.steps[step]
        return sum(self.steps.values())


class QueryBudget:
    """Sliding-window counters of Beacon queries, per key, in this process."""

    def __init__(self, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.step_s = window_s / BUCKETS
        self._clock = clock
        self._counters: OrderedDict[tuple[str, str], _Counter] = OrderedDict()
        """Least recently charged first, so idle counters are found at the front."""

    def charge(self, charges: Sequence[Charge]) -> Spent | None:
        """Charge one query to every counter, or to none: None when charged, else the counter that is spent."""
        now = self._clock()
        step = math.floor(now / self.step_s)
        oldest = step - BUCKETS + 1
        self._forget_idle(oldest)
        spent = []
        for charge in charges:
            counter = self._counters.get(charge.key)
            if counter is not None and counter.used(oldest) >= charge.limit:
                spent.append(Spent(charge, self._wait(counter, charge.limit, now)))
        if spent:
            return max(spent, key=lambda s: s.wait_s)
        for charge in charges:
            counter = self._counters.pop(charge.key, None) or _Counter()
            counter.steps[step] = counter.steps.get(step, 0) + 1
            self._counters[charge.key] = counter  # to the back: most recently charged
        return None

    def _wait(self, counter: _Counter, limit: int, now: float) -> float:
        """Seconds until enough of the oldest steps have left the window for one more query."""
        excess = sum(counter.steps.values()) - limit + 1
        for step in sorted(counter.steps):
            excess -= counter.steps[step]
            if excess <= 0:
                return max((step + BUCKETS) * self.step_s - now, 0.0)
        return self.window_s  # pragma: no cover - a spent counter always has steps

    def _forget_idle(self, oldest: int) -> None:
        while self._counters:
            key, counter = next(iter(self._counters.items()))
            if counter.steps and max(counter.steps) >= oldest:
                break
            del self._counters[key]

    def __len__(self) -> int:
        return len(self._counters)


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
